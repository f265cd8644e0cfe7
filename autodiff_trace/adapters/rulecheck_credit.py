"""Which firing a grad write belongs to, for the derivative-rule check.

Most writes belong to the node whose backward function runs. Some engines run every
node's rule from one call (``root.backprop()`` looping over the graph), some add what a
rule passes into the receiving node's own grad first (``self.g += bp``: sums over paths),
and some hold several nodes where the write is made, so that the rule that wrote is a
guess; a guess is never judged.
"""

from __future__ import annotations

from types import FrameType
from typing import Optional

from ..core import active
from .roles import rule_owner, static_attr
from .rulecheck_state import Firing, is_number

__all__ = ["WriteCredit"]


class WriteCredit:
    """The part of :class:`.RuleCheck` that files each grad write under a firing."""

    def wrote(self, fired_by: Optional[int], target, before: float, after: float,
              replaced: bool, site: Optional[str], frame: Optional[FrameType] = None) -> None:
        """The rule of node ``fired_by`` changed ``target``'s grad from ``before`` to ``after``
        (``frame`` made the write)."""
        if not self._open and not (self._walking and self.made):
            return
        firing, stack = self._open.get(fired_by), self.reporter.firing
        if firing is None and not self._walking and (not stack or len(stack) == 1 and stack[0] == fired_by):
            return  # the usual write of a rule not being checked
        try:
            running = stack[-1] if stack else None
            if running is not None and self.reporter.ids.known(target) == running:
                firing = self._own_write(fired_by, running, target, before, after)
            elif frame is not None and (self._walking or firing is not None and firing.node is not target
                                      and not any(p is target for p in firing.parents)):
                firing = self._walked(fired_by, firing, target, frame)
            if firing is not None and frame is not None and self._ambiguous(frame, target, firing.node):
                return
            if firing is not None:
                firing.writes.append((target, before, after, replaced, site))
                if firing.rule is None and frame is not None:
                    firing.rule = _method_running(frame, firing.node)
        except Exception as exc:
            self._give_up(exc)

    def _own_write(self, fired_by: Optional[int], running: int, target, before: float,
                   after: float) -> Optional[Firing]:
        """A rule adding what it is passed into its own grad (``self.g += bp``, then
        ``inp.backprop(bp * d)``: a sum over paths): its upstream on this visit, and a
        write of the rule that called it when the reporter credited it there
        (:func:`.credit.credited_to`)."""
        own = self._open.get(running)
        if own is not None:
            before_visit, added = own.own or (before, 0.0)
            own.own = (before_visit, added + after - before)
        caller = self._open.get(fired_by) if fired_by != running else None
        return caller if caller is not None and any(p is target for p in caller.parents) else None

    def _ambiguous(self, frame: FrameType, target, credited) -> bool:
        """Does the writing function, or one of the two above it, hold another node that
        has ``target`` as a parent too (a rule's ``node`` and its input ``a``, both over
        ``b``; a loop's stale variable)? Then which rule wrote is a guess: neither node's
        firing is judged in this pass."""
        is_node, has_parent, others = self.reporter.is_node, self.reporter.graph.has_parent, []
        for _ in range(3):
            if frame is None or frame.f_code.co_name == "<module>":
                break
            local = frame.f_locals
            others += [v for v in map(local.get, frame.f_code.co_varnames)
                       if v is not None and v is not target and v is not credited
                       and is_node(v) and has_parent(v, target)]
            frame = frame.f_back
        for node in (credited, *others) if others else ():
            node_id = self.reporter.ids.known(node)
            self._unsure.add(node_id)
            self._open.pop(node_id, None)
        return bool(others)

    def _walked(self, fired_by: Optional[int], firing: Optional[Firing], target,
                frame: FrameType) -> Optional[Firing]:
        """One call runs every node's rule (``root.backprop()`` looping over the graph): a
        write is credited to the node in that loop whose parent it writes (see
        :func:`.roles.rule_owner`), and that node's firing starts at its first write."""
        reporter = self.reporter
        owner = rule_owner(frame, target, reporter.is_node, reporter.graph.has_parent)
        if not self._walking:  # found out now: the writes credited so far mix several rules
            self._walking = True
            self._open.pop(fired_by, None)
            if owner is not None:
                self._late.add(id(owner))  # its first writes were among them
        if owner is None or id(owner) in self._late:
            return None
        owner_id = reporter.ids.of(owner)
        walked = self._open.get(owner_id)
        if walked is None and id(owner) in self.made:
            vocab = reporter.vocabulary(owner)
            tracer = active.active_tracer()
            grad = static_attr(owner, vocab.grad)
            if tracer is not None and is_number(grad):
                self._fired(owner, owner_id, float(grad), tracer.pass_no)
                walked = self._open.get(owner_id)
        return walked


def _method_running(frame: FrameType, node, levels: int = 3):
    """The code of the node's own method running in ``frame`` or just above it (a rule the
    adapters found by its writes, with no backward attribute naming it), else None."""
    while frame is not None and levels > 0:
        code = frame.f_code
        if code.co_argcount and frame.f_locals.get(code.co_varnames[0]) is node:
            return code
        frame, levels = frame.f_back, levels - 1
    return None

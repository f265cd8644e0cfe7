"""Turn the entries a sweep changes in a dict of gradients into passes, firings and writes.

The first write under a node the outermost sweep call was given begins a pass (that node
its root, the entries the dict held before it the grads before; a whole number counted
under the root begins none, and a dict the sweep made holding ``{root: 1.0}`` seeds it).
Each write is credited to the node whose rule made it: the node (or id) in the writing
frame, declared last, that has the written node as a parent; it fires at its first write
from a frame. A function the sweep called just before a node's writes is that node's rule.
A sweep that keeps its dict (``grads = {self: 1.0}``) and writes the leaves' grad attribute
itself makes one pass of both: its entries add to the grads the nodes held when it began.
"""

from __future__ import annotations

from types import CodeType, FrameType
from typing import Dict, List, Optional, Tuple

from ..core.tracer import active_tracer
from .bytecode import write_site
from .engine_code import register
from .gradmaps import KeyResolver, assigns_over_entry, held_apart, keeps_its_dict
from .nodeids import as_float
from .roles import static_attr
from .rulecheck_lines import return_line, site_at

__all__ = ["MISSING", "Watched", "SweepWrites", "is_gradient", "hashes_plainly"]

MISSING = object()
_OWNER_FRAMES = 2  # the writing frame and the one above it are searched for the rule's node


def is_gradient(value) -> bool:
    """A number a gradient can be (complex ones included, bools not)."""
    return (isinstance(value, (int, float, complex)) and not isinstance(value, bool)) or hasattr(value, "dtype")


class Watched:
    """A dict a sweep holds, and what it held when last compared: keyed by the key itself
    for an int, str or float, else by the key's identity (no user ``__eq__`` runs). Read
    through ``dict``'s own methods, so a subclass's overrides never run."""

    __slots__ = ("map", "held", "by_id", "made_at")

    def __init__(self, mapping: dict, made_at: Optional[Tuple[FrameType, int]]) -> None:
        self.map = mapping
        self.held = {held_key(k): v for k, v in dict.items(mapping)}
        self.by_id = False  # its keys are ids of nodes, not nodes
        self.made_at = made_at  # the sweep's line it was first seen after (None: it was given)

    def changes(self) -> List[Tuple[object, object, object]]:
        """``(key, old, new)`` of every entry changed since last compared (``old`` is
        ``MISSING`` for a new key)."""
        held, found = self.held, []
        for key, value in list(dict.items(self.map)):
            index = held_key(key)
            old = held.get(index, MISSING)
            if old is not value:
                held[index] = value
                found.append((key, old, value))
        return found

    def change_of(self, key):
        """``(old, new)`` of one entry, if it changed since last compared; else None. Only
        for a key whose hash is Python's own (an int, a str, a plain object)."""
        index = held_key(key)
        old, new = self.held.get(index, MISSING), dict.get(self.map, key, MISSING)
        if new is MISSING or new is old:
            return None
        self.held[index] = new
        return old, new


_PLAIN = (int, str, float)


def held_key(key):
    """How a dict's key is remembered: itself when plain, else by identity."""
    return key if type(key) in _PLAIN else ("id", id(key))


def hashes_plainly(key) -> bool:
    """True when looking ``key`` up runs no code of the user's (its hash is Python's own)."""
    return type(key) in _PLAIN or type(key).__hash__ is object.__hash__


class _Pass:
    """One pass found in a sweep: its root, its dict, the grads its nodes hold in it
    (keyed by id of node), and for a sweep that writes the leaves' grads itself, the grad
    attribute each node held when the pass began (what its entries add to)."""

    __slots__ = ("root", "seed", "grads", "watched", "fired", "received", "firings", "held", "writer")

    def __init__(self, root, seed: float, grads: Dict[int, float], watched: Watched,
                 held: Optional[Dict[int, float]]) -> None:
        self.root, self.seed, self.grads, self.watched = root, seed, grads, watched
        self.held = held  # None: the dict is the only home of the pass's grads
        self.writer: Dict[int, int] = {}  # id of node -> the node whose rule wrote its entry last
        self.fired: Dict[int, FrameType] = {}  # node id -> the frame its rule last fired in
        self.received: Dict[int, float] = {}  # id of node -> what its last write added
        # [owner id, owner, what it passed on (None: its grad at the end), [(target, before,
        # after, replaced, site, the rule called)]], a firing at a time
        self.firings: List[list] = []


class SweepWrites:
    """The pass running in a sweep, and the rule each frame's writes come from."""

    def __init__(self, reporter, resolver: KeyResolver) -> None:
        self.reporter, self.resolver = reporter, resolver
        self.current: Optional[_Pass] = None
        # The function a sweep frame called last (a rule table's entry), with the count of
        # writes then, how deep below the frame it ran and the frame's call it ran within,
        # and the node each frame wrote for last, with its rule.
        self._called: Dict[int, Tuple[CodeType, int, int, int]] = {}
        self._calls: Dict[int, int] = {}  # id of frame -> the count of the calls it made
        self._writing_for: Dict[int, Tuple[int, Optional[CodeType]]] = {}
        self._writes = 0

    def called(self, caller: FrameType, code: CodeType) -> None:
        """A sweep frame called a function: the rule it looks up for its next node's writes
        (a node's method asked after a rule was found below another, ``inp.is_constant()``
        after ``var.chain_rule(d)``, leaves that rule in place unless it calls further)."""
        call = self._calls[id(caller)] = self._calls.get(id(caller), 0) + 1
        called = self._called.get(id(caller))
        if called is not None and called[1] == self._writes and called[2] > 1 and code in self.reporter.skip:
            return
        self._called[id(caller)] = (code, self._writes, 1, call)

    def called_inside(self, caller: FrameType, code: CodeType, depth: int) -> None:
        """A node's method the sweep frame called went on to call a function ``depth``
        calls below the frame: the deepest function that call leads to is the rule."""
        call = self._calls.get(id(caller), 0)
        called = self._called.get(id(caller))
        if called is None or called[3] != call or called[1] != self._writes or depth > called[2]:
            self._called[id(caller)] = (code, self._writes, depth, call)

    def end(self, tracer) -> None:
        """The outermost sweep call returned: its pass, if any, is over."""
        p, self.current = self.current, None
        self._called, self._calls, self._writing_for = {}, {}, {}
        if p is not None and tracer is not None:
            self._check_rules(p, tracer)
            tracer.backward_finished()
            self.reporter.graph.pass_ended()

    def abandon(self, tracer) -> None:
        """The watch failed: close the pass under way, check nothing more."""
        if self.current is not None and tracer is not None:
            tracer.backward_finished()
        self.current, self._called, self._calls, self._writing_for = None, {}, {}, {}

    def changed(self, watched: Watched, key, old, value, last: Tuple[FrameType, int],
                needs_rule: bool, outer: FrameType) -> None:
        """An entry of a watched dict changed from ``old`` (``MISSING``: a new key) to
        ``value`` while the sweep ran ``last`` (frame, line); ``outer`` is the outermost
        sweep call (``needs_rule``: a new key holding 0, a write only if a rule made it)."""
        node = self.resolver.node(key)
        if node is None:
            return
        watched.by_id = watched.by_id or node is not key
        tracer = active_tracer()
        if tracer is None:
            return
        before = 0.0 if old is MISSING else as_float(old)
        p = self.current
        if p is None and needs_rule:
            return
        if p is None:
            p = self._begin(tracer, watched, node, before, value, last, outer)
            if p is None:
                return
        elif p.watched is not watched:
            return
        self._write(tracer, p, node, before, as_float(value), last, needs_rule, outer)

    def _begin(self, tracer, watched: Watched, target, before: float, value,
               last, outer: FrameType) -> Optional[_Pass]:
        """The first write of a pass: under a node the outermost sweep call was given, and
        not a whole number written below it (a count of consumers, ``waiting[n] += 1``)."""
        reporter = self.reporter
        if tracer.in_pass and not held_apart(reporter.vocabulary(target)):
            return None  # the engine's grad attribute is being written: its pass, not ours
        code = outer.f_code
        local = outer.f_locals
        for name in code.co_varnames[:code.co_argcount]:
            root = local.get(name)
            if not reporter.is_node(root):
                continue
            order = self._order(root)
            if any(n is target for n in order):
                break
        else:
            return None
        if type(value) is int and target is not root:
            return None
        reporter._between_passes(tracer)  # whatever the attribute reporter holds goes first
        grads: Dict[int, float] = {}
        for key, value in list(watched.map.items()):
            node = self.resolver.node(key)
            if node is not None and is_gradient(value):
                grads[id(node)] = as_float(value)
        grads[id(target)] = before
        seeded = self._seed_in(watched, root) if watched.made_at is not None and target is not root else None
        if seeded is not None:  # a dict the sweep made holding the seed: {root: 1.0}
            grads[id(root)] = 0.0
        id_of = reporter.ids.of
        ids = tuple(id_of(n) for n in order)
        held = self._held(order) if keeps_its_dict(code) and not held_apart(reporter.vocabulary(root)) else None
        grads_before = tuple(grads.get(id(n), 0.0) + (held.get(id(n), 0.0) if held else 0.0) for n in order)
        seed = 1.0 if seeded is None else seeded  # a root never written is seeded with 1 all the same
        if target is root:
            after = as_float(value)
            seed = after if assigns_over_entry(last[0].f_code.co_filename, last[1]) else after - before
        if held is not None:
            register(reporter)  # its leaves' values are read to tell a mini-batch from an update
        tracer.backward_started(ids[0], seed, ids, grads_before)
        reporter.graph.pass_started()
        p = self.current = _Pass(root, seed, grads, watched, held)
        if seeded is not None:
            p.grads[id(root)] = seeded
            frame, line = watched.made_at
            attr = held.get(id(root), 0.0) if held else 0.0
            tracer.grad_accumulated(ids[0], None, None, seeded, attr, attr + seeded, not attr,
                                    site_at(frame.f_code, line))
        return p

    def _seed_in(self, watched: Watched, root) -> Optional[float]:
        """The root's entry in the dict when last compared (a sweep may have taken it out
        already, ``g = grads.pop(v)``), or None."""
        value = watched.held.get(held_key(root), MISSING)
        if value is MISSING:
            value = next((v for k, v in list(watched.held.items())
                          if type(k) is int and self.resolver.node(k) is root), MISSING)
        return as_float(value) if value is not MISSING and is_gradient(value) else None

    def _held(self, order: list) -> Dict[int, float]:
        """The grad attribute of each node of the order (id of node -> grad, None as 0)."""
        vocabulary, held = self.reporter.vocabulary, {}
        for node in order:
            vocab = vocabulary(node)
            if vocab is not None and not held_apart(vocab):
                held[id(node)] = as_float(static_attr(node, vocab.grad))
        return held

    def _order(self, root) -> list:
        """``root`` and every node it depends on, each before its parents."""
        post, visited, stack = [], set(), [(root, False)]
        parents = self.reporter.parents
        while stack:
            node, done = stack.pop()
            if done:
                post.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in parents(node, None) if id(p) not in visited)
        post.reverse()
        return post

    def _write(self, tracer, p: _Pass, target, before: float, after: float, last,
               needs_rule: bool, outer: FrameType) -> None:
        """Report one write; its rule's node fires at its first write from a frame (a
        recursion over paths fires a node once per visit, each from its own call, passing
        on what that visit brought it)."""
        frame, line = last
        reporter = self.reporter
        owner = None if target is p.root else self._owner(frame, target, p.watched.by_id)
        if owner is None and needs_rule:
            return  # a defaultdict read of a node no rule writes to
        site = site_at(frame.f_code, line)
        replaced = assigns_over_entry(frame.f_code.co_filename, line)
        owner_id = None
        if owner is not None:
            owner_id = reporter.ids.of(owner)
            if p.fired.get(owner_id) is not frame:
                p.fired[owner_id] = frame
                grad = p.grads.get(id(owner), 0.0)
                tracer.backward_fn_fired(owner_id, grad, grad)
                visit = None if frame is outer else p.received.get(id(owner), p.seed)
                p.firings.append([owner_id, owner, visit, []])
            p.firings[-1 if p.firings[-1][0] == owner_id else self._latest(p, owner_id)][3].append(
                (target, before, after, replaced, site, self._rule_of(frame, owner_id)))
        self._writes += 1
        p.grads[id(target)] = after
        p.received[id(target)] = after - before
        attr = p.held.get(id(target), 0.0) if p.held else 0.0
        if owner_id is not None:
            p.writer[id(target)] = owner_id
        # An entry made anew adds to the grad the node held: only a filled entry is wiped.
        tracer.grad_accumulated(reporter.ids.of(target), owner_id, None, after - before, attr + before,
                                attr + after, replaced and not (attr and before == 0), site)

    def attribute_written(self, node, before, after, frame: FrameType) -> bool:
        """A node's grad attribute was set from ``before`` to ``after`` by ``frame`` while a
        sweep that writes the leaves' grads itself runs a pass: True when the write is the
        pass's. Storing what the pass's entries add up to is already reported; anything
        else (``v.grad = g`` over a grad held before) is reported as this pass's write,
        credited to the node whose rule wrote the node's entry last."""
        p = self.current
        if p is None or p.held is None or id(node) not in p.held:
            return False
        tracer = active_tracer()
        if tracer is None:
            return False
        before_f, after_f = as_float(before), as_float(after)
        expected = p.held[id(node)] + p.grads.get(id(node), 0.0)
        if after_f == expected or before is None and after_f == 0.0:
            return True  # the entries' sum stored, or None made 0 before it is added to
        site, replaced = write_site(frame)
        p.held[id(node)] = after_f - p.grads.get(id(node), 0.0)
        tracer.grad_accumulated(self.reporter.ids.of(node), p.writer.get(id(node)), None, after_f - before_f,
                                before_f, after_f, replaced, site)
        return True

    @staticmethod
    def _latest(p: _Pass, owner_id: int) -> int:
        """The index of the owner's latest firing (writes may interleave across frames)."""
        return next(i for i in range(len(p.firings) - 1, -1, -1) if p.firings[i][0] == owner_id)

    def _rule_of(self, frame: FrameType, owner_id: int) -> Optional[CodeType]:
        """The function the frame called for this node's writes: called after the frame's
        last write for another node (a rule table's entry), if any."""
        writing = self._writing_for.get(id(frame))
        if writing is None or writing[0] != owner_id:
            called = self._called.get(id(frame))
            rule = called[0] if called is not None and called[1] == self._writes else None
            writing = self._writing_for[id(frame)] = (owner_id, rule)
        return writing[1]

    def _owner(self, frame: FrameType, target, by_id: bool):
        """The node whose rule made a write to ``target``: declared last in the writing
        frame (or the one above), and having ``target`` as a parent."""
        has_parent, node_of = self.reporter.graph.has_parent, self.resolver.node
        for _ in range(_OWNER_FRAMES):
            if frame is None or frame.f_code.co_name == "<module>":
                return None
            local = frame.f_locals
            for name in reversed(frame.f_code.co_varnames):
                value = local.get(name)
                node = node_of(value, ints=by_id) if value is not None else None
                if node is not None and node is not target and has_parent(node, target):
                    return node
            frame = frame.f_back
        return None

    def _check_rules(self, p: _Pass, tracer) -> None:
        """Hand each firing's writes to the derivative-rule check, with what it passed on (a
        visit of a recursion over paths, what that visit brought; a loop's, the grad its node
        ended the pass holding), each at the line of the rule the sweep called for it, if any
        (a rule table's entry). A rule that adds exactly nothing to a leaf declares it a
        constant (``pow``'s exponent): unchecked."""
        rulecheck, parents = self.reporter.rulecheck, self.reporter.parents
        pass_no = tracer.pass_no
        for owner_id, owner, visit, writes in p.firings:
            if visit is None:
                visit = p.grads.get(id(owner), p.seed if owner is p.root else 0.0)
            rule = next((w[5] for w in writes if w[5] is not None), None)
            rulecheck.fired(owner, owner_id, visit, pass_no, rule)
            for target, before, after, replaced, site, rule in writes:
                if after == before and not parents(target, None):
                    continue
                rule_site = site_at(rule, return_line(rule)) if rule is not None else site
                rulecheck.wrote(owner_id, target, before, after, replaced, rule_site)

"""stale_gradient: a pass began while nodes still held gradients from before it.

Found from ``backward_started``: every node of the pass's order whose grad is not zero
(constants aside). Located at the user's call that began the pass (``loss.backward()``),
where the zeroing is missing; all the nodes and passes begun at that line are one cause.

Adding up the gradients of several losses before one update (a mini-batch, one backward
pass per example) is meant: a run that zeroes gradients, whose stale leaves all came from
passes of other roots and hold the values they held when that group of passes began, is
accumulating, and is left silent.
"""

from __future__ import annotations

from itertools import compress, repeat
from operator import ne, not_, sub
from typing import Dict, List, Optional, Set, Tuple

from ...adapters.engine_code import values_of
from ...core.by_id import IntsById
from ...core.text import number, plural
from ..callers import source_line
from ..causes import Cause, passes_text
from .base import Check

__all__ = ["StaleGradient"]

_SLICE = 65_536  # writes noted together
_PENDING = 1_000  # queued changes applied at once when no stale grad asked for them sooner
_ROWS, _WRITE, _ZEROED = "rows", "write", "zeroed"  # the kinds of queued change

# Where a stale grad came from: ("pass", pass_no, begin site) | ("outside", site) | ("before",)
Source = Tuple


class StaleGradient(Check):
    """Reports the nodes a pass found holding gradients, at the call that began it."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        # node -> 1 + the pass of the write that set its grad (1: outside any pass; 0: none
        # since it was zeroed); a number per node id, not the event, so a long run holds no
        # write and no object per node; the site only for writes outside a pass
        self.written_in = IntsById(ctx.model.nodes)
        self.written_outside_at: Dict[int, Optional[str]] = {}
        self.roots: Dict[int, int] = {}  # pass -> its root
        # node -> 1 + the first pass with a root that wrote it; the roots of later passes, when
        # other, in ``more_roots_into`` (a set per node only for the few that need one)
        self.first_written_in = IntsById(ctx.model.nodes)
        self.more_roots_into: Dict[int, Set[int]] = {}
        self.zeroes = False  # the run has zeroed gradients: it means to start groups afresh
        self.group_values: Dict[int, float] = {}  # leaf -> its value when its grad began to add up
        self._noted = 0  # the writes of the pass under way queued so far (rows of its log)
        # What changes the notes above, in the order it happened, not yet applied: a pass's
        # write rows (the model holds them), a write outside the pass under way, a zeroing.
        # They are applied only when a pass begins with stale grads (:meth:`_settle`): a run
        # whose grads are zeroed before every pass never notes its writes one by one.
        self._pending: List[tuple] = []

    def on_pass_start(self, p) -> None:
        self._noted = 0  # the writes of the pass under way queued so far (rows of its log)

    def on_grad_accumulated(self, event) -> None:
        if event.pass_no and self.ctx.in_pass(event.pass_no) is not None:
            self._catch_up()  # the model holds it already: queued with the pass's other writes
            return
        self._later((_WRITE, event.target, event.pass_no, event.site))

    def _note(self, target, pass_no: int, site: Optional[str]) -> None:
        """Note one write: which pass set the grad, and the roots that wrote it."""
        written, firsts = self.written_in, self.first_written_in
        at = target - firsts.base if target.__class__ is int and firsts.base is not None else -1
        near = 0 <= at < len(firsts.slots) <= len(written.slots) and written.far is None \
            and firsts.far is None  # the common case, read inline (both count from one base)
        if near:
            written.slots[at] = pass_no + 1
        else:
            written.set(target, pass_no + 1)
        if not pass_no:
            self.written_outside_at[target] = site
        root = self.roots.get(pass_no)
        if root is not None:
            first = firsts.slots[at] if near else firsts.get(target)
            if not first:
                if near:
                    firsts.slots[at] = pass_no + 1
                else:
                    firsts.set(target, pass_no + 1)
            elif self.roots[first - 1] != root:
                self.more_roots_into.setdefault(target, set()).add(root)

    def singles(self, run) -> List[int]:
        """None: a write only notes which pass set the grad, read from the model's columns."""
        return []

    def on_run(self, run) -> None:
        """Nothing now: the pass's writes are noted from the model's columns when they are
        next needed (:meth:`_catch_up`)."""

    def on_pass_end(self, p) -> None:
        self._catch_up()

    def _catch_up(self) -> None:
        """Queue the writes of the pass under way that the model holds and are not queued yet."""
        p = self.ctx.pass_
        if p is not None and self._noted < len(p.writes):
            self._later((_ROWS, p, self._noted, len(p.writes)))
            self._noted = len(p.writes)

    def _later(self, change: tuple) -> None:
        self._pending.append(change)
        if len(self._pending) > _PENDING:
            self._settle()

    def _settle(self) -> None:
        """Apply the queued changes to the notes, in the order they happened."""
        pending, self._pending = self._pending, []
        for change in pending:
            if change[0] is _ROWS:
                self._note_rows(*change[1:])
            elif change[0] is _WRITE:
                self._note(*change[1:])
            else:
                for node in change[1]:
                    self.written_in.set(node, 0)
                    self.written_outside_at.pop(node, None)
                    self.first_written_in.set(node, 0)
                    self.more_roots_into.pop(node, None)

    def _note_rows(self, p, start: int, stop: int) -> None:
        """Note rows ``start`` to ``stop`` of pass ``p``'s writes, column-wise while the node
        ids fit the slots, a slice at a time (little memory for a long pass). Within one pass
        the notes do not depend on the order of the writes, and noting a write twice changes
        nothing."""
        log = p.writes
        for begin in range(start, stop, _SLICE):
            end = min(stop, begin + _SLICE)
            if log.odd:
                self._note_all(p.pass_no, [log.target(row) for row in range(begin, end)])
            else:  # ints, from the log's int64 column
                self._note_all(p.pass_no, log.targets[begin:end].tolist(), ints=True)

    def _note_all(self, pass_no: int, targets: list, ints: bool = False) -> None:
        """:meth:`_note` each of ``targets`` (``ints``: all known to be ints), written in pass ``pass_no``."""
        written, firsts = self.written_in, self.first_written_in
        root = self.roots.get(pass_no)
        plain = ints or {*map(type, targets)} == {int}
        made: Dict[int, list] = {}

        def offsets(base: int) -> list:  # each target less ``base``, made once for both maps
            found = made.get(base)
            if found is None:
                found = made[base] = list(map(sub, targets, repeat(base)))
            return found
        firsts_then = firsts.get_many(targets, offsets) if plain and root is not None else None
        if not plain or not written.set_many(targets, pass_no + 1, offsets):
            for target in targets:
                self._note(target, pass_no, None)
            return
        if root is None:
            return
        seen = any(firsts_then)  # a target a pass with a root wrote before
        new = list(compress(targets, map(not_, firsts_then))) if seen else targets
        if new and not firsts.set_many(new, pass_no + 1, offsets if new is targets else None):
            for target in new:
                firsts.set(target, pass_no + 1)
        for first in ({*firsts_then} - {0} if seen else ()):
            if self.roots[first - 1] != root:
                for target, then in zip(targets, firsts_then):
                    if then == first:
                        self.more_roots_into.setdefault(target, set()).add(root)

    def on_grads_zeroed(self, event) -> None:
        self._catch_up()  # the writes before the zeroing come first
        self.zeroes = True
        self._later((_ZEROED, event.nodes))
        for node in event.nodes:
            self.group_values.pop(node, None)

    def on_backward_started(self, event) -> None:
        ctx, model = self.ctx, self.ctx.model
        p = ctx.pass_
        ctx.stale_from = {}
        grads = event.grads_before  # the grads that are not zero picked by built-in maps, then looked at
        stale = [] if p.began_zeroed else [  # a pass begun from zeroed grads is not read again
            (n, g) for n, g in compress(zip(event.order, grads), map(ne, grads, repeat(0)))
            if model.node(n).op != "const"]
        stale.sort(key=lambda item: model.node(item[0]).op != "")  # leaves first
        site = ctx.begin_sites.get(p.pass_no)
        self.roots[p.pass_no] = p.root
        if stale:
            self._settle()  # where each stale grad came from is read from the notes
        if self._accumulating(event, stale):
            return
        for node, before in stale:
            source = self._source(node)
            ctx.stale_from[node] = self._source_text(source)
            ctx.report("stale_gradient", "warning", site, p.pass_no, (node,), (before, source), self.describe)

    def _accumulating(self, event, stale) -> bool:
        """True when the stale grads add up a group's gradients: the run zeroes, every stale
        node is a leaf whose grad came from passes of other roots, and no leaf's value
        changed since its grad began to add up (no update inside the group)."""
        if not self.zeroes:
            return False
        leaves = self.ctx.model.nodes.parentless(event.order)  # column-wise
        held: Set[int] = {n for n, _ in stale}
        now = values_of(set(leaves))  # a set: each live node is looked up in it
        for node in leaves:
            if node not in held and node in now:
                self.group_values[node] = now[node]  # its grad begins to add up in this pass
        if not stale:
            return False
        for node in held:
            if not self.ctx.is_parentless(node) or self.written_in.get(node) <= 1 \
                    or self._written_from(node, event.root):
                return False
            if node not in now or self.group_values.get(node) != now[node]:
                return False
        return True

    def _written_from(self, node: int, root: int) -> bool:
        """Did a pass of ``root`` write ``node``'s grad (or is it unknown who did)?"""
        first = self.first_written_in.get(node)
        first = self.roots.get(first - 1) if first else None
        return first is None or first == root or root in self.more_roots_into.get(node, ())

    def _source(self, node: int) -> Source:
        pass_no = self.written_in.get(node) - 1
        if pass_no < 0:
            return ("before",)
        if pass_no:
            return ("pass", pass_no, self.ctx.begin_sites.get(pass_no))
        return ("outside", self.written_outside_at.get(node))

    @staticmethod
    def _source_text(source: Source) -> str:
        if source[0] == "pass":
            return f"pass {source[1]}"
        if source[0] == "outside":
            return "a write outside any backward pass" + (f" ({source[1]})" if source[1] else "")
        return "before this trace began"

    def describe(self, cause: Cause) -> Tuple[str, str]:
        ctx, site = self.ctx, cause.site
        code = source_line(site)
        at = f" at {site}" + (f" (`{code}`)" if code else "") if site else ""
        sources = [o.detail[1] for o in cause.occurrences]
        previous = {s[2] for s in sources if s[0] == "pass"}
        if site and previous == {site}:
            between = f"nothing zeroed {{them}} between the backward calls at {site}"
        elif site and len(previous) == 1 and None not in previous:
            between = f"nothing zeroed {{them}} between the backward call at {previous.pop()} and the one at {site}"
        else:
            between = "nothing zeroed {them} before the pass"
        hint = (f"zero the gradients just before the backward call at {site}" if site else
                "zero the gradients before each backward call") + \
            " (zero_grad(), or set each .grad to 0); ignore this if you meant to add up gradients over several passes"
        nodes = sorted(cause.distinct())
        if len(cause.occurrences) == 1:
            o = cause.first
            before, source = o.detail
            name = ctx.name(o.nodes[0])
            if source[0] == "pass":
                began = source[2]
                began = (f", begun at {began}" if began and began != site else
                         ", begun at the same line" if began else "")
                held = f"it still held the gradient from pass {source[1]}{began}, and nothing zeroed it in between"
            else:
                held = f"it was left from {self._source_text(source)}"
            return f"{name}.grad was {number(before)} when backward pass {o.pass_no} began{at}: {held}", hint
        leaves = all(ctx.model.node(n).op == "" for n in nodes)
        what = plural(len(nodes), "parameter" if leaves else "node")
        from_passes = sorted({s[1] for s in sources if s[0] == "pass"})
        if len(from_passes) == 1 and all(s[0] == "pass" for s in sources):
            origin = f"pass {from_passes[0]}"
        elif all(s[0] == "pass" and s[1] == o.pass_no - 1 for s, o in zip(sources, cause.occurrences)):
            origin = "the previous pass"
        else:
            origin = "earlier passes or from outside them"
        return (f"{what} ({ctx.names(nodes)}) held gradients from {origin} when "
                f"{passes_text(cause.passes)} began{at if not site or previous != {site} else ''}; "
                f"{between.format(them='them')}", hint)

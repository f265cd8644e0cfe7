"""fired_twice and fired_too_early: a traversal that runs backward functions out of order.

Both are located at the traversal that fired the node (the loop around the call, or
the recursive call of a recursive backward), read from the call stack while the
engine runs; without it (replayed events), at the node's own line.
"""

from __future__ import annotations

from array import array
from itertools import repeat
from operator import add, getitem, gt, lt, neg, sub
from typing import Dict, List, Optional, Tuple

from ...core.captured import FIRED, WRITE
from ...core.text import number, plural
from ...core.write_log import packed
from ..causes import Cause, passes_text
from .base import Check

__all__ = ["FiredTwice", "FiredTooEarly", "traversal"]


def traversal(ctx, node: int, writing: Optional[str] = None) -> Tuple[Optional[str], Optional[str]]:
    """(site, source text) of the traversal firing ``node`` now, else the node's own site
    (``writing``: the site of the write under way, see :meth:`Context.firing_site`). A worklist
    loop's nodes fire when the test that puts them on it says: that test is named."""
    where = ctx.firing_site(writing)
    if where is None:
        return ctx.site_of(node), None
    if where.ready_site is not None:
        return where.ready_site, where.ready_code
    return where.site, where.code


def _pushed_again(firings: List[list], grads: List[float]) -> Optional[int]:
    """The firing number from which a node's pushes are out of proportion to what it had
    newly received, or None when each firing passed on only what was new. ``grads`` holds
    the node's grad before the pass, at each firing, and at the end.

    >>> _pushed_again([[1, 1.0, {7: 4.0}], [3, 1.0, {7: 4.0}]], [0.0, 1.0, 1.0, 1.0])
    3
    >>> _pushed_again([[1, 0.0, {7: 2.0}], [3, 1.0, {7: 1.0}]], [0.0, 0.0, 1.0, 1.5])
    """
    before = [b - a for a, b in zip(grads, grads[1:-1])]  # received just before each firing
    after = [b - a for a, b in zip(grads[1:], grads[2:])]  # received just after it
    worst = None
    for increments in (before, after):
        failed = _out_of_proportion(firings, increments)
        if failed is None:
            return None
        worst = failed if worst is None else max(worst, failed)
    return worst


def _out_of_proportion(firings: List[list], increments: List[float]) -> Optional[int]:
    targets = {t for f in firings for t in f[2]}
    for target in targets:
        ratio = None
        for (number_, _, pushed), increment in zip(firings, increments):
            amount = pushed.get(target, 0.0)
            if ratio is None and increment != 0:
                ratio = amount / increment
            expected = 0.0 if ratio is None else ratio * increment
            if abs(amount - expected) > 1e-9 * max(1.0, abs(amount), abs(expected)):
                return number_
    return None


def _the_traversal(site: Optional[str], code: Optional[str]) -> str:
    if not site:
        return "the traversal"
    if code and code.startswith("if "):
        return f"the traversal, through the test at {site} (`{code}`) that makes a node ready to fire,"
    return f"the traversal at {site}" + (f" (`{code}`)" if code else "")


class FiredTwice(Check):
    """A node whose backward function runs again in one pass and pushes again what it had
    pushed already (a node with parents: a leaf firing twice pushes nothing).

    An engine may propagate path by path, each firing passing on only what is new (the
    grad received just before it, or, in a recursive ``backprop(bp)``, just after it):
    its pushes are then in proportion to those increments, and it is not reported.
    Decided at the end of the pass, when every push is known.
    """

    def on_pass_start(self, p) -> None:
        # A firing is (its number, the node's grad then, how many writes the pass had made
        # before it). Every firing's grad and write count go in two flat rows, by firing
        # number: no object per firing. ``first`` (node -> its first firing number) lasts
        # as long as the pass.
        self.grads: "array | list" = array("d")
        self.writes_then = array("q")
        self.first: Dict[int, int] = {}
        self.again: Dict[int, List[tuple]] = {}  # node fired more than once -> all its firings
        self.sites: Dict[int, Tuple[Optional[str], Optional[str]]] = {}

    def on_backward_fn_fired(self, event) -> None:
        ctx = self.ctx
        p = ctx.pass_
        if p is None or p.pass_no != event.pass_no:
            return
        grads, writes_then = self.grads, self.writes_then
        try:
            grads.append(event.grad)
        except TypeError:  # not a real number: the row becomes a list
            grads = self.grads = list(grads)
            grads.append(event.grad)
        writes_then.append(len(p.writes))
        number, node = len(p.fired), event.node
        first = self.first.setdefault(node, number)
        if first == number or len(grads) != number:  # its first firing (or one not seen here)
            return
        firing = (number, event.grad, writes_then[-1])
        firings = self.again.get(node)
        if firings is not None:
            firings.append(firing)
            return
        self.again[node] = [(first, grads[first - 1], writes_then[first - 1]), firing]
        if not ctx.is_parentless(node):
            self.sites[node] = traversal(ctx, node)

    def singles(self, run) -> List[int]:
        """The firings of a node that fired before in the pass: read one by one (all of
        them if this check has not seen every firing of the pass)."""
        if not run.fire_at:
            return []
        nodes, first = run.column(FIRED, 2), self.first
        if len(self.grads) != len(self.ctx.pass_.fired):
            return run.fire_at
        if run.distinct(FIRED, 2) and first.keys().isdisjoint(nodes):
            return []
        seen, again = set(first), []
        for at, node in zip(run.fire_at, nodes):
            if node in seen:
                again.append(at)
            seen.add(node)
        return again

    def on_run(self, run) -> None:
        """:meth:`on_backward_fn_fired` for a run's first firings (see :meth:`singles`),
        column-wise, after the model has folded the run."""
        if not run.fire_at:
            return
        p = self.ctx.pass_
        nodes, grads = run.column(FIRED, 2), run.column(FIRED, 3)
        fired_before = len(p.fired) - len(nodes)
        if self.grads.__class__ is array and run.types(FIRED, 3) <= {float}:
            self.grads.frombytes(packed("d", grads))
        else:
            for grad in grads:
                try:
                    self.grads.append(grad)
                except TypeError:  # not a real number: the row becomes a list
                    self.grads = list(self.grads)
                    self.grads.append(grad)
        earlier = len(p.writes) - len(run.write_at)  # the pass's writes before the run
        if run.node_at:
            writes_before = run.writes_before()
            then = list(map(add, map(getitem, repeat(writes_before), run.fire_at), repeat(earlier)))
        else:  # the writes before the k-th firing of the run: its place less the k firings before it
            then = list(map(sub, run.fire_at, range(-earlier, len(nodes) - earlier)))
        self.writes_then.frombytes(packed("q", then))
        self.first.update(zip(nodes, range(fired_before + 1, fired_before + len(nodes) + 1)))

    def _pushes(self, p, nodes) -> Dict[int, List[list]]:
        """node -> [[firing number, its grad then, {target: pushed}]] for ``nodes``: each of
        the pass's writes counts for the latest firing of its writer before it."""
        firings = {node: [[number, grad, {}] for number, grad, _ in self.again[node]] for node in nodes}
        starts = {node: [f[2] for f in self.again[node]] for node in nodes}
        latest = dict.fromkeys(nodes, -1)  # node -> its firing the writes have reached
        for position, write in enumerate(p.writes):
            rows = firings.get(write.fired_by)
            if rows is None:
                continue
            begun = starts[write.fired_by]
            k = latest[write.fired_by]
            while k + 1 < len(begun) and begun[k + 1] <= position:
                k += 1
            latest[write.fired_by] = k
            if k >= 0:  # -1: written before its first firing, so not one of its pushes
                pushed = rows[k][2]
                pushed[write.target] = pushed.get(write.target, 0.0) + write.contribution
        return firings

    def on_pass_end(self, p) -> None:
        pushes = self._pushes(p, self.sites) if self.sites else {}
        for node, (site, code) in self.sites.items():
            firings = pushes[node]
            writes = p.writes_to.get(node)
            grads = [p.grads_before.get(node, 0.0), *(f[1] for f in firings),
                     writes[-1].grad_after if writes else firings[-1][1]]
            again = _pushed_again(firings, grads)
            if again is not None:
                self.ctx.report("fired_twice", "error", site, p.pass_no, (node,),
                                (firings[0][0], again, code), self.describe)
        self.sites, self.first, self.again = {}, {}, {}
        self.grads, self.writes_then = array("d"), array("q")

    def describe(self, cause: Cause) -> Tuple[str, str]:
        ctx = self.ctx
        code = cause.first.detail[2]
        hint = (f"{_the_traversal(cause.site, code)} reaches a node more than once: visit each node once "
                f"per pass (keep a visited set while building the order, and build the order afresh in "
                f"every backward call)")
        if len(cause.occurrences) == 1:
            o = cause.first
            first, again, _ = o.detail
            name = ctx.name(o.nodes[0])
            return (f"{name}'s backward function ran twice in backward pass {o.pass_no} (firings {first} "
                    f"and {again}), so it pushed its gradient to its parents twice"), hint
        nodes = cause.distinct()
        return (f"{plural(len(nodes), 'node')} ({ctx.names(nodes)}) had their backward function run more "
                f"than once in {passes_text(cause.passes)}, each pushing its gradient to its parents again"), hint


class FiredTooEarly(Check):
    """A node that fired before a node using it had added to its grad, and never fired
    again to pass that on: it passed on an incomplete gradient. Decided at the end of the
    pass (an engine propagating path by path fires the node again)."""

    def on_pass_start(self, p) -> None:
        self.late: Dict[int, tuple] = {}  # node -> its first late write, and where it was fired from
        # node -> its latest firing number, negative until that firing writes to a parent;
        # 0 for a node that wrote without being seen to fire
        self.latest: Dict[int, int] = {}

    def on_backward_fn_fired(self, event) -> None:
        p = self.ctx.pass_
        if p is not None and p.pass_no == event.pass_no:
            self.latest[event.node] = -len(p.fired)

    def singles(self, run) -> List[int]:
        """The writes to a node that fired or wrote before them in the pass (it may have
        passed its gradient on already): read one by one. Elsewhere only
        :meth:`on_run`'s notes are needed."""
        if not run.write_at:
            return []
        targets, writers, write_at = run.column(WRITE, 2), run.column(WRITE, 3), run.write_at
        # None unless a node fired, or wrote, before a write to it in the run: before the
        # last write to it (one map, read at each firing and each write)
        last_into = dict(zip(targets, write_at))
        if self.latest.keys().isdisjoint(last_into) and not (
                run.fire_at and True in map(lt, run.fire_at, map(last_into.get, run.column(FIRED, 2), repeat(-1)))) \
                and True not in map(lt, write_at, map(last_into.get, writers, repeat(-1))):
            return []
        firsts = [dict(zip(reversed(run.column(FIRED, 2)), reversed(run.fire_at))) if run.fire_at else {},
                  dict(zip(reversed(writers), reversed(write_at)))]  # a node -> its first place in the run
        end = len(run)
        latest = self.latest
        return [at for at, target, writer in zip(write_at, targets, writers) if writer is not None and (
            target in latest or firsts[0].get(target, end) < at or firsts[1].get(target, end) < at)]

    def on_run(self, run) -> None:
        """The notes of :meth:`on_backward_fn_fired` and :meth:`on_grad_accumulated` for a
        run (after the model has folded it): each node's latest firing number, negative
        until that firing wrote to a parent."""
        if not run.fire_at and not run.write_at:
            return
        p, latest = self.ctx.pass_, self.latest
        nodes = run.column(FIRED, 2) if run.fire_at else ()
        writers = run.column(WRITE, 3) if run.write_at else ()
        number = len(p.fired) - len(nodes)  # firings before the run
        if not run.distinct(FIRED, 2):  # a node fired twice in the run: one by one
            for raw in run.raws:
                if raw[0] == FIRED:
                    number += 1
                    latest[raw[2]] = -number
                elif raw[3] is not None:
                    self._pushed(raw[3])
            return
        numbers = range(number + 1, number + len(nodes) + 1)
        last_write = dict(zip(writers, run.write_at))  # a writer -> its last write in the run
        pushed = map(gt, map(last_write.get, nodes, repeat(-1)), run.fire_at)
        latest.update(zip(nodes, map(getitem, zip(map(neg, numbers), numbers), pushed)))  # -number until pushed
        for writer in last_write.keys() - set(nodes) - {None}:  # wrote with no firing in the run
            self._pushed(writer)

    def _pushed(self, writer: int) -> None:
        """Note that ``writer``'s latest firing wrote to a parent (0: it wrote unseen firing)."""
        fired = self.latest.get(writer)
        if fired is None or fired < 0:
            self.latest[writer] = 0 if fired is None else -fired

    def on_grad_accumulated(self, event) -> None:
        ctx = self.ctx
        p = ctx.pass_
        writer = event.fired_by
        if p is None or writer is None or p.pass_no != event.pass_no:
            return
        target, latest = event.target, self.latest
        fired = latest.get(writer)
        if fired is None or fired < 0:
            latest[writer] = 0 if fired is None else -fired
        # A grad received before the node's firing has pushed anything (a recursive
        # backprop(bp) adds bp to itself first) is on time.
        # A target that pushed has parents, even where they were only found in the pass
        # (consumer lists read backwards).
        if latest.get(target, -1) < 0 or writer not in p.reachable or target == writer \
                or target in self.late:
            return
        relation = "which uses it" if target in ctx.model.node(writer).parents else "which writes to it"
        site, code = traversal(ctx, target, event.site)
        self.late[target] = (len(p.fired), writer, site, (relation, event.contribution, p.upstream.get(target), code))

    def on_pass_end(self, p) -> None:
        for target, (fired_then, writer, site, detail) in self.late.items():
            if abs(self.latest.get(target, 0)) <= fired_then:  # it never passed the late part on
                self.ctx.report("fired_too_early", "error", site, p.pass_no, (target, writer), detail,
                                self.describe)
        self.late, self.latest = {}, {}

    def describe(self, cause: Cause) -> Tuple[str, str]:
        ctx = self.ctx
        code = cause.first.detail[3]
        hint = (f"{_the_traversal(cause.site, code)} runs backward functions out of order: run them in "
                f"reverse topological order, so that a node fires only after every node that uses it "
                f"(reverse a post-order depth-first search from the root)")
        o = cause.first
        target, writer = o.nodes
        relation, contribution, upstream, _ = o.detail
        t, w = ctx.name(target), ctx.name(writer)
        passed = f" ({number(upstream)})" if upstream is not None else ""
        if len(cause.occurrences) == 1:
            return (f"{t} fired too early in backward pass {o.pass_no}: {w}, {relation}, fired after it "
                    f"and added {number(contribution)} to {t}.grad, so {t} had passed on an incomplete "
                    f"gradient{passed}"), hint
        nodes = cause.distinct()
        return (f"{plural(len(nodes), 'node')} ({ctx.names(nodes)}) fired too early in "
                f"{passes_text(cause.passes)}: each fired before a node that uses it had added to its "
                f"grad, and passed on an incomplete gradient (first: {w} added {number(contribution)} "
                f"to {t}.grad after {t} had passed on{passed or ' its gradient'})"), hint

"""fired_outside_graph and polluted_grad: a node of another graph fired in this pass.

A node fires although the pass's root does not depend on it: the list of nodes to visit
outlives the pass. It is located at that list when the loop walks a module-level list
(``order = []``), else at the loop, else at the node. At the end of the pass, every
grad of this graph that such a node wrote to is set against what this graph's own
writes add up to (polluted_grad), at the same line.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import compress
from operator import not_
from typing import Dict, List, Optional, Tuple

from ...core.captured import FIRED
from ...core.text import number, plural
from ..callers import LoopSite
from ..causes import Cause, passes_text
from .base import Check

__all__ = ["FiredOutsideGraph"]


class FiredOutsideGraph(Check):
    """Reports each node fired outside its pass's graph, once its writes are known, and the
    grads of this graph it changed."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.firing: Optional[list] = None  # [node, {target: added}, LoopSite] while it writes
        self.into: Dict[int, Dict[int, float]] = {}  # target -> {outside writer: added}
        self.site: Optional[str] = None  # this pass's outside firings are located here

    def on_pass_start(self, p) -> None:
        self.into, self.firing, self.site = {}, None, None

    def _home(self, node: int) -> Optional[int]:
        """The last pass before this one whose graph held ``node``: looked up only for a node
        that fired outside its pass (rare), so no map of every node is kept."""
        for q in reversed(self.ctx.model.passes):
            if q is not self.ctx.pass_ and node in q.reachable:
                return q.pass_no
        return None

    def singles(self, run) -> List[int]:
        """Each firing outside the pass's graph and the events up to the next firing (its
        writes, and the firing that reports it), read one by one; from the start of the run
        when such a firing is under way. Elsewhere this check has nothing to do."""
        fire_at = run.fire_at
        starts = [] if self.firing is None else [-1]
        p = self.ctx.pass_
        if fire_at and p is not None and p.order:
            inside = map(p.reachable.contains, run.column(FIRED, 2))
            starts += compress(fire_at, map(not_, inside))
        found: List[int] = []
        for start in starts:
            if start < 0:  # a firing under way when the run begins: up to the run's first firing
                found += range(0, fire_at[0] + 1 if fire_at else len(run))
                continue
            after = bisect_right(fire_at, start)
            found += range(start, fire_at[after] + 1 if after < len(fire_at) else len(run))
        return found

    def on_run(self, run) -> None:
        """Firings inside the graph, with no outside firing under way (see :meth:`singles`):
        nothing to note."""

    def on_backward_fn_fired(self, event) -> None:
        if self.firing is not None:
            self._end_firing()
        p = self.ctx.pass_
        if p is not None and p.pass_no == event.pass_no and event.node not in p.reachable \
                and p.order:  # empty: the engine did not say
            self.firing = [event.node, {}, self.ctx.firing_site()]

    def on_grad_accumulated(self, event) -> None:
        firing = self.firing
        if firing is None or firing[0] != event.fired_by or self.ctx.in_pass(event.pass_no) is None:
            return
        added = firing[1]
        if not added and event.site and firing[2] is not None and firing[2].site == event.site:
            firing[2] = self.ctx.firing_site(event.site) or firing[2]  # noticed at its first write: step out of the rule
        added[event.target] = added.get(event.target, 0.0) + event.contribution
        into = self.into.setdefault(event.target, {})
        into[event.fired_by] = into.get(event.fired_by, 0.0) + event.contribution

    def on_pass_end(self, p) -> None:
        self._end_firing()
        for target, writers in self.into.items():
            if target in p.reachable:
                self._report_polluted(p, target, writers)

    def _end_firing(self) -> None:
        if self.firing is None:
            return
        node, added, where = self.firing
        self.firing = None
        ctx, p = self.ctx, self.ctx.pass_
        site = (where.step_site or where.list_site or where.site) if where is not None else ctx.site_of(node)
        if where is not None:
            self.site = self.site or site
        detail = (p.root, self._home(node), added, p.upstream.get(node), where)
        ctx.report("fired_outside_graph", "error", site, p.pass_no, (node, *added), detail, self.describe)

    def describe(self, cause: Cause) -> Tuple[str, str]:
        ctx = self.ctx
        o = cause.first
        root, home, added, upstream, where = o.detail
        hint = _hint(where)
        if len(cause.occurrences) == 1:
            node = o.nodes[0]
            belongs = (f"it is left over from pass {home}'s graph" if home is not None
                       else "it is not part of any backward pass's graph")
            if added:
                what = " and ".join(f"{number(v)} more to {ctx.name(t)}.grad" for t, v in added.items())
                effect = f"and, passing on its grad of {number(upstream)}, added {what}"
            else:
                effect = "and wrote no gradient"
            return (f"{ctx.who(node)} fired in backward pass {o.pass_no} although that pass's root "
                    f"{ctx.who(root)} does not depend on it; {belongs} {effect}"), hint
        nodes = cause.distinct()
        targets: List[int] = []
        for occurrence in cause.occurrences:
            targets.extend(t for t in occurrence.detail[2] if t not in targets)
        effect = f"added to the grads of {ctx.names(targets)}" if targets else "wrote no gradient"
        return (f"{plural(len(nodes), 'node')} ({ctx.names(nodes)}) fired in {passes_text(cause.passes)} "
                f"although the pass's root does not depend on them: they are left over from earlier "
                f"graphs, and {effect}"), hint

    def _report_polluted(self, p, target: int, writers: Dict[int, float]) -> None:
        ctx = self.ctx
        writes = p.writes_to.get(target, ())
        final = writes[-1].grad_after if writes else 0.0
        own = sum(w.contribution for w in writes if w.fired_by is None or w.fired_by in p.reachable)
        before = p.grads_before.get(target, 0.0)
        detail = (final, own, before, ctx.stale_from.get(target, "an earlier pass"), dict(writers))
        ctx.report("polluted_grad", "error", self.site or ctx.site_of(target), p.pass_no,
                   (target, *writers), detail, self.describe_polluted)

    def describe_polluted(self, cause: Cause) -> Tuple[str, str]:
        ctx = self.ctx
        o = cause.first
        target = o.nodes[0]
        final, own, before, source, writers = o.detail
        t = ctx.name(target)
        if len(cause.occurrences) > 1:
            nodes = cause.distinct()
            return (f"{plural(len(nodes), 'grad')} ({ctx.names(nodes)}) ended {passes_text(cause.passes)} "
                    f"holding more than their own graph's writes add up to: nodes of other graphs "
                    f"wrote to them (first: {t}.grad ended pass {o.pass_no} at {number(final)}, where "
                    f"this graph gives {number(own)})"), \
                "with only each pass's own graph firing, and grads zeroed before it, they would be right"
        parts = []
        if before != 0:
            parts.append(f"{number(before)} was left from {source}")
        for writer, added in writers.items():
            parts.append(f"{number(added)} came from {ctx.name(writer)}")
        return (f"{t}.grad ended backward pass {o.pass_no} at {number(final)}, but the writes from "
                f"this pass's own graph add up to {number(own)}: {' and '.join(parts)}, which "
                f"{'is' if len(writers) == 1 else 'are'} not part of this graph"), \
            (f"with gradients zeroed before the pass and only this graph's backward functions firing, "
             f"{t}.grad would be {number(own)}")


def _hint(where: Optional[LoopSite]) -> str:
    fix = "build it afresh from the root inside each backward call"
    if where is None:
        return ("the list of nodes to visit outlives the pass (a module-level order list or visited "
                f"set, say); {fix}")
    loop = f"the loop at {where.site}" + (f" (`{where.code}`)" if where.code else "")
    if where.list_name and "." in where.list_name:  # a node's own list of consumers
        return (f"`{where.list_name}` is set at {where.list_site} and keeps the consumers of earlier "
                f"graphs, so {loop} visits them: empty it whenever the gradients are reset")
    if where.list_name and where.step_site:  # a list the script keeps and hands to the engine
        return (f"`{where.list_name}` is made once, at {where.list_site}, and outlives the pass, so {loop} "
                f"visits nodes of earlier graphs: empty it at the start of each step ({where.step_site})")
    if where.list_name:
        return (f"`{where.list_name}` is made once, at {where.list_site}, and outlives the pass, so {loop} "
                f"visits nodes of earlier graphs: {fix} (and any visited set kept with it)")
    return f"{loop} visits nodes that are not in this pass's graph: its list outlives the pass; {fix}"

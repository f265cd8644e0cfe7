"""A backward pass as a Rich tree: rooted at the output, one line per edge, capped.

Each node is drawn in full once, with its op, value, the grads it went through and
when it fired; reaching it again draws a one-line reference (``↩ x #1``), so the
tree grows with the number of edges, never exponentially. A branch deeper than half
the width continues in a tree of its own below, so long chains stay readable.
Nodes that fired outside the root's graph get a branch of their own.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Dict, Iterator, List, Optional, Set, Tuple

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from rich.tree import Tree

from ...core.events import GradAccumulated
from ...core.model import PassInfo, TraceModel
from ...core.text import display_name, number, ordinal, visible
from .ledger import overwrote
from .styles import ADDED, DIM, FIRING, JUST_WRITTEN, NOW, OP, STRONG, WARN, WRONG

__all__ = ["PassTree", "grad_chain"]

_GUIDE_WIDTH = 4  # Rich draws each tree level four cells deeper


def grad_chain(start: float, afters: List[float], *, stale: bool = False, limit: int = 6) -> Text:
    """``grad 0 → 9 → 18``: where a grad started and every value it took, long runs cut.

    >>> grad_chain(2.0, [11.0, 20.0], stale=True).plain
    'grad 2 → 11 → 20  ⚠ stale'
    >>> grad_chain(0.0, [float(i) for i in range(1, 101)]).plain
    'grad 0 → 1 → 2 → … → 99 → 100  (100 contributions)'
    """
    text = Text.assemble(("grad ", DIM))
    text.append(number(start), style=WARN if stale else ADDED)
    values = afters if len(afters) <= limit else [*afters[:2], None, *afters[-2:]]
    for value in values:
        text.append(" → ", style=DIM)
        text.append("…" if value is None else number(value), style=ADDED)
    if len(afters) > limit:
        text.append(f"  ({len(afters)} contributions)", style=DIM)
    if stale:
        text.append("  ⚠ stale", style=WARN)
    return text


class PassTree:
    """One pass as a tree rooted at its output, plus what fired outside that graph.

    Args:
        model: the trace, folded into a :class:`TraceModel`.
        pass_no: which pass to draw.
        max_lines: at most this many tree lines; the rest are counted and reported.
        now: the node to highlight as firing now (live view).
        just_written: the node whose grad changed last (live view).
        total_lines: the main tree's line count when already known; skips counting it.
    """

    def __init__(self, model: TraceModel, pass_no: int, *, max_lines: int = 200,
                 now: Optional[int] = None, just_written: Optional[int] = None,
                 total_lines: Optional[int] = None) -> None:
        self.model = model
        self.pass_no = pass_no
        self.max_lines = max_lines
        self.now = now
        self.just_written = just_written
        self.total_lines = total_lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        p = self.model.pass_(self.pass_no)
        if p is None:
            return
        outside = self._outside_tree(p, max(1, self.max_lines // 2))
        budget = max(1, self.max_lines - (outside[1] if outside else 0))
        max_depth = max(2, options.max_width // (2 * _GUIDE_WIDTH))
        trees, shown, total = self.main_trees(p, budget, max_depth)
        yield from trees
        if total > shown:
            yield Text(f"… {total - shown} more lines not shown (showing {shown} of {total}; "
                       f"raise max_lines to see more)", style=DIM)
        if outside:
            yield outside[0]

    def count_lines(self) -> int:
        """How many lines the whole main tree has: one per edge the root reaches, plus one."""
        p = self.model.pass_(self.pass_no)
        return 0 if p is None else self.main_trees(p, 0, 1)[2]

    # -- lines ------------------------------------------------------------------------
    def _line(self, p: PassInfo, node_id: int, fire_counts: Optional[Dict[int, int]]) -> Text:
        info = self.model.node(node_id)
        label = display_name(info.name, node_id)
        text = Text.assemble((label, STRONG))
        text.append(f"  {visible(info.op, None) or 'leaf'}", style=OP)
        text.append("  value ", style=DIM)
        text.append(number(info.value))
        writes = p.writes_to.get(node_id, ())
        start = p.grads_before.get(node_id, writes[0].grad_before if writes else info.grad)
        text.append("  ")
        text.append_text(grad_chain(start, [w.grad_after for w in writes], stale=start != 0))
        if any(overwrote(w, p.root) for w in writes):
            text.append("  ⚠ assigned, not added", style=WRONG)
        fired_as = p.fire_number.get(node_id)
        if fired_as is not None:
            text.append(f"  fired {ordinal(fired_as)}", style=FIRING)
            times = fire_counts.get(node_id, 1) if fire_counts else 1
            if times > 1:
                text.append(f" ⚠ {times} times", style=WRONG)
        if node_id == self.now:
            text.stylize(NOW, 0, len(label))
        elif node_id == self.just_written:
            text.stylize(JUST_WRITTEN, 0, len(label))
        return text

    def _reference(self, node_id: int) -> Text:
        return Text(f"↩ {display_name(self.model.node(node_id).name, node_id)}", style=DIM)

    @staticmethod
    def _fire_counts(p: PassInfo) -> Optional[Dict[int, int]]:
        if len(p.fired) == len(p.fire_number):
            return None  # every node fired once: nothing to count
        counts: Dict[int, int] = {}
        for node_id in p.fired:
            counts[node_id] = counts.get(node_id, 0) + 1
        return counts

    # -- trees --------------------------------------------------------------------------
    def main_trees(self, p: PassInfo, budget: int, max_depth: int) -> Tuple[List[Tree], int, int]:
        """Depth first from the root with an explicit stack, drawing ``budget`` lines
        and counting the rest; a branch deeper than ``max_depth`` continues below."""
        fire_counts = self._fire_counts(p) if budget else None
        expanded: Set[int] = {p.root}
        trees: List[Tree] = []
        later: Deque[Tuple[int, bool]] = deque([(p.root, False)])  # (node, continued)
        shown = total = headers = 0  # headers: lines that repeat a continued node
        while later:
            node_id, continued = later.popleft()
            drawing = shown + headers < budget
            if not continued:
                total += 1
            if drawing:
                label = self._line(p, node_id, fire_counts)
                if continued:
                    label = Text.assemble(("↪ ", DIM), label, ("  (continued)", DIM))
                    headers += 1
                else:
                    shown += 1
                trees.append(Tree(label, guide_style=DIM))
            elif self.total_lines is not None:
                return trees, shown, self.total_lines
            stack: List[Tuple[Optional[Tree], Iterator[int], int]] = [
                (trees[-1] if drawing else None, iter(self.model.node(node_id).parents), 1)]
            while stack:
                branch, parents, depth = stack[-1]
                child_id = next(parents, None)
                if child_id is None:
                    stack.pop()
                    continue
                total += 1
                drawing = branch is not None and shown + headers < budget
                if child_id in expanded:
                    if drawing:
                        branch.add(self._reference(child_id))
                        shown += 1
                    continue
                expanded.add(child_id)
                child = None
                if drawing:
                    child = branch.add(self._line(p, child_id, fire_counts))
                    shown += 1
                elif self.total_lines is not None:
                    return trees, shown, self.total_lines
                grandparents = self.model.node(child_id).parents
                if not grandparents:
                    continue
                if depth >= max_depth:  # too deep to indent further: draw its inputs below
                    later.append((child_id, True))
                    if child is not None:
                        child.label.append("  ↪ continued below", style=DIM)
                else:
                    stack.append((child, iter(grandparents), depth + 1))
        return trees, shown, total

    def _outside_tree(self, p: PassInfo, budget: int) -> Optional[Tuple[Tree, int]]:
        """Nodes that fired or were written although the root cannot reach them, in at
        most ``budget`` lines."""
        fired = list(dict.fromkeys(p.fired_outside))
        fired_set = set(fired)
        written = [n for n in p.writes_to if n not in p.reachable and n not in fired_set]
        if not fired and not written:
            return None
        by_sender: Dict[int, List[GradAccumulated]] = {n: [] for n in fired}
        for w in p.writes:
            if w.fired_by in fired_set:
                by_sender[w.fired_by].append(w)
        root = display_name(self.model.node(p.root).name, p.root)
        tree = Tree(Text(f"⚠ fired outside this pass's graph: {root} cannot reach these nodes, "
                         f"yet their backward functions ran", style=WRONG), guide_style=WRONG)
        lines = total = 1
        fire_counts = self._fire_counts(p)
        for node_id in fired:
            total += 1 + len(by_sender[node_id])
            if lines >= budget:
                continue
            line = self._line(p, node_id, fire_counts)
            site = self.model.node(node_id).site
            if site:
                line.append(f"  made at {visible(site, None)}", style=DIM)
            branch = tree.add(line)
            lines += 1
            for w in by_sender[node_id][: max(0, budget - lines)]:
                branch.add(self._write_line(w))
                lines += 1
        for node_id in written:
            total += 1
            if lines < budget:
                tree.add(self._line(p, node_id, fire_counts))
                lines += 1
        if total > lines:
            tree.add(Text(f"… {total - lines} more lines not shown", style=DIM))
            lines += 1
        return tree, lines

    def _write_line(self, w: GradAccumulated) -> Text:
        text = Text.assemble(("added ", DIM))
        text.append(number(w.contribution), style=WRONG)
        text.append(" to ", style=DIM)
        text.append(display_name(self.model.node(w.target).name, w.target), style=STRONG)
        if w.local_grad is not None:
            text.append(f"  (local {number(w.local_grad)})", style=DIM)
        text.append(f"  grad {number(w.grad_before)} → {number(w.grad_after)}")
        return text

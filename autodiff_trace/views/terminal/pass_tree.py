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
from ..pass_reads import NodeFacts, outside_of, rows_written_by
from ..pass_shape import reach_of
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
        pending: List[_Pending] = []
        outside = self._outside_tree(p, max(1, self.max_lines // 2), pending)
        budget = max(1, self.max_lines - (outside[1] if outside else 0))
        max_depth = max(2, options.max_width // (2 * _GUIDE_WIDTH))
        trees, shown, total = self._walk(p, budget, max_depth, pending)
        self._label(p, pending)
        yield from trees
        if total > shown:
            yield Text(f"… {total - shown} more lines not shown (showing {shown} of {total}; "
                       f"raise max_lines to see more)", style=DIM)
        if outside:
            yield outside[0]

    def count_lines(self) -> int:
        """How many lines the whole main tree has: one per edge the root reaches, plus one."""
        p = self.model.pass_(self.pass_no)
        if p is None:
            return 0
        known = self._known_total(p)
        return known if known is not None else self._walk(p, 0, 1, [])[2]

    def main_trees(self, p: PassInfo, budget: int, max_depth: int) -> Tuple[List[Tree], int, int]:
        """Depth first from the root with an explicit stack, drawing ``budget`` lines
        and counting the rest; a branch deeper than ``max_depth`` continues below."""
        pending: List[_Pending] = []
        drawn = self._walk(p, budget, max_depth, pending)
        self._label(p, pending)
        return drawn

    # -- lines ------------------------------------------------------------------------
    def _label(self, p: PassInfo, pending: List["_Pending"]) -> None:
        """Give every line drawn its text, reading the pass once for all their nodes."""
        facts = NodeFacts(p, {line.node for line in pending})
        for line in pending:
            label = self._line(p, line.node, facts)
            if line.continued:
                label = Text.assemble(("↪ ", DIM), label, ("  (continued)", DIM))
            if line.below:
                label.append("  ↪ continued below", style=DIM)
            if line.site:
                label.append(f"  made at {visible(line.site, None)}", style=DIM)
            line.tree.label = label

    def _line(self, p: PassInfo, node_id: int, facts: NodeFacts) -> Text:
        info = self.model.node(node_id)
        label = display_name(info.name, node_id)
        text = Text.assemble((label, STRONG))
        text.append(f"  {visible(info.op, None) or 'leaf'}", style=OP)
        text.append("  value ", style=DIM)
        text.append(number(info.value))
        writes = facts.writes_to(node_id)
        start = facts.grads_before.get(node_id, writes[0].grad_before if writes else info.grad)
        text.append("  ")
        text.append_text(grad_chain(start, [w.grad_after for w in writes], stale=start != 0))
        if any(overwrote(w, p.root) for w in writes):
            text.append("  ⚠ assigned, not added", style=WRONG)
        fires = facts.fires.get(node_id)
        if fires:
            text.append(f"  fired {ordinal(fires[0])}", style=FIRING)
            if len(fires) > 1:
                text.append(f" ⚠ {len(fires)} times", style=WRONG)
        if node_id == self.now:
            text.stylize(NOW, 0, len(label))
        elif node_id == self.just_written:
            text.stylize(JUST_WRITTEN, 0, len(label))
        return text

    def _reference(self, node_id: int) -> Text:
        return Text(f"↩ {display_name(self.model.node(node_id).name, node_id)}", style=DIM)

    def _known_total(self, p: PassInfo) -> Optional[int]:
        """The main tree's line count when known without walking it node by node."""
        if self.total_lines is not None:
            return self.total_lines
        reach = reach_of(self.model, p)
        return None if reach is None else 1 + reach.links

    # -- trees --------------------------------------------------------------------------
    def _walk(self, p: PassInfo, budget: int, max_depth: int,
              pending: List["_Pending"]) -> Tuple[List[Tree], int, int]:
        """:meth:`main_trees`, each drawn line noted in ``pending`` to be given its text;
        once ``budget`` lines are drawn, a known total ends the walk."""
        total_lines = self._known_total(p)
        node = self.model.node
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
                trees.append(Tree(_BLANK, guide_style=DIM))
                pending.append(_Pending(trees[-1], node_id, continued=continued))
                if continued:
                    headers += 1
                else:
                    shown += 1
            elif total_lines is not None:
                return trees, shown, total_lines
            stack: List[Tuple[Optional[Tree], Iterator[int], int]] = [
                (trees[-1] if drawing else None, iter(node(node_id).parents), 1)]
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
                    child = branch.add(_BLANK)
                    pending.append(_Pending(child, child_id))
                    shown += 1
                elif total_lines is not None:
                    return trees, shown, total_lines
                grandparents = node(child_id).parents
                if not grandparents:
                    continue
                if depth >= max_depth:  # too deep to indent further: draw its inputs below
                    later.append((child_id, True))
                    if child is not None:
                        pending[-1].below = True
                else:
                    stack.append((child, iter(grandparents), depth + 1))
        return trees, shown, total

    def _outside_tree(self, p: PassInfo, budget: int,
                      pending: List["_Pending"]) -> Optional[Tuple[Tree, int]]:
        """Nodes that fired or were written although the root cannot reach them, in at
        most ``budget`` lines (their own lines noted in ``pending`` to be given text)."""
        fired, written = outside_of(p)
        fired_set = set(fired)
        written = [n for n in written if n not in fired_set]
        if not fired and not written:
            return None
        writes = p.writes
        by_sender: Dict[int, List[GradAccumulated]] = {n: [] for n in fired}
        for row in rows_written_by(p, fired_set):
            w = writes[row]
            by_sender[w.fired_by].append(w)
        root = display_name(self.model.node(p.root).name, p.root)
        tree = Tree(Text(f"⚠ fired outside this pass's graph: {root} cannot reach these nodes, "
                         f"yet their backward functions ran", style=WRONG), guide_style=WRONG)
        lines = total = 1
        for node_id in fired:
            total += 1 + len(by_sender[node_id])
            if lines >= budget:
                continue
            branch = tree.add(_BLANK)
            pending.append(_Pending(branch, node_id, site=self.model.node(node_id).site))
            lines += 1
            for w in by_sender[node_id][: max(0, budget - lines)]:
                branch.add(self._write_line(w))
                lines += 1
        for node_id in written:
            total += 1
            if lines < budget:
                pending.append(_Pending(tree.add(_BLANK), node_id))
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


_BLANK = Text()  # a drawn line's text until its node's facts are read


class _Pending:
    """A drawn line waiting for its text: the tree it labels, its node, and what the
    walk adds around the node's own line."""

    __slots__ = ("tree", "node", "continued", "below", "site")

    def __init__(self, tree: Tree, node: int, *, continued: bool = False, site: Optional[str] = None) -> None:
        self.tree, self.node, self.continued, self.site = tree, node, continued, site
        self.below = False  # its inputs continue in a tree below

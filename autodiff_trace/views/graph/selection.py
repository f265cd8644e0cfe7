"""Which nodes a big pass's picture draws, and how the rest fold into counted groups
(see :class:`.builder.Builder`).

The nodes that matter are kept (the output's neighbourhood, findings, stale and
outside nodes), up to ``max_nodes``; every other node joins the group of the first kept
node that uses it. Everything is read from the pass's arrays and the node table's
columns by built-in scans where it can be, and no set or dict spans the whole pass.
"""

from __future__ import annotations

from collections import Counter
from itertools import compress
from typing import Dict, Iterator, List, Optional, Tuple

from ..pass_shape import reach_of
from .pass_cache import SAMPLE, Group, PassMembers, ops_settled

__all__ = ["Selects"]


class Selects:
    """The selection half of a builder, which holds ``model``, ``p``, ``max_nodes`` and ``findings``."""

    def _select(self, nodes, edges) -> Tuple[List[int], Dict[int, List[int]]]:
        """Keep the nodes that matter (the output's neighbourhood, findings, stale and
        outside nodes); fold the rest into groups, each under the kept node it feeds."""
        if len(nodes) <= self.max_nodes:
            return list(nodes), {}
        p, model = self.p, self.model
        present = PassMembers(p, nodes)
        contains = present.contains
        kept: Dict[int, bool] = {}
        for node in self._candidates(nodes, present):
            if contains(node):
                kept[node] = True
                if len(kept) == self.max_nodes:
                    break
        groups = self._one_group(kept, contains, len(nodes))
        if groups is None:
            groups = self._fold(kept, contains)
        walked = sum(group.count for group in groups.values())
        if len(nodes) - len(kept) > walked:  # nodes no kept node uses: one group of their own
            table, others = model.nodes, Group()
            owned = self._owned
            for n in nodes:
                if n not in kept:
                    row = table.row(n)
                    if row < 0 or row >= len(owned) or not owned[row]:
                        others.add(n, model.node(n).op)
            if others.count:
                groups[-1] = others
        return list(compress(nodes, map(kept.__contains__, nodes))), groups

    def _candidates(self, nodes, present) -> Iterator[int]:
        """The nodes worth drawing, best first; each source is read only when reached."""
        p = self.p
        yield p.root
        yield from self.findings
        if present.others:
            yield from (n for n in p.fired if n in present.others)  # fired outside the graph
        yield from p.order[: self.max_nodes // 2]
        if self.findings:
            yield from self._near_findings(nodes, present)
        yield from p.stale_candidates()
        yield from p.order
        yield from nodes

    def _fold(self, kept: Dict[int, bool], contains) -> Dict[int, Group]:
        """A walk from every kept node at once into the hidden nodes it uses: each hidden node
        joins the group of the first kept node that reaches it. Read from the node table's
        columns, one row at a time."""
        model, table = self.model, self.model.nodes
        row_of = model._row  # makes a placeholder for a node the trace never saw made
        groups: Dict[int, Group] = {}
        owned = self._owned = bytearray(len(table))  # by node row: folded into a group already
        frontier = [(row_of(k), k) for k in kept]
        dense, base = table.dense_index()
        while frontier:
            following = []
            for row, group in frontier:
                for parent in table.parents_of(row):
                    if parent not in kept and contains(parent):
                        at = parent - base if dense is not None and parent.__class__ is int else -1
                        found = dense[at] - 1 if 0 <= at < len(dense) else -1
                        if found < 0:
                            found = row_of(parent)
                            dense, base = table.dense_index()
                        if found >= len(owned):
                            owned.extend(bytes(found + 1 - len(owned)))
                        if not owned[found]:
                            owned[found] = 1
                            folded = groups.get(group)
                            if folded is None:
                                folded = groups[group] = Group()
                            folded.add(parent, table.ops[found])
                            following.append((found, group))
            frontier = following
        return groups

    def _one_group(self, kept: Dict[int, bool], contains, size: int) -> Optional[Dict[int, Group]]:
        """The groups when every hidden node is one the root reaches and a single kept node
        (itself reached) uses hidden nodes: they all join its group. Its size and ops are
        counted from the columns; the walk goes only as far as the group's first nodes and
        the order its ops were met in need. None when that is not so."""
        model, p = self.model, self.p
        table, row_of = model.nodes, model._row
        rows = [row_of(k) for k in kept]  # a placeholder for a node the trace never saw made, as the walk makes
        entries = [(row, node) for row, node in zip(rows, kept)
                   if any(q not in kept and contains(q) for q in table.parents_of(row))]
        if len(entries) != 1 or len(p.reachable) != len(p.order):
            return None
        reach = reach_of(model, p)
        if reach is None or not reach.rows[entries[0][0]]:
            return None
        kept_reached = [row for row in rows if reach.rows[row]]
        if reach.strays:
            return None  # the root reaches a node the pass's order leaves out
        hidden = reach.count - len(kept_reached)
        if size - reach.count != len(rows) - len(kept_reached):
            return None  # a hidden node the root does not reach
        ops = Counter(compress(table.ops, reach.rows))
        ops.subtract(table.ops[row] for row in kept_reached)
        return {entries[0][1]: self._walk_group(entries[0], kept, contains, hidden, ops)}

    def _walk_group(self, entry: Tuple[int, int], kept: Dict[int, bool], contains, count: int,
                    ops: Counter) -> Group:
        """The one group, ``count`` nodes with these ``ops``, walked breadth first from its
        kept node (as :meth:`_fold` would) until its sample is full and the order its ops
        were first met is known as far as the picture names them."""
        table = self.model.nodes
        counts: Dict[str, int] = {}
        for op, n in ops.items():
            counts[op or "leaf"] = counts.get(op or "leaf", 0) + n
        counts = {op: n for op, n in counts.items() if n}
        group = Group.counted(count, counts)
        met: Dict[str, bool] = {}
        settled, wanted = ops_settled(met, counts), min(count, SAMPLE)
        owned = bytearray(len(table))
        frontier = [entry[0]]
        while frontier and not (settled and len(group.sample) >= wanted):
            following = []
            for row in frontier:
                for parent in table.parents_of(row):
                    if parent not in kept and contains(parent):
                        found = table.row(parent)
                        if not owned[found]:
                            owned[found] = 1
                            following.append(found)
                            if len(group.sample) < SAMPLE:
                                group.sample.append(parent)
                            op = table.ops[found] or "leaf"
                            if op not in met:
                                met[op] = True
                                settled = ops_settled(met, counts)
            frontier = following
        group.ops = {**{op: counts[op] for op in met}, **counts}
        return group

    def _near_findings(self, nodes: List[int], present) -> List[int]:
        """Parents of the nodes findings name, then their children (those in the pass)."""
        node_of, findings = self.model.node, self.findings
        edges = [(parent, child) for child in nodes for parent in node_of(child).parents
                 if parent in present and (child in findings or parent in findings)]
        return [a for a, c in edges if c in findings] + [c for a, c in edges if a in findings]

"""What the root of a pass reaches through the nodes' parents, walked over the node
table's columns.

A view draws a few hundred lines or nodes of a pass and counts the rest. Walking every
node through :class:`~autodiff_trace.core.model.NodeInfo` objects to count them costs
seconds on a pass of millions of nodes; this walk reads the table's int arrays by row,
once per pass, and the tree, the ledger and the picture share what it found.
"""

from __future__ import annotations

import weakref
from typing import Callable, Optional, Tuple

from ..core.model import PassInfo, TraceModel

__all__ = ["Reach", "reach_of"]


class Reach:
    """The nodes a pass's root reaches: ``rows[r]`` is 1 for each reached node's table row;
    ``links`` counts their parents (a parent listed twice counts twice); ``strays``, the
    reached nodes the pass's ``order`` does not list."""

    __slots__ = ("rows", "count", "links", "strays")

    def __init__(self, rows: bytearray, links: int, strays: int) -> None:
        self.rows, self.links, self.strays = rows, links, strays
        self.count = rows.count(1)


_KNOWN: "weakref.WeakKeyDictionary[PassInfo, Tuple[tuple, Optional[Reach]]]" = weakref.WeakKeyDictionary()


def reach_of(model: TraceModel, p: PassInfo) -> Optional[Reach]:
    """What ``p``'s root reaches through the parents the trace gave each node; None when
    the walk meets a node the table has no row for (one made before tracing began): the
    caller then walks node by node, as that node's placeholder needs.

    Kept per pass while no row changes (a node made twice replaces its row).
    """
    table = model.nodes
    stamp = (len(table), len(table.odd), table.dense_index()[0] is not None)
    known = _KNOWN.get(p)
    if known is None or known[0] != stamp:
        known = _KNOWN[p] = (stamp, _walk(model, p.root, p.reachable.contains))
    return known[1]


def _walk(model: TraceModel, root, listed: Callable[[int], bool]) -> Optional[Reach]:
    """Depth first from ``root`` over the table's rows, with an explicit stack, counting
    the nodes reached that ``listed`` says the order leaves out."""
    table = model.nodes
    dense, base = table.dense_index()
    if dense is None:
        return None
    starts, parents, odd = table.starts, table.parents, table.odd
    size = len(dense)
    at = root - base if root.__class__ is int else -1
    first = dense[at] - 1 if 0 <= at < size else -1
    if first < 0:
        return None
    seen = bytearray(len(table))
    seen[first] = 1
    stack = [first]
    pop, push = stack.pop, stack.append
    links, strays = 0, 0 if listed(root) else 1
    while stack:
        row = pop()
        if odd and row in odd:
            above = odd[row].parents
        else:
            begin, end = starts[row], starts[row + 1]
            if begin == end:
                continue
            above = parents[begin:end]
        links += len(above)
        for node in above:
            at = node - base if node.__class__ is int else -1
            found = dense[at] - 1 if 0 <= at < size else -1
            if found < 0:
                return None
            if not seen[found]:
                seen[found] = 1
                push(found)
                if not listed(node):
                    strays += 1
    return Reach(seen, links, strays)

"""grad_never_reached: a leaf the root depends on that received no gradient in a pass.

Found at the end of a pass: a leaf of the pass's order with no write. The leaves are
picked by the node table's set of leaf ids (its rows scanned once each) and set against
the pass's write targets by built-in scans; only a leaf with no write is looked at
further. Information, not an error (a branch may be detached on purpose); located where
the leaf was made.
"""

from __future__ import annotations

from itertools import compress
from typing import Tuple

from ...core.sites import default_name
from ...core.text import number
from ..causes import Cause, passes_text
from .base import Check

__all__ = ["GradNeverReached"]


class GradNeverReached(Check):
    """Reports the leaves of a pass's graph that no backward function wrote to."""

    def on_pass_end(self, p) -> None:
        ctx = self.ctx
        nodes = ctx.model.nodes
        leaf_ids = nodes.leaf_ids()
        leaves = list(compress(p.order, map(leaf_ids.__contains__, p.order))) if leaf_ids else []
        if not leaves:
            return
        written = set(leaves).intersection(p.written_targets)
        missing = [node for node in leaves if node not in written]
        if not missing:
            return
        names = {nodes[node].name for node in missing}
        later_names = {}  # name -> the last node of the pass with that name
        for node, name in zip(p.order, nodes.column_of(nodes.names, p.order)):
            if name in names:
                later_names[name] = max(later_names.get(name, node), node)
        grads_before = p.grads_before_of(set(missing))
        for node in missing:
            info = nodes[node]
            if not self._out_of_reach(p, info, later_names):
                ctx.report("grad_never_reached", "info", info.site, p.pass_no, (node,),
                           (p.root, grads_before.get(node, 0.0)), self.describe)

    def _out_of_reach(self, p, info, later_names: dict) -> bool:
        """True for a leaf whose gradient the script cannot read, so an engine may skip it
        on purpose (a constant): a number an op wrapped (never named, and used at once on
        the line that made it), or a start value whose name a later node of the graph took
        (``loss = Value(0.0)`` and then ``loss = loss + err``)."""
        if later_names.get(info.name, info.id) > info.id:
            return True
        nxt = self.ctx.model.nodes.get(info.id + 1)
        return info.name == default_name(info.id, info.op, info.value) and nxt is not None \
            and nxt.site == info.site and (bool(nxt.parents) or nxt.id in p.fired)

    def describe(self, cause: Cause) -> Tuple[str, str]:
        ctx = self.ctx
        root = ctx.name(cause.first.detail[0])
        nodes = cause.distinct()
        hint_of = ctx.names(nodes)
        hint = (f"if this branch is not detached on purpose, check that every op between {root} and "
                f"{hint_of} has a backward function that writes to all its parents")
        if len(cause.occurrences) == 1:
            o = cause.first
            name = ctx.name(o.nodes[0])
            return (f"{name} received no gradient in backward pass {o.pass_no} although {root} depends on "
                    f"it, so {name}.grad stayed {number(o.detail[1])}"), hint
        if len(nodes) == 1:
            return (f"{hint_of} received no gradient in {passes_text(cause.passes)} although the "
                    f"pass's root depends on it"), hint
        return (f"{len(nodes)} leaves ({hint_of}) received no gradient in "
                f"{passes_text(cause.passes)} although the pass's root depends on them"), hint

"""grad_never_reached: a leaf the root depends on that received no gradient in a pass.

Found at the end of a pass: a leaf of the pass's order with no write. Information, not
an error (a branch may be detached on purpose); located where the leaf was made.
"""

from __future__ import annotations

from typing import Tuple

from ...core.text import number
from ..causes import Cause, passes_text
from .base import Check

__all__ = ["GradNeverReached"]


class GradNeverReached(Check):
    """Reports the leaves of a pass's graph that no backward function wrote to."""

    def on_pass_end(self, p) -> None:
        ctx = self.ctx
        for node in p.order:
            if node not in p.writes_to:
                info = ctx.model.nodes.get(node)
                if info is not None and info.op == "":
                    ctx.report("grad_never_reached", "info", info.site, p.pass_no, (node,),
                               (p.root, p.grads_before.get(node, 0.0)), self.describe)

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
        return (f"{len(nodes)} leaves ({hint_of}) received no gradient in "
                f"{passes_text(cause.passes)} although the pass's root depends on them"), hint

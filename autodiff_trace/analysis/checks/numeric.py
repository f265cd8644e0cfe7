"""gradient_mismatch and check_skipped: each pass's leaf gradients against central
differences of the recorded graph (``check_grads=True``; see :mod:`..gradcheck`).

A mismatch is located where the leaf was made; a pass or leaf that cannot be checked
is said once per reason, never skipped silently.
"""

from __future__ import annotations

from typing import Tuple

from ..causes import Cause, passes_text
from ..gradcheck import check_pass
from .base import Check

__all__ = ["GradientCheck"]


class GradientCheck(Check):
    """Runs the numerical check at the end of every pass (only when asked for)."""

    def __init__(self, ctx, *, eps: float, atol: float, rtol: float, max_leaves: int) -> None:
        super().__init__(ctx)
        self.options = dict(eps=eps, atol=atol, rtol=rtol, max_leaves=max_leaves)

    def on_pass_end(self, p) -> None:
        ctx = self.ctx
        for f in check_pass(ctx.model, p, **self.options):
            if f.finding == "check_skipped" and not f.nodes:
                ctx.report(f.finding, f.severity, f.site, f.pass_no, (), (f.message, f.hint), self.describe_skip)
            else:
                ctx.report(f.finding, f.severity, f.site, f.pass_no, f.nodes, (f.message, f.hint), ctx.generic)

    @staticmethod
    def describe_skip(cause: Cause) -> Tuple[str, str]:
        """The pass-wide reason, worded once for every pass it stopped."""
        message, hint = cause.first.detail
        if len(cause.occurrences) == 1:
            return message, hint
        first = f"backward pass {cause.first.pass_no} "
        if message.startswith(first):
            return f"{passes_text(cause.passes)} {message[len(first):]}", hint
        return f"{message} (in {passes_text(cause.passes)})", hint

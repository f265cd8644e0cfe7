"""overwritten_grad: a backward function assigned a parent's grad instead of adding to it.

Found from a ``grad_accumulated`` write marked ``replaced`` that wiped a non-zero grad
(seeding the root by assignment is not one: it has no writer). Located at the ``=``
line itself; every write from that line is one cause.
"""

from __future__ import annotations

from typing import List, Tuple

from ...core.captured import WRITE
from ...core.text import number, plural
from ..callers import source_line
from ..causes import Cause, passes_text
from .base import Check

__all__ = ["OverwrittenGrad"]


class OverwrittenGrad(Check):
    """Reports assignments over gradients other nodes had added."""

    def singles(self, run) -> List[int]:
        """The writes marked ``replaced``: read one by one; no other write matters here."""
        if not run.write_at or not any(run.column(WRITE, 8)):
            return []
        return [at for at, replaced in zip(run.write_at, run.column(WRITE, 8)) if replaced]

    def on_run(self, run) -> None:
        """No write of a run replaced a grad (see :meth:`singles`): nothing to note."""

    def on_grad_accumulated(self, event) -> None:
        # Setting a grad to 0 (or None) is a reset, not a lost contribution.
        if event.replaced and event.fired_by is not None and event.grad_before != 0 and event.grad_after != 0:
            self.ctx.report("overwritten_grad", "error", event.site, event.pass_no,
                            (event.target, event.fired_by), (event.grad_before, event.grad_after),
                            self.describe)

    def describe(self, cause: Cause) -> Tuple[str, str]:
        ctx = self.ctx
        code = source_line(cause.site)
        shown = f" at {cause.site}" if cause.site else ""
        shown += f" (`{code}`)" if code else ""
        # The value assigned is what the rule meant to add: `a.der = x` was meant as `a.der += x`.
        fixed = code.replace(" = ", " += ", 1) if code and " = " in code else None
        hint = (f"write `{fixed}`: " if fixed else "use += in the backward function: ") + \
            "a node used in several places must collect every contribution"
        o = cause.first
        target, writer = o.nodes
        before, after = o.detail
        t, w = ctx.name(target), ctx.name(writer)
        replaced = (f"set {t}.grad to {number(after)}{shown}, replacing {number(before)} instead of adding "
                    f"to it, which would give {number(before + after)}")
        if len(cause.occurrences) == 1:
            return f"{w}'s backward function {replaced}", hint
        targets = cause.distinct(0)
        return (f"a backward function assigned a grad instead of adding to it{shown} "
                f"{plural(len(cause.occurrences), 'time')} in {passes_text(cause.passes)}, wiping what "
                f"other nodes had added to {ctx.names(targets)} (first: {w}'s backward function "
                f"{replaced.replace(shown, '')})"), hint

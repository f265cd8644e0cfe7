"""non_finite: the first NaN or infinity, in a value or a gradient, with what produced it.

A value computed from a non-finite value, or a grad written by a node that only carries
one, follows from a finding already made: those are counted in one summary instead.
Located where the value was made or where the grad was written.
"""

from __future__ import annotations

import cmath
from typing import List, Set, Tuple

from ...core.captured import FIRED, NODE, WRITE
from ...core.runs import finite_floats
from ...core.text import number, plural
from ..causes import Cause
from .base import Check

__all__ = ["NonFinite"]

_isfinite = cmath.isfinite  # a complex value is finite when both its parts are


class NonFinite(Check):
    """Reports the origins of non-finite values and grads; counts what they carry into."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.bad_values: Set[int] = set()  # nodes whose value is NaN or infinite
        self.bad_fired: Set[int] = set()  # nodes that passed on a non-finite gradient
        self.values_carried = 0
        self.grads_carried = 0

    def on_node_created(self, event) -> None:
        if _isfinite(event.value):
            return
        self.bad_values.add(event.node)
        if any(p in self.bad_values for p in event.parents):
            self.values_carried += 1
            return
        name, value = event.name, number(event.value)
        where = f" at {event.site}" if event.site else ""
        if not event.parents:
            message = f"{name} became {value}{where}: it was created with that value"
            hint = "find where this number comes from: it was already non-finite when the graph was built"
        else:
            reason = ("overflows the largest float (about 1.8e308)" if value.endswith("inf")
                      else "has no defined value")
            message = f"{name} became {value}{where}: {self.ctx.expression(event)} {reason}"
            hint = ("keep values in a moderate range: scale the inputs, lower the learning rate, "
                    "or use a numerically stable form of the expression" if value.endswith("inf") else
                    "keep the operands away from undefined cases such as 0/0, inf - inf or 0 * inf")
        self.ctx.report("non_finite", "error", event.site, 0, (event.node,), (message, hint), self.ctx.generic)

    def singles(self, run) -> List[int]:
        """The places of the run with a value, passed-on gradient or new grad that is not a
        finite float: read one by one. Elsewhere this check has nothing to do."""
        found: List[int] = []
        for places, kind, field in ((run.node_at, NODE, 3), (run.fire_at, FIRED, 4), (run.write_at, WRITE, 7)):
            if places and not run.finite(kind, field):
                found += [at for at, number_ in zip(places, run.column(kind, field)) if not finite_floats((number_,))]
        return found

    def on_run(self, run) -> None:
        """Finite numbers only (see :meth:`singles`): nothing to note."""

    def on_pass_start(self, p) -> None:
        self.bad_fired = set()
        self.grads_carried = 0
        self._report_values_carried()

    def on_backward_fn_fired(self, event) -> None:
        if not _isfinite(event.upstream):
            self.bad_fired.add(event.node)

    def on_grad_accumulated(self, event) -> None:
        if _isfinite(event.grad_after) or not _isfinite(event.grad_before):
            return
        ctx = self.ctx
        target, writer = event.target, event.fired_by
        if writer is not None and (writer in self.bad_fired or writer in self.bad_values or any(
                p in self.bad_values for p in ctx.model.node(writer).parents)):
            self.grads_carried += 1  # it only carries a non-finite number reported already
            return
        t, after = ctx.name(target), number(event.grad_after)
        local, contribution = event.local_grad, event.contribution
        hint = ("keep values in a moderate range (scale the inputs, lower the learning rate) "
                "or use a numerically stable form of the expression")
        if writer is None:
            reason = f"the seed of the pass is {number(contribution)}"
            hint = "seed the backward pass with a finite number, normally 1.0"
        elif local is not None and not _isfinite(local):
            info = ctx.model.node(writer)
            reason = (f"the derivative of {info.name} = {ctx.expression(info)} with respect to {t} is "
                      f"{number(local)}")
            hint = ("the derivative is infinite or undefined at this point: keep the operand off the edge "
                    "of the op's domain (add a small epsilon, as in sqrt(x + 1e-12)) or use a smoother op")
        elif not _isfinite(contribution):
            upstream = ctx.model.passes[-1].upstream.get(writer) if ctx.model.passes else None
            if local is not None and upstream is not None:
                reason = (f"the local derivative {number(local)} times the incoming gradient "
                          f"{number(upstream)} from {ctx.name(writer)} overflows")
            else:
                reason = f"{ctx.name(writer)}'s backward function wrote {number(contribution)}"
        else:
            reason = f"adding {number(contribution)} from {ctx.name(writer)} to {number(event.grad_before)} overflows"
        site = event.site or (ctx.site_of(writer) if writer is not None else None)
        where = f" ({site})" if site else ""
        nodes = (target,) if writer is None else (target, writer)
        message = f"{t}.grad became {after} in backward pass {event.pass_no}: {reason}{where}"
        ctx.report("non_finite", "error", site, event.pass_no, nodes, (message, hint), ctx.generic)

    def on_pass_end(self, p) -> None:
        if self.grads_carried:
            self.ctx.report("non_finite", "info", None, p.pass_no, (), self.grads_carried, self.describe_carried)
            self.grads_carried = 0

    def on_close(self) -> None:
        self._report_values_carried()

    def _report_values_carried(self) -> None:
        if self.values_carried:
            self.ctx.report("non_finite", "info", None, 0, (), -self.values_carried, self.describe_carried)
            self.values_carried = 0

    @staticmethod
    def describe_carried(cause: Cause) -> Tuple[str, str]:
        grads = sum(o.detail for o in cause.occurrences if o.detail > 0)
        values = -sum(o.detail for o in cause.occurrences if o.detail < 0)
        parts = []
        if values:
            parts.append(f"{plural(values, 'more node value')} became non-finite, each computed from")
        if grads:
            parts.append(f"{plural(grads, 'more grad')} became non-finite, each carrying")
        return (" and ".join(parts) + " the non-finite numbers reported above",
                "fix the first non-finite value or gradient; these follow from it")

"""Task 1.3/1.4: backpropagation over Scalars (minitorch style)."""
from dataclasses import dataclass, field
from typing import Any, Tuple


@dataclass
class Context:
    """Carries values from forward() to backward()."""

    no_grad: bool = False
    saved_values: Tuple[Any, ...] = field(default_factory=tuple)

    def save_for_backward(self, *values: Any) -> None:
        if self.no_grad:
            return
        self.saved_values = values


def topological_sort(variable):
    """Computation graph in topological order, starting from the right-most variable."""
    order = []
    seen = set()

    def visit(var):
        if var.unique_id in seen or var.is_constant():
            return
        if not var.is_leaf():
            for m in var.parents:
                if not m.is_constant():
                    visit(m)
        seen.add(var.unique_id)
        order.insert(0, var)

    visit(variable)
    return order


def backpropagate(variable, deriv) -> None:
    """Run backprop from `variable` with derivative `deriv`, writing .derivative on the leaves."""
    queue = topological_sort(variable)
    derivatives = {variable.unique_id: deriv}
    for var in queue:
        d_out = derivatives[var.unique_id]
        if var.is_leaf():
            var.accumulate_derivative(d_out)
            continue
        for inp, d in var.chain_rule(d_out):
            if inp.is_constant():
                continue
            derivatives.setdefault(inp.unique_id, 0.0)
            derivatives[inp.unique_id] += d

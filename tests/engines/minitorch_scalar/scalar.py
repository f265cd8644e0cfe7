"""Scalar: a float that records the function and inputs that produced it."""
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from autodiff import Context, backpropagate
from scalar_functions import Add, Inv, Mul, Neg, Tanh


@dataclass
class ScalarHistory:
    """last_fn: the ScalarFunction that made this Scalar (None for a leaf),
    ctx: its Context, inputs: the Scalars it was applied to."""

    last_fn: Optional[type] = None
    ctx: Optional[Context] = None
    inputs: Sequence["Scalar"] = ()


_var_count = 0


class Scalar:
    def __init__(self, v, back: Optional[ScalarHistory] = ScalarHistory(), name: Optional[str] = None):
        global _var_count
        _var_count += 1
        self.unique_id = _var_count
        self.data = float(v)
        self.history = back
        self.derivative: Optional[float] = None
        self.name = name if name is not None else str(self.unique_id)

    def __repr__(self):
        return f"Scalar({self.data})"

    # arithmetic
    def __add__(self, b: Any) -> "Scalar":
        return Add.apply(self, b)

    def __radd__(self, b: Any) -> "Scalar":
        return Add.apply(b, self)

    def __mul__(self, b: Any) -> "Scalar":
        return Mul.apply(self, b)

    def __rmul__(self, b: Any) -> "Scalar":
        return Mul.apply(b, self)

    def __neg__(self) -> "Scalar":
        return Neg.apply(self)

    def __sub__(self, b: Any) -> "Scalar":
        return Add.apply(self, Neg.apply(b))

    def __truediv__(self, b: Any) -> "Scalar":
        return Mul.apply(self, Inv.apply(b))

    def tanh(self) -> "Scalar":
        return Tanh.apply(self)

    # autodiff plumbing
    def accumulate_derivative(self, x: Any) -> None:
        """Add x to the derivative of a leaf."""
        assert self.is_leaf(), "Only leaf variables can have derivatives."
        if self.derivative is None:
            self.derivative = 0.0
        self.derivative += x

    def is_leaf(self) -> bool:
        return self.history is not None and self.history.last_fn is None

    def is_constant(self) -> bool:
        return self.history is None

    @property
    def parents(self):
        assert self.history is not None
        return self.history.inputs

    def chain_rule(self, d_output: Any):
        h = self.history
        assert h is not None
        assert h.last_fn is not None
        assert h.ctx is not None
        grads = h.last_fn._backward(h.ctx, d_output)
        return list(zip(h.inputs, grads))

    def backward(self, d_output: Optional[float] = None) -> None:
        if d_output is None:
            d_output = 1.0
        backpropagate(self, d_output)

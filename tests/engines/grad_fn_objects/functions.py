"""Backward nodes, named like PyTorch's (MulBackward, AddBackward, ...).

Each one is created by the forward op, remembers what it needs, and its
apply(grad_output) returns the gradient for each of its inputs, in order.
"""
import math


class BackwardNode:
    def __init__(self, *inputs):
        self.inputs = inputs  # the Scalars this op consumed

    def apply(self, grad_output):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}>"


class AddBackward(BackwardNode):
    def apply(self, grad_output):
        return grad_output, grad_output


class SubBackward(BackwardNode):
    def apply(self, grad_output):
        return grad_output, -grad_output


class MulBackward(BackwardNode):
    def __init__(self, a, b):
        super().__init__(a, b)
        self.a_val, self.b_val = a.data, b.data  # saved for backward

    def apply(self, grad_output):
        return grad_output * self.b_val, grad_output * self.a_val


class PowBackward(BackwardNode):
    def __init__(self, a, exponent):
        super().__init__(a)
        self.a_val, self.exponent = a.data, exponent

    def apply(self, grad_output):
        return (grad_output * self.exponent * self.a_val ** (self.exponent - 1),)


class TanhBackward(BackwardNode):
    def __init__(self, a, result):
        super().__init__(a)
        self.a_val = a.data
        self.result = result  # tanh(a), saved so we don't recompute it

    def apply(self, grad_output):
        return (grad_output * (1 - self.result ** 2),)


def tanh(x):
    return math.tanh(x)

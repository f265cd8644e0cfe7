"""The differentiable functions a Scalar can go through."""
import math

import scalar
from autodiff import Context


def wrap_tuple(x):
    return x if isinstance(x, tuple) else (x,)


class ScalarFunction:
    """Base class: subclasses define static forward(ctx, *floats) and backward(ctx, d_output)."""

    @classmethod
    def _forward(cls, ctx, *inps):
        return float(cls.forward(ctx, *inps))

    @classmethod
    def _backward(cls, ctx, d_out):
        return wrap_tuple(cls.backward(ctx, d_out))

    @classmethod
    def apply(cls, *vals):
        raw_vals = []
        scalars = []
        for v in vals:
            if isinstance(v, scalar.Scalar):
                scalars.append(v)
                raw_vals.append(v.data)
            else:
                # plain python numbers become constants: no history at all
                scalars.append(scalar.Scalar(v, None))
                raw_vals.append(v)

        ctx = Context(False)
        c = cls._forward(ctx, *raw_vals)
        back = scalar.ScalarHistory(cls, ctx, scalars)
        return scalar.Scalar(c, back)


class Add(ScalarFunction):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, d_output):
        return d_output, d_output


class Mul(ScalarFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, d_output):
        a, b = ctx.saved_values
        return b * d_output, a * d_output


class Neg(ScalarFunction):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, d_output):
        return -d_output


class Tanh(ScalarFunction):
    @staticmethod
    def forward(ctx, a):
        t = math.tanh(a)
        ctx.save_for_backward(a, t)
        return t

    @staticmethod
    def backward(ctx, d_output):
        a, t = ctx.saved_values
        return (1.0 - t * t) * d_output


class Inv(ScalarFunction):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return 1.0 / a

    @staticmethod
    def backward(ctx, d_output):
        (a,) = ctx.saved_values
        return -d_output / (a * a)

# the operations: forward on plain floats, backward returns one grad per input
import math

from tensor import Function, Tensor, register


class Add(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, grad_output
register("add", Add)


class Sub(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, -grad_output
register("sub", Sub)


class Mul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        return y * grad_output, x * grad_output
register("mul", Mul)


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return 2 * x * grad_output
register("square", Square)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        t = math.tanh(x)
        ctx.save_for_backward(x, t)
        return t

    @staticmethod
    def backward(ctx, grad_output):
        x, t = ctx.saved_tensors
        return grad_output * (1 - t * t)
register("tanh", Tanh)

Tensor.__add__ = Tensor.add
Tensor.__sub__ = Tensor.sub
Tensor.__mul__ = Tensor.mul

"""Elementary functions on Var, each with its derivative."""
import math

from var import Var


def sin(x):
    return Var(math.sin(x.val), [(x, lambda: math.cos(x.val))])


def cos(x):
    return Var(math.cos(x.val), [(x, lambda: -math.sin(x.val))])


def exp(x):
    e = math.exp(x.val)
    return Var(e, [(x, lambda: e)])


def log(x):
    return Var(math.log(x.val), [(x, lambda: 1.0 / x.val)])


def tanh(x):
    t = math.tanh(x.val)
    return Var(t, [(x, lambda: 1 - t ** 2)])

"""Learner engines for the derivative-rule check's specifications, as source templates:
a micrograd-style engine, and engines of other designs whose mul and tanh rules a
test may break."""

from __future__ import annotations

__all__ = ["ENGINE", "CORRECT", "engine", "DESIGNS", "QUEUE_TOO_EARLY"]

# A micrograd-style engine; {mul_self} and {tanh_local} are the rule lines a test may break.
ENGINE = '''\
import math


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += {mul_self} * out.grad  # mul: self
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,), f'**{{k}}')

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        x = self.data
        t = math.tanh(x)
        out = Value(t, (self,), 'tanh')

        def _backward():
            self.grad += {tanh_local} * out.grad  # tanh
        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), 'ReLU')

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), 'exp')

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        topo, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                topo.append(v)
            elif v not in seen:
                seen.add(v)
                stack.append((v, True))
                stack.extend((c, False) for c in v._prev)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other
'''
CORRECT = {"mul_self": "other.data", "tanh_local": "(1 - t**2)"}


def engine(**rules: str) -> str:
    return ENGINE.format(**{**CORRECT, **rules})


# Engines of other designs; {mul} and {tanh} are the local derivatives a test may break.
STORED_LAMBDAS = '''\
import math
class V:
    def __init__(self, val, deps=()):
        self.val, self.der, self.deps = val, 0.0, list(deps)
    def __mul__(self, other):
        return V(self.val * other.val, [(self, lambda: {mul}),  # mul: self
                                        (other, lambda: self.val)])
    def __add__(self, other):
        return V(self.val + other.val, [(self, lambda: 1.0), (other, lambda: 1.0)])
    def tanh(self):
        t = math.tanh(self.val)
        return V(t, [(self, lambda: {tanh})])  # tanh
    def backprop(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
            elif v not in seen:
                seen.add(v)
                stack.append((v, True))
                stack.extend((d, False) for d, _ in v.deps)
        self.der = 1.0
        for v in reversed(order):
            for dep, local in v.deps:
                dep.der += local() * v.der
x, y = V(1.5), V(-0.75)
for step in range(3):
    x.der = y.der = 0.0
    loss = (x * y).tanh() + x * x
    loss.backprop()
    x.val -= 0.01 * x.der
print(round(x.val, 9))
'''
HANDLE_TAPE = '''\
import math
class Cell:
    __slots__ = ("value", "adjoint", "parents")
    def __init__(self, value, links=()):
        self.value, self.adjoint, self.parents = value, 0.0, list(links)
class Ref:
    def __init__(self, tape, at):
        self.tape, self.at = tape, at
    @property
    def value(self):
        return self.tape[self.at].value
    def _new(self, value, links):
        self.tape.append(Cell(value, links))
        return Ref(self.tape, len(self.tape) - 1)
    def __mul__(self, other):
        return self._new(self.value * other.value,
                         [(self.at, {mul}),  # mul: self
                          (other.at, self.value)])
    def tanh(self):
        t = math.tanh(self.value)
        return self._new(t, [(self.at, {tanh})])  # tanh
def leaf(tape, value):
    tape.append(Cell(value))
    return Ref(tape, len(tape) - 1)
def sweep(tape, out):
    tape[out.at].adjoint = 1.0
    for cell in reversed(tape):
        for p, w in cell.parents:
            tape[p].adjoint += w * cell.adjoint
tape = []
x, y = leaf(tape, 1.5), leaf(tape, -0.75)
for step in range(3):
    del tape[2:]
    tape[0].adjoint = tape[1].adjoint = 0.0
    sweep(tape, (x * y).tanh())
    tape[0].value -= 0.01 * tape[0].adjoint
print(round(x.value, 9))
'''
GATES = '''\
import math
class Unit:
    def __init__(self, value):
        self.value, self.grad = value, 0.0
class Mul:
    def forward(self, a, b):
        self.a, self.b, self.top = a, b, Unit(a.value * b.value)
        return self.top
    def backward(self):
        self.a.grad += {mul} * self.top.grad  # mul: self
        self.b.grad += self.a.value * self.top.grad
class Tanh:
    def forward(self, a):
        self.a, self.top = a, Unit(math.tanh(a.value))
        return self.top
    def backward(self):
        t = self.top.value
        self.a.grad += {tanh} * self.top.grad  # tanh
x, y = Unit(1.5), Unit(-0.75)
for step in range(3):
    gates = [Mul(), Tanh()]
    out = gates[1].forward(gates[0].forward(x, y))
    x.grad = y.grad = 0.0
    out.grad = 1.0
    for gate in reversed(gates):
        gate.backward()
    x.value -= 0.01 * x.grad
print(round(x.value, 9))
'''
PATH_SUM = '''\
import math
class N:
    def __init__(self, v, ins=(), op=""):
        self.v, self.g, self.ins, self.op = v, 0.0, ins, op
    def __mul__(self, o):
        return N(self.v * o.v, (self, o), "*")
    def tanh(self):
        return N(math.tanh(self.v), (self,), "tanh")
    def locals(self):
        if self.op == "*":
            a, b = self.ins
            return ({mul}, a.v)  # mul: self
        if self.op == "tanh":
            return ({tanh},)  # tanh
        return ()
    def push(self, bp):
        self.g += bp
        for i, d in zip(self.ins, self.locals()):
            i.push(bp * d)
x, y = N(1.5), N(-0.75)
for step in range(3):
    x.g = y.g = 0.0
    (x * y).tanh().push(1.0)
    x.v -= 0.01 * x.g
print(round(x.v, 9))
'''
OP_RULES = '''\
import math
RULES = {{}}
def rule(op):
    def register(fn):
        RULES[op] = fn
        return fn
    return register
class Node:
    def __init__(self, value, op="leaf", args=()):
        self.value, self.grad, self.op, self.args = value, 0.0, op, args
def mul(a, b):
    return Node(a.value * b.value, "mul", (a, b))
def tanh(a):
    return Node(math.tanh(a.value), "tanh", (a,))
@rule("mul")
def _(node):
    a, b = node.args
    a.grad += {mul} * node.grad  # mul: self
    b.grad += a.value * node.grad
@rule("tanh")
def _(node):
    (a,), t = node.args, node.value
    a.grad += {tanh} * node.grad  # tanh
def reverse(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        v, done = stack.pop()
        if done:
            order.append(v)
        elif v not in seen:
            seen.add(v)
            stack.append((v, True))
            stack.extend((a, False) for a in v.args)
    root.grad = 1.0
    for node in reversed(order):
        if node.op != "leaf":
            RULES[node.op](node)
x, y = Node(1.5), Node(-0.75)
for step in range(3):
    x.grad = y.grad = 0.0
    h = tanh(mul(x, y))
    reverse(mul(mul(h, h), h))  # the outer rule holds node, a = h * h and b = h: both over h
    x.value -= 0.01 * x.grad
print(round(x.value, 9))
'''
# Early tinygrad's shape: an op makes its result, then links it to a context whose static
# backward returns the parents' grads; the engine's loop adds them.
LINKED_CONTEXT = '''\
import math
class Tensor:
    def __init__(self, data):
        self.data, self.grad, self._ctx = float(data), None, None
    def backward(self):
        order, seen = [], set()
        def walk(t):
            seen.add(t)
            if t._ctx:
                for p in t._ctx.parents:
                    if p not in seen:
                        walk(p)
                order.append(t)
        walk(self)
        self.grad = 1.0
        for t in reversed(order):
            grads = t._ctx.backward(t._ctx, t.grad)
            for p, g in zip(t._ctx.parents, grads):
                p.grad = g if p.grad is None else p.grad + g
class Function:
    def __init__(self, *parents):
        self.parents, self.saved = parents, ()
    @classmethod
    def apply(cls, *xs):
        ctx = cls(*xs)
        ret = Tensor(cls.forward(ctx, *[x.data for x in xs]))
        ret._ctx = ctx
        return ret
class Mul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.saved = (x, y)
        return x * y
    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        return {mul} * g, x * g  # mul: self
class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        t = math.tanh(x)
        ctx.saved = (x, t)
        return t
    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved
        return ({tanh}) * g,  # tanh
x, y = Tensor(1.5), Tensor(-0.75)
for step in range(3):
    x.grad = y.grad = None
    h = Tanh.apply(Mul.apply(x, y))
    Mul.apply(Mul.apply(h, h), h).backward()
    x.data -= 0.01 * x.grad
print(round(x.data, 9))
'''

# A JAX-like box: each op stores a vector-Jacobian lambda written on the line after the
# one that makes the box; one loop applies every box's lambda.
VJP_BOXES = '''\
import math
class Box:
    def __init__(self, primal, parents=(), vjp=None):
        self.primal, self.ct, self.parents, self.vjp = primal, 0.0, parents, vjp
    def __mul__(self, other):
        return Box(self.primal * other.primal, (self, other),
                   lambda ct: (ct * {mul}, ct * self.primal))  # mul: self
    def tanh(self):
        y = math.tanh(self.primal)
        return Box(y, (self,),
                   lambda ct: (ct * ({tanh}),))  # tanh
def sweep(end):
    order, seen, stack = [], set(), [(end, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents)
    end.ct = 1.0
    for node in reversed(order):
        if node.vjp is not None:
            for parent, ct in zip(node.parents, node.vjp(node.ct)):
                parent.ct += ct
x, y = Box(1.5), Box(-0.75)
for step in range(3):
    x.ct = y.ct = 0.0
    h = (x * y).tanh()
    sweep(h * h * h)
    x.primal -= 0.01 * x.ct
print(round(x.primal, 9))
'''

DESIGNS = {"stored lambdas": (STORED_LAMBDAS, "other.val", "1 - t * t", "self.val", "1 - self.val ** 2"),
           "tape of cells": (HANDLE_TAPE, "other.value", "1.0 - t * t", "self.value", "1.0 - self.value ** 2"),
           "gates": (GATES, "self.b.value", "(1 - t * t)", "self.a.value", "(1 - self.a.value ** 2)"),
           "path sums": (PATH_SUM, "b.v", "1 - self.v ** 2", "a.v", "1 - self.ins[0].v ** 2"),
           "rules by op name": (OP_RULES, "b.value", "(1 - t * t)", "a.value", "(1 - a.value ** 2)"),
           "linked context": (LINKED_CONTEXT, "y", "1 - t * t", "x", "1 - x * x"),
           "vjp lambdas": (VJP_BOXES, "other.primal", "1.0 - y * y", "self.primal", "1.0 - self.primal ** 2")}

# A queue engine that processes a node at each consumer's visit, not after the last one:
# a rule runs again with a grown grad and no new call to see (a fired_too_early bug).
QUEUE_TOO_EARLY = '''\
import math
from collections import deque
class Var:
    def __init__(self, value, sources=()):
        self.value, self.gradient, self.sources, self._back = value, 0.0, tuple(sources), None
    def __mul__(self, other):
        out = Var(self.value * other.value, (self, other))
        def _back(g):
            self.gradient += g * other.value
            other.gradient += g * self.value
        out._back = _back
        return out
    def tanh(self):
        y = math.tanh(self.value)
        out = Var(y, (self,))
        def _back(g):
            self.gradient += g * (1.0 - y * y)
        out._back = _back
        return out
    def propagate(self):
        self.gradient = 1.0
        ready = deque([self])
        while ready:
            node = ready.popleft()
            if node._back is not None:
                node._back(node.gradient)
            ready.extend(node.sources)
x, y = Var(1.5), Var(-0.75)
for step in range(3):
    x.gradient = y.gradient = 0.0
    h = (x * y).tanh()
    (h * h * h).propagate()
    x.value -= 0.01 * x.gradient
print(round(x.value, 9))
'''

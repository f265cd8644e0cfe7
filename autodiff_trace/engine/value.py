"""A scalar reverse-mode autodiff engine whose every step can be traced.

``Value`` is micrograd's idea with three changes: derivative rules live in a table
(:mod:`autodiff_trace.engine.rules`) instead of a closure per node, so building a graph
allocates one object per node and makes no reference cycles; the topological sort
uses an explicit stack, so a million-node chain works; and each node passes on the
gradient it received in *this* pass, so calling ``backward`` twice accumulates into
``grad`` exactly as PyTorch does. When a tracer listens, every step is an event.
"""

from __future__ import annotations

import itertools
import numbers
import operator
from typing import Iterable, List, Optional, Union

from ..core.sites import default_name
from ..core.tracer import follow_active
from .rules import DOMAINS, RULES, DomainError, Rule

__all__ = ["Value", "DomainError"]

_tracer = None  # the active Tracer (see _follow); None costs one check per op
_ids = itertools.count(1)
CONST, ADD, SUB, MUL, DIV, POW, POWC, NEG = (RULES[name] for name in (
    "const", "add", "sub", "mul", "div", "pow", "powc", "neg"))
SIN, COS, TAN, LOG, EXP, SQRT, RELU, SIGMOID, TANH = (RULES[name] for name in (
    "sin", "cos", "tan", "log", "exp", "sqrt", "relu", "sigmoid", "tanh"))
_by_id = operator.attrgetter("id")
Number = Union[int, float]


class Value:
    """A scalar node: its value ``data``, its gradient ``grad``, and how it was made."""

    __slots__ = ("data", "grad", "_op", "_a", "_b", "id", "name", "site", "_received")

    def __init__(self, data: Number, name: Optional[str] = None, _op: Optional[Rule] = None,
                 _a: Optional["Value"] = None, _b: Union["Value", Number, None] = None):
        if data.__class__ is not float:
            data = _as_float(data)
        self.data = data
        self.grad = 0.0
        self._op = _op  # the Rule that made this node; None for a leaf
        self._a = _a  # first parent
        self._b = _b  # second parent, or the constant of a unary op (the 3 of x ** 3)
        self.id = next(_ids)
        self.name = name
        self.site = None  # "file.py:14" of the line that made it; recorded only while traced
        self._received = 0.0  # the gradient received in the backward pass under way
        if _tracer is not None:
            _tracer.node_created(self.id, self.op, data, self._parent_ids(), name,
                                 obj=self, on_emit=self._traced_as)

    def _parent_ids(self) -> tuple:
        arity = 0 if self._op is None else self._op.arity
        if arity == 2:
            return (self._a.id, self._b.id)
        return (self._a.id,) if arity else ()

    def _traced_as(self, event) -> None:
        """Take the name and site the tracer settled on."""
        self.name, self.site = event.name, event.site

    # -- what the node is ---------------------------------------------------------
    @property
    def op(self) -> str:
        """The op's name (``"mul"``; ``"**3"`` for a constant power), ``"const"`` for a
        wrapped number, ``""`` for a leaf."""
        rule = self._op
        if rule is None:
            return ""
        if rule.name == "powc":
            return "**" + (str(int(self._b)) if self._b == int(self._b) else repr(self._b))
        return rule.name

    @property
    def parents(self) -> tuple:
        """The nodes this one was computed from."""
        arity = 0 if self._op is None else self._op.arity
        return (self._a, self._b)[:arity]

    @property
    def label(self) -> str:
        """The name given or inferred, else the op and id (``mul#7``)."""
        if self.name is not None:
            return self.name
        return default_name(self.id, self.op, self.data)

    def __repr__(self) -> str:
        named = f", name={self.name!r}" if self.name is not None else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{named})"

    # -- primitive ops: each one row of the derivative table ------------------------
    def __add__(self, other):
        return _apply(ADD, self, other if isinstance(other, Value) else _constant(other, "+"))

    def __sub__(self, other):
        return _apply(SUB, self, other if isinstance(other, Value) else _constant(other, "-"))

    def __mul__(self, other):
        return _apply(MUL, self, other if isinstance(other, Value) else _constant(other, "*"))

    def __truediv__(self, other):
        return _apply(DIV, self, other if isinstance(other, Value) else _constant(other, "/"))

    def __neg__(self): return _apply(NEG, self, None)

    def __pow__(self, other):
        if isinstance(other, Value):
            return _apply(POW, self, other)  # d/db a**b = a**b ln a
        return _apply(POWC, self, _as_float(other, "**"))  # d/da a**c = c a**(c-1)

    def sin(self): return _apply(SIN, self, None)
    def cos(self): return _apply(COS, self, None)
    def tan(self): return _apply(TAN, self, None)
    def log(self): return _apply(LOG, self, None)
    def exp(self): return _apply(EXP, self, None)
    def sqrt(self): return _apply(SQRT, self, None)
    def relu(self): return _apply(RELU, self, None)
    def sigmoid(self): return _apply(SIGMOID, self, None)
    def tanh(self): return _apply(TANH, self, None)

    # -- the other operand order, in terms of the primitives ------------------------
    def __radd__(self, other): return _node(other, "+") + self  # other + self
    def __rsub__(self, other): return _node(other, "-") - self  # other - self
    def __rmul__(self, other): return _node(other, "*") * self  # other * self
    def __rtruediv__(self, other): return _node(other, "/") / self  # other / self
    def __rpow__(self, other): return _node(other, "**") ** self  # other ** self

    # -- the backward pass ----------------------------------------------------------
    def backward(self, seed: float = 1.0) -> None:
        """Add d self / d node to ``node.grad`` for every node this one depends on.

        The order is built afresh from this root; nothing is kept between passes.
        Each node passes on only the gradient it received in this pass, so a grad
        left by an earlier pass is added to, never propagated (PyTorch's semantics).
        """
        order = topological_order(self)
        tracer = _tracer
        if tracer is not None:
            tracer.backward_started(self.id, float(seed), tuple(n.id for n in order),
                                    tuple(n.grad for n in order))
        for node in order:
            node._received = 0.0  # a pass cut short by an exception may have left some
        _accumulate(self, None, None, float(seed), tracer)  # the seed: d root / d root
        for node in order:
            rule = node._op
            if rule is None or rule.arity == 0:
                continue  # leaves and constants have nothing to pass on
            grad_in, node._received = node._received, 0.0
            if tracer is not None:
                tracer.backward_fn_fired(node.id, node.grad, grad_in)
            a, b = node._a, node._b
            if rule.arity == 1:
                _accumulate(a, node, rule.local(a.data, b, node.data), grad_in, tracer)
            else:
                local_a, local_b = rule.local(a.data, b.data, node.data)
                _accumulate(a, node, local_a, grad_in, tracer)
                _accumulate(b, node, local_b, grad_in, tracer)
        if tracer is not None:
            tracer.backward_finished()

    def zero_grad(self) -> None:
        """Reset the grad of this node and of every node it depends on."""
        zero_grad(topological_order(self))


def _accumulate(target: Value, source: Optional[Value], local: Optional[float],
                grad_in: float, tracer) -> None:
    """``target.grad += local * grad_in``: one step of the chain rule."""
    contribution = grad_in if local is None else local * grad_in
    before = target.grad
    target.grad = before + contribution
    target._received += contribution
    if tracer is not None:
        tracer.grad_accumulated(target.id, None if source is None else source.id,
                                local, contribution, before, target.grad)


def _apply(rule: Rule, a: Value, b) -> Value:
    """Build the node ``rule(a, b)``; a domain error names the op, operands and site."""
    b_value = b.data if rule.arity == 2 else b
    try:
        data = rule.value(a.data, b_value)
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise _domain_error(rule, a.data, b_value, exc) from None
    return Value(data, None, rule, a, b)


def _node(x, symbol: str) -> Value:
    """``x`` itself if it is a Value, else the number wrapped as a constant node."""
    return x if isinstance(x, Value) else _constant(x, symbol)


def _constant(x, symbol: str) -> Value:
    return Value(_as_float(x, symbol), None, CONST)


def _as_float(x, symbol: Optional[str] = None) -> float:
    if x.__class__ is float or x.__class__ is int or isinstance(x, numbers.Real):
        return float(x)
    where = f"Value {symbol} {type(x).__name__}" if symbol else f"Value({type(x).__name__})"
    raise TypeError(f"{where}: expected a number or a Value, got {type(x).__name__} {x!r:.40}")


def _domain_error(rule: Rule, a: float, b, exc: Exception) -> DomainError:
    from ..core.sites import user_site  # only on the error path

    operands = f"{a!r}" if b is None else f"{a!r}, {b!r}"
    reason = DOMAINS.get(rule.name) or str(exc)
    site = user_site()
    where = f" (at {site})" if site else ""
    return DomainError(f"{rule.name}({operands}) is undefined: {reason}{where}")


def topological_order(root: Value) -> List[Value]:
    """Every node ``root`` depends on, each before the nodes it was computed from.

    A node is always made after its parents, so its id is larger than theirs:
    sorting the reachable nodes by id, newest first, is a topological order. The
    walk uses an explicit stack, so depth is limited by memory, not by recursion.
    """
    reachable, stack = {root}, [root]
    while stack:
        node = stack.pop()
        arity = 0 if node._op is None else node._op.arity
        if arity and node._a not in reachable:
            reachable.add(node._a)
            stack.append(node._a)
        if arity == 2 and node._b not in reachable:
            reachable.add(node._b)
            stack.append(node._b)
    return sorted(reachable, key=_by_id, reverse=True)


def zero_grad(values: Union[Value, Iterable[Value]]) -> None:
    """Set ``grad`` to 0 on a root and every node it depends on, or on a list of values."""
    nodes = topological_order(values) if isinstance(values, Value) else list(values)
    if _tracer is not None:
        _tracer.grads_zeroed(tuple(n.id for n in nodes), tuple(n.grad for n in nodes))
    for node in nodes:
        node.grad = 0.0


def _follow(tracer) -> None:
    """Keep the active tracer in a module global: the cheapest check on the hot path."""
    global _tracer
    _tracer = tracer


follow_active(_follow)

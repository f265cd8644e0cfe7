"""A scalar reverse-mode autodiff engine whose every step can be traced.

``Value`` is micrograd's idea with three changes: derivative rules live in a table
(:mod:`autodiff_trace.engine.rules`) instead of a closure per node, so building a graph
allocates one object per node and makes no reference cycles; the topological sort
uses an explicit stack, so a million-node chain works; and each node passes on the
gradient it received in *this* pass, so calling ``backward`` twice accumulates into
``grad`` exactly as PyTorch does. When a tracer listens, every step is an event.

The common ops compute their value in place (``self.data * other.data``), the same
formula as their row of the table (a test holds the two together); the rest call the
row's ``value``. Either way a node is built in one place, :func:`_made`.

A node is its slots and its ``data`` float, nothing more: its id is two ints it shares
with other nodes (:mod:`.ids`), its name and site share one slot set only on a named or
traced node (a traced node with no name of its own holds just its site, a string the
nodes of one line share; the nodes a line names alike share one ``(name, site)`` tuple),
and no slot holds what it receives during a pass (:mod:`.backward`).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Iterable, Optional, Union

from ..core.sites import default_name
from ..core.tracer import follow_active
from .backward import backward_pass, topological_order
from .ids import ids_from
from .rules import (
    ADD, CONST, COS, DIV, DOMAINS, EXP, LOG, MUL, NEG, POW, POWC, RELU, SIGMOID, SIN, SQRT,
    SUB, TAN, TANH, DomainError, Rule,
)

__all__ = ["Value", "DomainError", "topological_order", "zero_grad"]

_tracer = None  # the active Tracer (see _follow); None costs one check per op
_new = object.__new__
Number = Union[int, float]
_numbering = ids_from(1)  # (block, offset) pairs: see .ids
_UNNAMED = (None, None)  # the (name, site) of a node whose _info slot was never set
_getframe = sys._getframe
_HERE = globals()  # the frames of this module's functions: never the user's line


class Value:
    """A scalar node: its value ``data``, its gradient ``grad``, and how it was made."""

    __slots__ = ("data", "grad", "_op", "_a", "_b", "_block", "_offset", "_info")

    def __init__(self, data: Number, name: Optional[str] = None, _op: Optional[Rule] = None,
                 _a: Optional["Value"] = None, _b: Union["Value", Number, None] = None):
        if data.__class__ is not float:
            data = _as_float(data)
        self.data = data
        self.grad = 0.0
        self._op = _op  # the table row that made this node; None for a leaf
        self._a = _a  # first parent
        self._b = _b  # second parent, or the constant of a unary op (the 3 of x ** 3)
        self._block, self._offset = next(_numbering)
        if name is not None:
            self._info = (name, None)  # (name, site); unset on a node never named nor traced
        if _tracer is not None:
            _report(self, name)

    # -- what the node is ---------------------------------------------------------
    @property
    def id(self) -> int:
        """The node's number: 1 for the first node made, each node above its parents."""
        return self._block + self._offset

    @property
    def name(self) -> Optional[str]:
        """The name given, or inferred from an assignment while traced (``op#id`` if the
        line named nothing); else None."""
        info = getattr(self, "_info", _UNNAMED)
        if info.__class__ is tuple:
            return info[0]
        return default_name(self.id, self.op, self.data)  # traced: _info is just the site

    @name.setter
    def name(self, name: Optional[str]) -> None:
        self._info = (name, self.site)

    @property
    def site(self) -> Optional[str]:
        """``"file.py:14"``, the line that made the node; recorded only while traced."""
        info = getattr(self, "_info", _UNNAMED)
        return info[1] if info.__class__ is tuple else info

    @property
    def op(self) -> str:
        """The op's name (``"mul"``; ``"**3"`` for a constant power), ``"const"`` for a
        wrapped number, ``""`` for a leaf."""
        rule = self._op
        if rule is None:
            return ""
        if rule is POWC:
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
        name = self.name
        if name is not None:
            return name
        return default_name(self.id, self.op, self.data)

    def __repr__(self) -> str:
        name = self.name
        named = f", name={name!r}" if name is not None else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{named})"

    # -- primitive ops: each one row of the derivative table ------------------------
    def __add__(self, other):
        if other.__class__ is not Value:
            other = _node(other, "+")
        return _made(self.data + other.data, ADD, self, other)

    def __sub__(self, other):
        if other.__class__ is not Value:
            other = _node(other, "-")
        return _made(self.data - other.data, SUB, self, other)

    def __mul__(self, other):
        if other.__class__ is not Value:
            other = _node(other, "*")
        return _made(self.data * other.data, MUL, self, other)

    def __truediv__(self, other):
        if other.__class__ is not Value:
            other = _node(other, "/")
        try:
            return _made(self.data / other.data, DIV, self, other)
        except ZeroDivisionError as exc:
            raise _domain_error(DIV, self.data, other.data, exc) from None

    def __neg__(self):
        return _made(-self.data, NEG, self, None)

    def __pow__(self, other):
        if isinstance(other, Value):
            return _apply(POW, self, other)  # d/db a**b = a**b ln a
        return _apply(POWC, self, _as_float(other, "**"))  # d/da a**c = c a**(c-1)

    def relu(self):
        a = self.data
        return _made(a if a > 0 else 0.0, RELU, self, None)

    def tanh(self):
        return _made(math.tanh(self.data), TANH, self, None)

    def sin(self): return _apply(SIN, self, None)
    def cos(self): return _apply(COS, self, None)
    def tan(self): return _apply(TAN, self, None)
    def log(self): return _apply(LOG, self, None)
    def exp(self): return _apply(EXP, self, None)
    def sqrt(self): return _apply(SQRT, self, None)
    def sigmoid(self): return _apply(SIGMOID, self, None)

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
        backward_pass(self, float(seed), _tracer)

    def zero_grad(self) -> None:
        """Reset the grad of this node and of every node it depends on."""
        zero_grad(topological_order(self))


def _made(data: float, op: Rule, a: Value, b, depth: int = 2) -> Value:
    """The node ``op(a, b)`` with value ``data``: how every op builds its node (no
    ``__init__`` call, this is the hot path). ``depth``: the frames from here up to the
    op's caller (3 through a helper such as :func:`_node`), where a tracer looks first.
    While traced, the node is reported here too, with no call of its own (:func:`_report`
    is the same for a node made by ``__init__``)."""
    global _last_constant, _last_value
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out._op = op
    out._a = a
    out._b = b
    out._block, out._offset = next(_numbering)
    if _tracer is not None:
        try:
            frame = _getframe(depth)
        except ValueError:  # called from C with no frame above
            frame = None
        while frame is not None and frame.f_globals is _HERE:  # past the ops calling ops (__radd__)
            frame = frame.f_back
        node_id = out._block + out._offset  # ids as the ``id`` property computes them, without its call
        arity = op.arity
        if arity == 2:
            out._info = _tracer.value_made(frame, out, node_id, op.name, data,
                                           (a._block + a._offset, b._block + b._offset), None, _named)
        elif arity:
            out._info = _tracer.value_made(frame, out, node_id, op.name if op is not POWC else out.op, data,
                                           (a._block + a._offset,), None, _named)
        else:  # a constant's value when made is its name: a later ``data`` may differ
            seen = _last_value  # (data, its name): a loop's constant is one float object, named once
            if seen[0] is data:
                name = seen[1]
            else:
                name = default_name(node_id, op.name, data)
                _last_value = (data, name)
            site = _tracer.value_made(frame, out, node_id, op.name, data, (), name, _named)
            last = _last_constant  # one global read: a loop's constant, made on the same line as last time
            if last[0] is name and last[1] is site:
                out._info = last
            else:
                out._info = _last_constant = _shared_info(name, site)
    return out


def _report(node: Value, name: Optional[str], depth: int = 1) -> None:
    """Tell the tracer about a new node, made ``depth`` frames up from the caller; the
    tracer hands back the node's site, and later names the result of an assignment
    line (:func:`_named`). :func:`_made` does the same for the nodes ops make."""
    try:
        frame = _getframe(depth + 1)
    except ValueError:  # called from C with no frame above
        frame = None
    while frame is not None and frame.f_globals is _HERE:  # past the ops calling ops (__radd__)
        frame = frame.f_back
    rule = node._op
    node_id = node._block + node._offset
    if rule is None:
        op, parents = "", ()
    elif rule.arity == 2:
        a, b = node._a, node._b
        op, parents = rule.name, (a._block + a._offset, b._block + b._offset)
    elif rule.arity:
        a = node._a
        op, parents = rule.name if rule is not POWC else node.op, (a._block + a._offset,)
    else:
        op, parents = rule.name, ()
        if name is None:  # a constant's value when made: kept, as a later ``data`` may differ
            name = default_name(node_id, op, node.data)
    site = _tracer.value_made(frame, node, node_id, op, node.data, parents, name, _named)
    node._info = site if name is None else _shared_info(name, site)  # unnamed: op#id, made when asked for


def _named(node: Value, name: str) -> None:
    """The tracer names ``node``: the result of the assignment line that made it."""
    info = getattr(node, "_info", None)  # a traced node's site, or its (name, site)
    site = info[1] if info.__class__ is tuple else info
    global _last_named
    last = _last_named  # one global read: the line named last, as a loop's next run of it names
    if last[0] is name and last[1] is site:
        node._info = last
    else:
        node._info = _last_named = _shared_info(name, site)


def _shared_info(name: str, site: Optional[str]) -> tuple:
    """The ``(name, site)`` of a traced node, one tuple for all the nodes a line names
    alike (``y = y * 1.0000001`` in a loop): no tuple of its own per node."""
    key = (name, site)
    if name.__class__ is not str:  # a name of the user's own type: perhaps not hashable
        return key
    info = _infos.get(key)
    if info is None:
        if len(_infos) >= 4096:  # a script's lines and names are few; names made one by one are not
            _infos.clear()
        info = _infos[key] = key
    return info


_last_named = _last_constant = (None, None)  # the (name, site) given last to a line's result, a constant
_last_value = (None, None)  # the data of the constant made last and its name (held, so ``is`` is safe)
_infos: dict = {}  # (name, site) -> that very tuple, shared by the nodes holding it


def _apply(rule: Rule, a: Value, b) -> Value:
    """Build the node ``rule(a, b)`` from the table's value rule; a domain error names the
    op, operands and site."""
    b_value = b.data if rule.arity == 2 else b
    try:
        data = rule.value(a.data, b_value)
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise _domain_error(rule, a.data, b_value, exc) from None
    return _made(data, rule, a, b, 3)


def _node(x, symbol: str) -> Value:
    """``x`` itself if it is a Value, else the number wrapped as a constant node."""
    if x.__class__ is float:  # the common constant, ``y * 1.0000001``
        return _made(x, CONST, None, None, 3)
    return x if isinstance(x, Value) else _made(_as_float(x, symbol), CONST, None, None, 3)


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

"""Numerical gradient checks: central differences recomputed from a recorded graph.

A backward pass claims d root / d leaf for every leaf. :class:`RecordedGraph`
evaluates the pass's graph again from the ops and values its events recorded, with
one leaf moved by ±h, so the claim is checked without running user code again.
:func:`check_grads` does the same for a function, in the style of PyTorch's
``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .diagnoser import format_number
from ..core.events import Finding
from ..core.model import PassInfo, TraceModel
from ..engine.rules import RULES, Rule

__all__ = [
    "GradcheckError", "UncheckableGraph", "resolve_op", "op_value", "RecordedGraph",
    "close_enough", "check_pass", "check_grads",
]

# Ops as other engines spell them: micrograd's "+", "*", "ReLU"; "-" is sub or neg by arity.
_BY_SYMBOL = {(rule.symbol, rule.arity): rule for rule in RULES.values()
              if rule.name not in ("const", "powc")}


class GradcheckError(RuntimeError):
    """A gradient that disagrees with central differences (PyTorch's name for it)."""


class UncheckableGraph(ValueError):
    """The recorded graph cannot be evaluated again: an op without a rule, or a node
    made before tracing began."""


def resolve_op(op: str, arity: int) -> Tuple[Rule, Optional[float]]:
    """The rule for an op as events spell it, and its constant (the 3 of ``"**3"``).

    >>> [(rule.name, c) for rule, c in (resolve_op("mul", 2), resolve_op("**0.5", 1), resolve_op("ReLU", 1))]
    [('mul', None), ('powc', 0.5), ('relu', None)]
    """
    rule = RULES.get(op) or RULES.get(op.lower())
    if rule is not None and rule.arity == arity and rule.name not in ("const", "powc"):
        return rule, None
    if op.startswith("**") and arity == 1:
        try:
            return RULES["powc"], float(op[2:])
        except ValueError:
            pass
    rule = _BY_SYMBOL.get((op, arity))
    if rule is None:
        raise UncheckableGraph(f"no derivative rule is known for the op {op!r} with {arity} operand(s)")
    return rule, None


def op_value(op: str, operands: Sequence[float]) -> float:
    """The value of ``op`` on ``operands``, by the rule table.

    >>> op_value("mul", (2.0, 3.0)), op_value("**3", (2.0,)), op_value("+", (1.0, 2.0))
    (6.0, 8.0, 3.0)
    """
    rule, constant = resolve_op(op, len(operands))
    second = operands[1] if rule.arity == 2 else constant
    return rule.value(operands[0], second)


def close_enough(analytic: float, numeric: float, atol: float, rtol: float) -> bool:
    """PyTorch's test: ``|analytic - numeric| <= atol + rtol * |numeric|``.

    >>> close_enough(18.0, 18.0000001, 1e-5, 1e-3), close_enough(20.0, 18.0, 1e-5, 1e-3)
    (True, False)
    """
    return abs(analytic - numeric) <= atol + rtol * abs(numeric)


class RecordedGraph:
    """A pass's graph as its events recorded it, ready to evaluate with one leaf moved.

    Args:
        nodes: node id -> an object with ``op``, ``value`` and ``parents`` (a
            :class:`~autodiff_trace.core.model.NodeInfo`).
        order: the pass's order: the root first, every node before its parents.
    """

    def __init__(self, nodes: Mapping, order: Sequence[int]) -> None:
        if not order:
            raise UncheckableGraph("the pass visited no nodes")
        self.root = order[0]
        self.values: Dict[int, float] = {}
        self.position: Dict[int, int] = {}
        self.plan: Dict[int, Tuple[Rule, Optional[float], tuple]] = {}  # node -> how to recompute it
        self.consumers: Dict[int, List[int]] = {}
        for position, node in enumerate(reversed(order)):
            info = nodes.get(node)
            if info is None or info.op == "?":
                raise UncheckableGraph(f"node #{node} was made before tracing began, so its op is unknown")
            self.values[node] = info.value
            self.position[node] = position
            if info.op not in ("", "const"):
                rule, constant = resolve_op(info.op, len(info.parents))
                self.plan[node] = (rule, constant, info.parents)
                for parent in set(info.parents):
                    self.consumers.setdefault(parent, []).append(node)

    def root_value_with(self, leaf: int, value: float) -> float:
        """The root's value when ``leaf`` holds ``value``: only the nodes downstream of
        the leaf are recomputed. Math errors (a domain left) propagate."""
        cone, stack = {leaf}, [leaf]
        while stack:
            for consumer in self.consumers.get(stack.pop(), ()):
                if consumer not in cone:
                    cone.add(consumer)
                    stack.append(consumer)
        values = dict.fromkeys(cone)  # shadows the recorded values inside the cone
        values[leaf] = value
        recorded = self.values
        for node in sorted(cone, key=self.position.__getitem__):
            if node == leaf:
                continue
            rule, constant, parents = self.plan[node]
            a = values[parents[0]] if parents[0] in values else recorded[parents[0]]
            if rule.arity == 2:
                b = values[parents[1]] if parents[1] in values else recorded[parents[1]]
            else:
                b = constant
            values[node] = rule.value(a, b)
        return values[self.root] if self.root in values else recorded[self.root]

    def derivative(self, leaf: int, eps: float = 1e-6) -> float:
        """d root / d leaf by central differences, with a step of ``eps`` times the leaf's
        size (at least ``eps``). ``ValueError`` when a moved value leaves an op's domain."""
        if leaf not in self.values:
            return 0.0
        x = self.values[leaf]
        h = eps * max(1.0, abs(x))
        try:
            up, down = self.root_value_with(leaf, x + h), self.root_value_with(leaf, x - h)
        except (ValueError, ZeroDivisionError, OverflowError) as exc:
            raise ValueError(f"moving it by {format_number(h)} makes an op undefined ({exc})") from None
        return (up - down) / (2 * h)


def _pass_change(p: PassInfo, node: int) -> Tuple[float, float]:
    """What a pass added to a node's grad, and the grad it ended with."""
    before = p.grads_before.get(node, 0.0)
    writes = p.writes_to.get(node)
    after = writes[-1].grad_after if writes else before
    return after - before, after


def check_pass(model: TraceModel, p: PassInfo, *, eps: float = 1e-6, atol: float = 1e-5,
               rtol: float = 1e-3, max_leaves: int = 100) -> List[Finding]:
    """Findings for the leaves of pass ``p`` whose gradient disagrees with central differences."""
    try:
        graph = RecordedGraph(model.nodes, p.order)
    except UncheckableGraph as exc:
        return [Finding(p.pass_no, "check_skipped", "info",
                        f"backward pass {p.pass_no} could not be checked numerically: {exc}",
                        (), (), None, "the numerical check knows the ops of the rule table only")]
    leaves = [n for n in p.order if model.nodes[n].op == ""]
    findings = []
    root = model.name(p.root)
    for leaf in leaves[:max_leaves]:
        info = model.nodes[leaf]
        try:
            numeric = graph.derivative(leaf, eps) * p.seed
        except ValueError as exc:
            findings.append(Finding(p.pass_no, "check_skipped", "info",
                                    f"{info.name} could not be checked numerically in backward pass "
                                    f"{p.pass_no}: {exc}", (leaf,), (info.name,), info.site,
                                    "check this leaf by hand, or move it away from the op's edge"))
            continue
        added, after = _pass_change(p, leaf)
        if not math.isfinite(numeric) or close_enough(added, numeric, atol, rtol):
            continue
        total = f" (now {format_number(after)})" if after != added else ""
        findings.append(Finding(
            p.pass_no, "gradient_mismatch", "error",
            f"backward pass {p.pass_no} added {format_number(added)} to {info.name}.grad{total}, but "
            f"central differences give d {root}/d {info.name} = {format_number(numeric)}",
            (leaf,), (info.name,), info.site,
            f"check the backward functions on the paths from {root} to {info.name}: a wrong local "
            f"derivative, a missing or doubled contribution, or a node firing outside the graph"))
    if len(leaves) > max_leaves:
        findings.append(Finding(p.pass_no, "check_skipped", "info",
                                f"{len(leaves) - max_leaves} of the {len(leaves)} leaves of backward pass "
                                f"{p.pass_no} were not checked numerically (the limit is {max_leaves})",
                                (), (), None, "raise Diagnoser(check_leaves=...) to check more"))
    return findings


def _leaf_value(x, position: int) -> Tuple[float, str]:
    from ..engine.value import Value

    if isinstance(x, Value):
        return x.data, x.name or f"input {position}"
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x), f"input {position}"
    raise TypeError(f"check_grads: input {position} is a {type(x).__name__} ({x!r:.40}); "
                    f"pass numbers or Values")


def check_grads(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                raise_exception: bool = True) -> bool:
    """Check ``fn``'s gradients against central differences, like ``torch.autograd.gradcheck``.

    ``fn`` is run once on fresh leaves made from ``inputs`` and its result's backward
    pass is traced; each input's gradient is then compared with central differences
    of the recorded graph (no second run of ``fn``). An enclosing tracer sees the run.

    Args:
        fn: takes one Value per input and returns a Value.
        *inputs: numbers or Values (only their values are used).
        eps: the step, relative to each input's size.
        atol: absolute tolerance.
        rtol: relative tolerance.
        raise_exception: raise :class:`GradcheckError` on a mismatch instead of returning False.

    >>> check_grads(lambda x, y: x * y + y.sin(), 2.0, 3.0)
    True
    """
    from ..engine.value import Value
    from ..core.tracer import trace

    if not callable(fn):
        raise TypeError(f"check_grads: fn must be callable, got {type(fn).__name__}")
    if not inputs:
        raise ValueError("check_grads: give at least one input, as in check_grads(f, 2.0)")
    values = [_leaf_value(x, i) for i, x in enumerate(inputs)]
    with trace() as t:
        leaves = [Value(value, name=name) for value, name in values]
        out = fn(*leaves)
        if not isinstance(out, Value):
            raise TypeError(f"check_grads: fn must return a Value, got {type(out).__name__}")
        out.backward()
    model = TraceModel.from_events(t.events)
    p = model.passes[-1]
    graph = RecordedGraph(model.nodes, p.order)
    problems = []
    for position, leaf in enumerate(leaves):
        added, _ = _pass_change(p, leaf.id)
        label = f"input {position} ({leaf.label} = {format_number(leaf.data)})"
        try:
            numeric = graph.derivative(leaf.id, eps)
        except ValueError as exc:
            problems.append(f"{label} cannot be checked: {exc}")
            continue
        if not close_enough(added, numeric, atol, rtol):
            problems.append(f"the gradient for {label} is {format_number(added)} by backward but "
                            f"{format_number(numeric)} by central differences")
    if problems and raise_exception:
        raise GradcheckError("check_grads: " + "; ".join(problems))
    return not problems

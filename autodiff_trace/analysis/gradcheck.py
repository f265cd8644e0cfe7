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

from ..core.sites import default_name
from ..core.text import number
from ..core.events import Finding
from ..core.model import PassInfo, TraceModel
from .ops import Plan, UncheckableGraph, evaluate, op_value, plan_of, resolve_op, same_value

__all__ = [
    "GradcheckError", "UncheckableGraph", "resolve_op", "op_value", "RecordedGraph",
    "close_enough", "check_pass", "check_grads",
]

class GradcheckError(RuntimeError):
    """A gradient that disagrees with central differences (PyTorch's name for it)."""


def close_enough(analytic: float, numeric: float, atol: float, rtol: float) -> bool:
    """PyTorch's test: ``|analytic - numeric| <= atol + rtol * |numeric|``.

    >>> close_enough(18.0, 18.0000001, 1e-5, 1e-3), close_enough(20.0, 18.0, 1e-5, 1e-3)
    (True, False)
    """
    return abs(analytic - numeric) <= atol + rtol * abs(numeric)


class RecordedGraph:
    """A pass's graph as its events recorded it, ready to evaluate with one leaf moved.

    Leaves keep the value they were made with, but a training loop changes them in place
    (``p.data -= lr * p.grad``) before building the next graph. So each leaf's value at
    the time of the pass is read back from the nodes this graph computed from it (solving
    its first consumer for it); a value that no op explains stops the check.

    Args:
        nodes: node id -> an object with ``op``, ``value`` and ``parents`` (a
            :class:`~autodiff_trace.core.model.NodeInfo`).
        order: the pass's order: the root first, every node before its parents.
    """

    def __init__(self, nodes: Mapping, order: Sequence[int],
                 name: Callable[[int], str] = "node #{}".format) -> None:
        if not order:
            raise UncheckableGraph("the pass visited no nodes")
        self.root = order[0]
        self.values: Dict[int, float] = {}
        self.position: Dict[int, int] = {}
        self.plan: Dict[int, Plan] = {}  # node -> how to recompute it
        self.consumers: Dict[int, List[int]] = {}
        self.moved: Dict[int, float] = {}  # leaf -> the value it was made with, when it changed since
        self._confirmed: set = set()  # leaves whose value a consumer has confirmed
        leaves = set()
        for position, node in enumerate(reversed(order)):
            info = nodes.get(node)
            if info is None or info.op == "?":
                raise UncheckableGraph(f"node #{node} was made before tracing began, so its op is unknown", node)
            if isinstance(info.value, complex):
                raise UncheckableGraph(f"{name(node)} holds a complex value; central differences are "
                                       f"taken along the real line only", node)
            self.values[node] = info.value
            self.position[node] = position
            if info.op in ("", "const"):
                if info.op == "":  # a constant is made where it is used: its value is current
                    leaves.add(node)
                continue
            try:
                self.plan[node] = plan = plan_of(info, self.values)
            except UncheckableGraph as exc:
                raise UncheckableGraph(str(exc), node) from None
            for parent in set(plan[1]):
                self.consumers.setdefault(parent, []).append(node)
            self._settle(node, info.value, leaves, name)
        for node in order[1:]:  # the order follows parents: each node there has a consumer
            if node not in self.consumers:
                raise UncheckableGraph(f"the trace records no node computed from {name(node)}, which the "
                                       f"pass visited (its node was linked to its parents after it was made?)",
                                       node)

    def _settle(self, node: int, recorded: float, leaves: set, name: Callable[[int], str]) -> None:
        """Check that ``node``'s recorded value follows from its operands; if it does not,
        solve for the one leaf operand whose value the graph has not confirmed yet."""
        plan, values = self.plan[node], self.values
        try:
            again = evaluate(plan, values.__getitem__)
        except (ValueError, ZeroDivisionError, OverflowError):
            again = math.nan
        suspects = {p for p in plan[1] if p in leaves and p not in self._confirmed}
        if not (same_value(again, recorded) or (again != again and recorded != recorded)):
            if len(suspects) != 1 or not self._solve(node, suspects.pop(), recorded):
                raise UncheckableGraph(
                    f"the value of {name(node)} does not follow from its operands' values (one of them "
                    f"changed in place after {name(node)} was made?)", node)
        self._confirmed.update(p for p in plan[1] if p in leaves)

    def _solve(self, node: int, leaf: int, target: float) -> bool:
        """Set ``leaf`` to the value that gives ``node`` its recorded value (secant steps
        from the value it was made with); False when none is found."""
        values, plan = self.values, self.plan[node]
        made_with = values[leaf]

        def miss(x: float) -> float:
            values[leaf] = x
            return evaluate(plan, values.__getitem__) - target

        x0, x1 = made_with, made_with + 1e-3 * max(1.0, abs(made_with))
        try:
            f0, f1 = miss(x0), miss(x1)
            for _ in range(60):
                if f1 == f0:
                    break
                x0, x1 = x1, x1 - f1 * (x1 - x0) / (f1 - f0)
                f0, f1 = f1, miss(x1)
                if same_value(f1 + target, target):
                    self.moved[leaf] = made_with
                    return True
        except (ValueError, ZeroDivisionError, OverflowError):
            pass
        values[leaf] = made_with
        return False

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

        def value_of(node: int) -> float:
            return values[node] if node in values else recorded[node]

        for node in sorted(cone, key=self.position.__getitem__):
            if node != leaf:
                values[node] = evaluate(self.plan[node], value_of)
        return value_of(self.root)

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
            raise ValueError(f"moving it by {number(h)} makes an op undefined ({exc})") from None
        return (up - down) / (2 * h)


def _pass_change(p: PassInfo, node: int) -> Tuple[float, float]:
    """What a pass added to a node's grad, and the grad it ended with."""
    before = p.grads_before.get(node, 0.0)
    writes = p.writes_to.get(node)
    after = writes[-1].grad_after if writes else before
    return after - before, after


def check_pass(model: TraceModel, p: PassInfo, *, eps: float = 1e-6, atol: float = 1e-5,
               rtol: float = 1e-3, max_leaves: int = 100) -> List[Finding]:
    """Findings for the leaves of pass ``p`` whose gradient disagrees with central
    differences; a pass or leaf that cannot be checked gets a ``check_skipped`` finding
    saying why (located at the node at fault, so that one reason is one cause)."""
    def skipped(reason: str, site: Optional[str], hint: str) -> List[Finding]:
        return [Finding(p.pass_no, "check_skipped", "info",
                        f"backward pass {p.pass_no} could not be checked numerically: {reason}",
                        (), (), site, hint)]

    carried = [n for n, g in p.grads_before.items() if g != 0 and model.node(n).parents]
    if carried:
        return skipped(f"{len(carried)} node(s) inside its graph ({model.name(carried[0])}, ...) held "
                       f"gradients when it began, and an engine that passes on a node's whole grad adds "
                       f"them again", None, "see the stale_gradient finding: zero the grads before the pass")
    if p.seed == 0 and any(w.contribution for w in p.writes):
        return skipped("its seed (the grad its root was given) was not seen: the engine keeps it where the "
                       "tool does not look (a dict it fills, say)", None, "check this pass by hand")
    try:
        graph = RecordedGraph(model.nodes, p.order, model.name)
    except UncheckableGraph as exc:
        site = model.node(exc.node).site if exc.node is not None else None
        return skipped(str(exc), site, "the numerical check knows the ops of the rule table only"
                       if "no derivative rule" in str(exc) else "check this pass by hand")
    # A number an op wrapped, never named and reached by no write, is a constant to the
    # engine (PyTorch's requires_grad=False): no one can read its gradient.
    leaves = [n for n in p.order if model.nodes[n].op == "" and (
        n in p.writes_to or model.nodes[n].name != default_name(n, "", model.nodes[n].value))]
    findings = []
    root = model.name(p.root)
    for leaf in leaves[:max_leaves]:
        info = model.nodes[leaf]
        try:
            numeric = graph.derivative(leaf, eps) * p.seed
            if not math.isfinite(numeric):
                raise ValueError(f"central differences give {number(numeric)}")
        except ValueError as exc:
            findings.append(Finding(p.pass_no, "check_skipped", "info",
                                    f"{info.name} could not be checked numerically in backward pass "
                                    f"{p.pass_no}: {exc}", (leaf,), (info.name,), info.site,
                                    "check this leaf by hand, or move it away from the op's edge"))
            continue
        added, after = _pass_change(p, leaf)
        if close_enough(added, numeric, atol, rtol):
            continue
        total = f" (now {number(after)})" if after != added else ""
        findings.append(Finding(
            p.pass_no, "gradient_mismatch", "error",
            f"backward pass {p.pass_no} added {number(added)} to {info.name}.grad{total}, but "
            f"central differences give d {root}/d {info.name} = {number(numeric)}",
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
        label = f"input {position} ({leaf.label} = {number(leaf.data)})"
        try:
            numeric = graph.derivative(leaf.id, eps)
        except ValueError as exc:
            problems.append(f"{label} cannot be checked: {exc}")
            continue
        if not close_enough(added, numeric, atol, rtol):
            problems.append(f"the gradient for {label} is {number(added)} by backward but "
                            f"{number(numeric)} by central differences")
    if problems and raise_exception:
        raise GradcheckError("check_grads: " + "; ".join(problems))
    return not problems

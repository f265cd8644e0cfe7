"""Properties over random expression graphs: gradients, and replaying a trace.

Hypothesis builds expressions over the whole op table, each op applied only where
its value and derivative are defined with room to spare (no relu near 0, no tan
near a pole, no log, sqrt or division near 0), with results and local derivatives
kept small so that central differences are accurate. Every leaf's grad must equal
the central difference of the same expression evaluated in plain floats, and
PyTorch's float64 grad when PyTorch is installed. A trace written as JSON Lines
and read back must draw the same terminal report and the same DOT as the live run.
Runs are derandomized; ``PROPERTY_EXAMPLES=3000`` explores more expressions.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from autodiff_trace import Diagnoser, JsonlSink, Value, diagram, load_events, trace, zero_grad
from autodiff_trace.engine.rules import RULES
from autodiff_trace.sinks.dot import DotSink
from autodiff_trace.sinks.rich_tree import RichTreeSink
from autodiff_trace.views.terminal.report import print_report

FAST = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", 120)), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
REPLAY = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", 100)) // 4, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])

BOUND = 20.0  # |value| and |local derivative| allowed at every step
MARGIN = 0.2  # distance kept from a kink, a pole or the edge of a domain
CONSTANT_POWERS = (2.0, 3.0, -1.0, -2.0, 0.5, 1.5, 0.0, 1.0)


class Op(NamedTuple):
    """One row of the op table as the tests see it."""

    name: str
    arity: int
    value: Callable  # plain-float value, (a, b) -> out
    derivatives: Callable  # plain-float local derivatives, (a, b) -> tuple
    valid: Callable  # (a, b) -> True when the op is well inside its domain


def _pow_valid(a: float, b: float) -> bool:
    return a >= MARGIN and abs(b) <= 4


def _powc_valid(a: float, c: float) -> bool:
    return abs(a) >= MARGIN and (a > 0 or c == int(c))


OPS = {op.name: op for op in (
    Op("add", 2, lambda a, b: a + b, lambda a, b: (1.0, 1.0), lambda a, b: True),
    Op("sub", 2, lambda a, b: a - b, lambda a, b: (1.0, -1.0), lambda a, b: True),
    Op("mul", 2, lambda a, b: a * b, lambda a, b: (b, a), lambda a, b: True),
    Op("div", 2, lambda a, b: a / b, lambda a, b: (1 / b, -a / b ** 2), lambda a, b: abs(b) >= MARGIN),
    Op("pow", 2, lambda a, b: a ** b, lambda a, b: (b * a ** (b - 1), a ** b * math.log(a)), _pow_valid),
    Op("powc", 1, lambda a, c: a ** c, lambda a, c: (c * a ** (c - 1),), _powc_valid),
    Op("neg", 1, lambda a, _: -a, lambda a, _: (-1.0,), lambda a, _: True),
    Op("sin", 1, lambda a, _: math.sin(a), lambda a, _: (math.cos(a),), lambda a, _: True),
    Op("cos", 1, lambda a, _: math.cos(a), lambda a, _: (-math.sin(a),), lambda a, _: True),
    Op("tan", 1, lambda a, _: math.tan(a), lambda a, _: (1 / math.cos(a) ** 2,),
       lambda a, _: abs(math.cos(a)) >= MARGIN),
    Op("log", 1, lambda a, _: math.log(a), lambda a, _: (1 / a,), lambda a, _: a >= MARGIN),
    Op("exp", 1, lambda a, _: math.exp(a), lambda a, _: (math.exp(a),), lambda a, _: a <= 3),
    Op("sqrt", 1, lambda a, _: math.sqrt(a), lambda a, _: (0.5 / math.sqrt(a),), lambda a, _: a >= MARGIN),
    Op("relu", 1, lambda a, _: max(a, 0.0), lambda a, _: (float(a > 0),), lambda a, _: abs(a) >= MARGIN),
    Op("sigmoid", 1, lambda a, _: 1 / (1 + math.exp(-a)), lambda a, _: (math.exp(-a) / (1 + math.exp(-a)) ** 2,),
       lambda a, _: True),
    Op("tanh", 1, lambda a, _: math.tanh(a), lambda a, _: (1 - math.tanh(a) ** 2,), lambda a, _: True),
)}


class Step(NamedTuple):
    """``out = op(a, b)``: operands are ``("node", index)`` or ``("const", number)``."""

    op: str
    a: Tuple[str, float]
    b: Optional[Tuple[str, float]]  # None for unary ops; the exponent of powc is ("const", c)


class Expression(NamedTuple):
    """Leaf values and the steps that build on them; the last step's node is the output."""

    leaves: Tuple[float, ...]
    steps: Tuple[Step, ...]

    def evaluate(self, leaves: Optional[List[float]] = None) -> List[float]:
        """Every node's value in plain floats: the leaves, then one per step."""
        values = list(self.leaves if leaves is None else leaves)
        for step in self.steps:
            a = _operand(values, step.a)
            b = None if step.b is None else _operand(values, step.b)
            values.append(OPS[step.op].value(a, b))
        return values


def _operand(values: List[float], operand: Tuple[str, float]) -> float:
    kind, x = operand
    return values[int(x)] if kind == "node" else x


def _ok(*numbers: float) -> bool:
    return all(math.isfinite(x) and abs(x) <= BOUND for x in numbers)


@st.composite
def expressions(draw, max_steps: int = 6) -> Expression:
    """Random expressions: each step picks operands among all earlier nodes (so
    nodes are shared and reused, ``x * x`` included), sometimes a constant, then an
    op among those well inside their domain there."""
    leaves = draw(st.lists(st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 3)),
                           min_size=1, max_size=4))
    values, steps = list(leaves), []
    for _ in range(draw(st.integers(1, max_steps))):
        pick = st.integers(0, len(values) - 1)
        a = ("node", draw(pick))
        b = ("node", draw(pick)) if draw(st.booleans()) else ("const", draw(st.sampled_from((-1.5, 0.5, 2.0, 3.0))))
        a_const = draw(st.integers(0, 4)) == 0 and b[0] == "node"  # 2 - x, 3 ** x: the reflected ops
        if a_const:
            a = ("const", draw(st.sampled_from((-1.5, 0.5, 2.0, 3.0))))
        c = ("const", draw(st.sampled_from(CONSTANT_POWERS)))
        candidates = []
        for op in OPS.values():
            if op.arity == 1 and a[0] == "const":
                continue
            if op.name == "pow" and b[0] == "const":
                continue  # x ** 2.0 is powc
            second = c if op.name == "powc" else (b if op.arity == 2 else None)
            x, y = _operand(values, a), (None if second is None else _operand(values, second))
            if not op.valid(x, y):
                continue
            if _ok(op.value(x, y), *op.derivatives(x, y)):
                candidates.append(Step(op.name, a, second))
        step = draw(st.sampled_from(candidates))
        steps.append(step)
        values = Expression(tuple(leaves), tuple(steps)).evaluate()
    return Expression(tuple(leaves), tuple(steps))


def build(expr: Expression, names: Tuple[str, ...] = ()) -> List[Value]:
    """The expression as Values, through the public operators and methods."""
    nodes: List[object] = [Value(x, name=names[i] if i < len(names) else None)
                           for i, x in enumerate(expr.leaves)]
    for step in expr.steps:
        a = _node_or_number(nodes, step.a)
        b = None if step.b is None else _node_or_number(nodes, step.b)
        nodes.append(_apply_value(step.op, a, b))
    return nodes


def _node_or_number(nodes, operand):
    kind, x = operand
    return nodes[int(x)] if kind == "node" else x


def _apply_value(op: str, a, b):
    if op in ("add", "sub", "mul", "div", "pow"):
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
                "div": lambda: a / b, "pow": lambda: a ** b}[op]()
    if op == "powc":
        return a ** b
    if op == "neg":
        return -a
    return getattr(a, op)()


def central_difference(expr: Expression, leaf: int) -> float:
    """d output / d leaf by central differences in plain floats."""
    x = expr.leaves[leaf]
    h = 1e-6 * max(1.0, abs(x))
    up, down = list(expr.leaves), list(expr.leaves)
    up[leaf], down[leaf] = x + h, x - h
    return (expr.evaluate(up)[-1] - expr.evaluate(down)[-1]) / (2 * h)


class TestGeneratorCoversTheOpTable:
    def test_every_rule_of_the_engine_has_a_row_here(self):
        """The generator's op table is the engine's, less the constant: a new rule must be added here."""
        assert set(OPS) == set(RULES) - {"const"}

    @FAST
    @given(expressions())
    def test_generated_ops_stay_inside_their_domains(self, expr):
        """The engine builds every generated expression without a domain error, to the same values."""
        nodes = build(expr)
        expected = expr.evaluate()
        assert len(nodes) == len(expected)
        for node, value in zip(nodes, expected):  # sigmoid is written two ways: allow rounding
            assert math.isclose(node.data, value, rel_tol=1e-12, abs_tol=1e-15)


class TestGradientsMatchCentralDifferences:
    @FAST
    @given(expressions())
    def test_every_leaf_grad_equals_the_central_difference(self, expr):
        """After backward from the last node, each leaf's grad is d output / d leaf (0 if unused)."""
        nodes = build(expr)
        nodes[-1].backward()
        for i in range(len(expr.leaves)):
            expected = central_difference(expr, i)
            assert math.isclose(nodes[i].grad, expected, rel_tol=1e-5, abs_tol=1e-6), (
                f"leaf {i}: engine {nodes[i].grad!r}, central difference {expected!r}")

    @FAST
    @given(expressions(), st.integers(2, 3))
    def test_repeated_backward_accumulates_whole_multiples(self, expr, times):
        """Calling backward k times without zeroing leaves k times each leaf's grad, as PyTorch does."""
        once = build(expr)
        once[-1].backward()
        again = build(expr)
        for _ in range(times):
            again[-1].backward()
        for i in range(len(expr.leaves)):
            assert math.isclose(again[i].grad, times * once[i].grad, rel_tol=1e-12, abs_tol=1e-12)


@pytest.fixture(scope="module")
def torch():
    """PyTorch, or a visible skip of the comparison when it is not installed."""
    with warnings.catch_warnings():  # the CPU wheel warns when NumPy is absent; we use none of it
        warnings.simplefilter("ignore")
        return pytest.importorskip(
            "torch", reason="PyTorch is not installed; `pip install torch==2.13.0` (CPU) to "
                            "compare every grad with PyTorch's float64")


def build_torch(torch, expr: Expression):
    """The same expression in float64 tensors; returns (leaves, output)."""
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in expr.leaves]
    nodes: List[object] = list(leaves)
    for step in expr.steps:
        a = _node_or_number(nodes, step.a)
        b = None if step.b is None else _node_or_number(nodes, step.b)
        if step.op in ("add", "sub", "mul", "div", "pow", "powc", "neg"):
            nodes.append(_apply_value(step.op, a, b))
        else:
            nodes.append(getattr(torch, step.op)(a))
    return leaves, nodes[-1]


class TestGradientsMatchPyTorch:
    @FAST
    @given(expr=expressions())
    def test_every_leaf_grad_equals_pytorch_float64(self, torch, expr):
        """Each leaf's grad and the output's value agree with PyTorch's to float64 rounding."""
        nodes = build(expr)
        nodes[-1].backward()
        leaves, out = build_torch(torch, expr)
        out.backward()
        assert math.isclose(nodes[-1].data, out.item(), rel_tol=1e-12, abs_tol=1e-12)
        for i, leaf in enumerate(leaves):
            expected = 0.0 if leaf.grad is None else leaf.grad.item()
            assert math.isclose(nodes[i].grad, expected, rel_tol=1e-9, abs_tol=1e-12), (
                f"leaf {i}: engine {nodes[i].grad!r}, PyTorch {expected!r}")


    def test_instrumenting_a_script_that_imported_torch_reads_none_of_its_classes(self, torch,
                                                                                  monkeypatch):
        """trace-backward on a script that imports torch to compare skips torch's classes (8 s otherwise)."""
        instrument_module = importlib.import_module("autodiff_trace.adapters.instrument")
        read = []
        survey = instrument_module.survey
        monkeypatch.setattr(instrument_module, "survey", lambda cls: read.append(cls) or survey(cls))
        with trace(), instrument_module.instrument():
            class Tensorish(torch.nn.Module):  # made while tracing, from a torch base
                pass
        assert [c for c in read if c.__module__.startswith("torch")] == []


# -- replaying a trace ------------------------------------------------------------------
NAME_TEXT = st.text(alphabet="xyzw_[]<>{}|\"\\/ #é", min_size=1, max_size=8)


class Run(NamedTuple):
    events: list  # recorded live
    report: str  # what the live Rich sink printed, styles included
    dots: dict  # pass number -> the .dot the live DotSink wrote
    loaded: list  # the events read back from the JSON Lines file


def styled_console() -> Console:
    return Console(file=io.StringIO(), width=100, force_terminal=True, color_system="truecolor",
                   legacy_windows=False)


def traced_run(expr: Expression, names: Tuple[str, ...], passes: int, zero_between: bool) -> Run:
    """Run the expression's backward passes with the live sinks, and read its JSONL back."""
    console = styled_console()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        sinks = [RichTreeSink(console, live=False), DotSink(folder, formats=()),
                 JsonlSink(folder / "trace.jsonl")]
        with trace(sinks=sinks, analyzers=[Diagnoser(check_grads=True)]) as t:
            nodes = build(expr, names)
            for n in range(passes):
                if n and zero_between:
                    zero_grad(nodes[-1])
                nodes[-1].backward()
        dots = {int(p.stem.split("_")[1]): p.read_text(encoding="utf-8")
                for p in folder.glob("pass_*.dot")}
        loaded = load_events(folder / "trace.jsonl")
    return Run(t.events, console.file.getvalue(), dots, loaded)


class TestReplayReproducesTheLiveSinks:
    @REPLAY
    @given(expressions(max_steps=5), st.lists(NAME_TEXT, max_size=4), st.integers(1, 3), st.booleans())
    def test_replay_matches_live(self, expr, names, passes, zero_between):
        """Events read back equal the live ones; the report and every pass's DOT are identical."""
        run = traced_run(expr, tuple(names), passes, zero_between)
        assert run.loaded == run.events
        console = styled_console()
        print_report(run.loaded, console)
        assert console.file.getvalue() == run.report
        assert sorted(run.dots) == list(range(1, passes + 1))
        for pass_no, live_dot in run.dots.items():
            assert diagram(run.loaded, pass_no).source == live_dot
            assert diagram(run.events, pass_no).source == live_dot

    @REPLAY
    @given(expressions(max_steps=5), st.integers(1, 2))
    def test_a_correct_engine_draws_no_gradient_mismatch(self, expr, passes):
        """The recorded-graph gradient check agrees with the engine on every random graph."""
        run = traced_run(expr, (), passes, True)
        findings = [e for e in run.events if e.kind == "diagnostic"]
        assert [f.message for f in findings if f.finding in ("gradient_mismatch", "check_skipped")] == []


class TestGradientsAtTheEdgeOfTheDomain:
    def test_sqrt_at_zero_has_an_infinite_grad(self):
        """sqrt(x) at x = 0 is defined and its grad is +inf, as in PyTorch."""
        x = Value(0.0)
        x.sqrt().backward()
        assert x.grad == math.inf

    @pytest.mark.parametrize("c, expected", [(0.5, math.inf), (0.25, math.inf), (0.0, 0.0)])
    def test_constant_power_at_zero_gives_pytorchs_grad(self, c, expected):
        """x ** c at x = 0, whose value is defined, backpropagates PyTorch's grad instead of raising."""
        x = Value(0.0)
        (x ** c).backward()
        assert x.grad == expected

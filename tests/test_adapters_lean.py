"""The lean hooks of the common design (a parents attribute, a grad and a rule in the
instance dict): chosen for it alone, and reporting what the general hooks report."""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import textwrap
from pathlib import Path

from autodiff_trace import trace
from autodiff_trace.adapters import instrument
from autodiff_trace.adapters.hooks import BackwardHook, GradHook, construction_hook, grad_hook, init_hook
from autodiff_trace.adapters.lean import LeanBackwardHook, LeanGradHook

instrumenting = importlib.import_module("autodiff_trace.adapters.instrument")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rulechecking import engine  # noqa: E402

# micrograd's design, with its parents in a tuple so that every run walks them alike
ENGINE = textwrap.dedent('''
    class Value:
        def __init__(self, data, _children=(), _op=''):
            self.data = data
            self.grad = 0
            self._backward = lambda: None
            self._prev = tuple(_children)
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
                self.grad += other.data * out.grad
                other.grad += self.data * out.grad
            out._backward = _backward
            return out

        def backward(self):
            topo, visited, stack = [], set(), [(self, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    topo.append(node)
                elif node not in visited:
                    visited.add(node)
                    stack.append((node, True))
                    stack.extend((p, False) for p in node._prev)
            self.grad = 1
            for v in reversed(topo):
                v._backward()

    w1, w2, b = Value(0.5), Value(-0.3), Value(0.1)
    for step in range(3):
        x = Value(2.0)
        y = w1 * x + w2 * x * x + b
        loss = y * y
        if step != 1:
            for p in (w1, w2, b):
                p.grad = 0
        loss.backward()
    print(w1.grad, w2.grad, b.grad)
''')

SLOTTED = textwrap.dedent('''
    class Node:
        __slots__ = ("data", "grad", "_prev", "_backward")

        def __init__(self, data, _children=()):
            self.data, self.grad, self._prev = data, 0.0, tuple(_children)
            self._backward = lambda: None
''')


def _general(monkeypatch) -> None:
    """Instrument with the general hooks only."""
    monkeypatch.setattr(instrumenting, "construction_hook_of", construction_hook)
    monkeypatch.setattr(instrumenting, "init_hook_of", init_hook)
    monkeypatch.setattr(instrumenting, "grad_hook_of",
                        lambda cls, vocab, reporter: grad_hook(cls, vocab.grad, vocab, reporter))
    monkeypatch.setattr(instrumenting, "backward_hook_of",
                        lambda cls, vocab, reporter: BackwardHook(cls, vocab.backward, vocab, reporter))


def _traced(source: str) -> tuple:
    """(events without their times, what the script printed, the class's hooks while traced)."""
    printed: list = []
    namespace = {"__name__": "engine_script", "print": lambda *a: printed.append(a)}
    with trace() as t, instrument():
        exec(compile(source, "engine_script.py", "exec"), namespace)
        hooks = {name: vars(namespace[name_of_class(namespace)])[name]
                 for name in ("__init__", "grad", "_backward")}
    events = [(type(e).__name__, {k: v for k, v in e._asdict().items() if k not in ("t", "duration")})
              for e in t.events]
    return events, printed, hooks


def name_of_class(namespace: dict) -> str:
    return next(name for name, value in namespace.items() if isinstance(value, type))


def reporting_file(init) -> str:
    """The file of the function an ``__init__`` hook reports each new node with (the hook's
    own, when it reports in its own frame)."""
    held = dict(zip(init.__code__.co_freevars, (cell.cell_contents for cell in init.__closure__)))
    if "report" not in held:
        return init.__code__.co_filename
    report = held["report"] or held["reporter"].node_made
    return getattr(report, "__func__", report).__code__.co_filename


class TestLeanHooks:
    """Which hooks a node class gets, and what they report."""

    def test_the_common_design_gets_the_lean_hooks(self):
        """A class keeping its parents, grad and rule in the instance dict is hooked the lean way."""
        _, _, hooks = _traced(ENGINE)
        assert type(hooks["grad"]) is LeanGradHook
        assert type(hooks["_backward"]) is LeanBackwardHook
        assert reporting_file(hooks["__init__"]).endswith("lean.py")

    def test_a_slotted_class_keeps_the_general_hooks(self):
        """Nodes without an instance dict are hooked the general way."""
        _, _, hooks = _traced(SLOTTED + "\nNode(1.0)\n")
        assert isinstance(hooks["grad"], GradHook) and type(hooks["grad"]) is not LeanGradHook
        assert type(hooks["_backward"]) is BackwardHook
        assert not reporting_file(hooks["__init__"]).endswith("lean.py")

    def test_lean_and_general_hooks_report_the_same_events(self, monkeypatch):
        """Three steps, one of them without a reset: the same events, event for event."""
        lean, printed_lean, _ = _traced(ENGINE)
        _general(monkeypatch)
        general, printed_general, hooks = _traced(ENGINE)
        assert type(hooks["grad"]) is not LeanGradHook
        assert printed_lean == printed_general
        assert [kind for kind, _ in lean].count("BackwardStarted") == 3
        assert lean == general

    def test_the_script_prints_what_it_prints_untraced(self):
        """Tracing with the lean hooks changes nothing the script computes."""
        printed: list = []
        exec(compile(ENGINE, "engine_script.py", "exec"), {"__name__": "plain", "print": lambda *a: printed.append(a)})
        assert _traced(ENGINE)[1] == printed and printed


class TestRuleCheckOnLeanHooks:
    """The derivative-rule check re-runs ops of a class hooked the lean way, whose hooks
    report straight to the tracer rather than through the reporter."""

    TRAINING = textwrap.dedent('''
        x, y = Value(1.5), Value(-0.75)
        for step in range(2):
            loss = (x * y).tanh()
            x.grad = y.grad = 0.0
            loss.backward()
            x.data -= 0.01 * x.grad
        print(round(loss.data, 9))
        ''')

    def _run(self, tmp_path, source: str) -> tuple:
        """(the diagnostics, the class's grad hook while traced, the rule check)."""
        script = tmp_path / "train.py"
        script.write_text(source)
        namespace = {"__name__": "__main__"}
        with contextlib.redirect_stdout(io.StringIO()), trace() as t, instrument() as found:
            exec(compile(source, str(script), "exec"), namespace)
            hook = vars(namespace["Value"])["grad"]
        return [e for e in t.events if e.kind == "diagnostic"], hook, found.reporter.rulecheck

    def test_a_wrong_rule_is_named_at_its_line_through_the_lean_hooks(self, tmp_path):
        """mul's rule using self.data for self's grad is named at its line, its op re-run in a forked copy."""
        source = engine(mul_self="self.data") + self.TRAINING
        findings, hook, rulecheck = self._run(tmp_path, source)
        assert type(hook) is LeanGradHook
        wrong = [f for f in findings if f.finding == "wrong_derivative"]
        line = next(n for n, text in enumerate(source.splitlines(), 1) if "# mul: self" in text)
        assert len(wrong) == 1 and wrong[0].site.endswith(f"train.py:{line}") and rulecheck.forks >= 1

    def test_the_correct_rules_stay_silent_through_the_lean_hooks(self, tmp_path):
        """The same engine with its rules right: re-run and agreeing, no finding."""
        findings, hook, rulecheck = self._run(tmp_path, engine() + self.TRAINING)
        assert type(hook) is LeanGradHook and rulecheck.forks >= 1
        assert [f for f in findings if f.finding == "wrong_derivative"] == []

    def test_a_re_run_is_told_of_the_nodes_the_lean_hooks_make(self):
        """In the re-run's copy no tracer listens; the nodes its ops make still reach the
        rule check, which reads a handle-returning op's result from them."""
        namespace: dict = {"__name__": "engine_script"}
        with instrument() as found:
            exec(compile(engine(), "engine_script.py", "exec"), namespace)
            rulecheck = found.reporter.rulecheck
            rulecheck._in_child()
            made = namespace["Value"](2.0) * 3.0
            assert rulecheck._made_in_child[-1] is made

"""The derivative-rule check: every rule a learner's engine applies is compared with its
own forward op, re-run on nudged inputs in a forked copy of the process."""

from __future__ import annotations

import contextlib
import io
import runpy
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from autodiff_trace import trace
from autodiff_trace.adapters import instrument
from autodiff_trace.adapters.rulecheck import AGREEING_CHECKS, MAX_TRIES
from autodiff_trace.adapters.rulecheck_rerun import Slope, judge, step_for
from autodiff_trace.adapters.rulecheck_state import Rule

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "engines"))
from corpus import designs, materialise  # noqa: E402
from rulechecking import DESIGNS, QUEUE_TOO_EARLY, engine  # noqa: E402

def line_with(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if text in line)


def run(tmp_path: Path, source: str):
    """Run ``source`` as a script under trace() and instrument(): (findings, rule check, stdout)."""
    script = tmp_path / "train.py"
    script.write_text(source)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), trace() as t, instrument() as found:
        runpy.run_path(str(script), run_name="__main__")
    findings = [e for e in t.events if e.kind == "diagnostic"]
    return findings, found.reporter.rulecheck, out.getvalue()


def wrong(findings) -> list:
    return [f for f in findings if f.finding == "wrong_derivative"]


def training(expression: str, passes: int = 2) -> str:
    """A loop that builds ``expression`` from x and y, zeroes, backpropagates, updates."""
    return textwrap.dedent(f'''
        x, y = Value(1.5), Value(-0.75)
        for step in range({passes}):
            loss = {expression}
            x.grad = y.grad = 0.0
            loss.backward()
            x.data -= 0.01 * x.grad
            y.data -= 0.01 * y.grad
        print(round(loss.data, 9))
        ''')


class TestWrongRulesAreNamed:
    """A rule that disagrees with its own forward op is named at the line of its grad write."""

    def test_a_wrong_mul_rule_is_named_at_its_line_with_both_numbers(self, tmp_path):
        """mul's rule using self.data for self's grad: the line and both derivatives are given."""
        source = engine(mul_self="self.data") + training("(x * y).tanh()")
        findings = wrong(run(tmp_path, source)[0])
        assert len(findings) == 1
        finding = findings[0]
        assert finding.severity == "error"
        assert finding.site.endswith(f"train.py:{line_with(source, '# mul: self')}")
        assert "applies d/dself = 1.5 at self = 1.5, other = -0.75" in finding.message
        assert "own forward changes at -0.75 there" in finding.message

    def test_a_wrong_tanh_rule_is_named_at_its_line_with_both_numbers(self, tmp_path):
        """tanh's rule using the input instead of the output: 1 - 1.5**2 against tanh'(1.5)."""
        source = engine(tanh_local="(1 - x**2)") + training("x.tanh() * y")
        findings = wrong(run(tmp_path, source)[0])
        assert len(findings) == 1
        assert findings[0].site.endswith(f"train.py:{line_with(source, '# tanh')}")
        assert "tanh's backward" in findings[0].message
        assert "applies d/dx = -1.25 at x = 1.5" in findings[0].message
        assert "changes at 0.180707 there" in findings[0].message

    def test_one_finding_per_rule_line_however_many_nodes_and_passes(self, tmp_path):
        """Twenty tanh nodes over five passes give one finding, not one per node."""
        source = engine(tanh_local="(1 - x**2)") + training(
            "sum((x * (0.1 * i)).tanh() for i in range(1, 21)) * y", passes=5)
        assert len(wrong(run(tmp_path, source)[0])) == 1

    def test_a_free_function_op_is_re_run(self, tmp_path):
        """``mul(a, b)``, a module function with a closure rule, is checked like a method."""
        source = textwrap.dedent('''
            class Node:
                def __init__(self, value, parents=()):
                    self.value, self.grad, self.parents = value, 0.0, parents
                    self.backward_fn = None

            def mul(a, b):
                out = Node(a.value * b.value, (a, b))
                def backward_fn():
                    a.grad += out.grad * a.value  # wrong: b.value belongs here
                    b.grad += out.grad * a.value
                out.backward_fn = backward_fn
                return out

            def backward(root):
                root.grad = 1.0
                root.backward_fn()

            x, y = Node(2.0), Node(3.0)
            backward(mul(x, y))
            ''')
        findings = wrong(run(tmp_path, source)[0])
        assert [f.site.rsplit(":", 1)[1] for f in findings] == [str(line_with(source, "# wrong"))]
        assert "mul's backward" in findings[0].message and "changes at 3 there" in findings[0].message


class TestCorrectRulesStaySilent:
    """Correct rules give no finding, at repeated operands, constants, kinks and extremes."""

    @pytest.mark.parametrize("expression, op", [
        ("x * x", "mul"),  # b * b: one parent in the set, two slots
        ("x + x", "add"),
        ("x ** 3", "pow"),  # the exponent is a constant, held fixed
        ("2 * x", "mul"),  # a constant made into a node inside the op
        ("(x * 20).tanh()", "tanh"),  # saturated: tanh at 30
        ("(x * 33.3).exp()", "exp"),  # exp near 50: huge values
        ("x * 1e8 * y", "mul"),  # values of 1e8 and more
    ])
    def test_a_correct_rule_agrees_with_its_forward_op(self, tmp_path, expression, op):
        """The check runs on the op and agrees with it."""
        findings, check, _ = run(tmp_path, engine() + training(expression))
        assert wrong(findings) == []
        assert any(name == op for name, _ in check.checks), check.checks

    def test_relu_at_its_kink_is_not_judged(self, tmp_path):
        """At 0, relu's one-sided differences disagree: no check counts, no finding."""
        source = engine() + textwrap.dedent('''
            x = Value(0.0)
            for step in range(3):
                x.grad = 0.0
                (x.relu() * 2.0).backward()
            ''')
        findings, check, _ = run(tmp_path, source)
        assert wrong(findings) == []
        assert not any(name == "relu" for name, _ in check.checks)

    def test_a_rule_run_again_unannounced_is_not_judged(self, tmp_path):
        """A queue that runs a node's rule at each consumer's visit: the reruns, with no call
        to mark them, are not read as one rule's derivative (more writes than operands)."""
        assert wrong(run(tmp_path, QUEUE_TOO_EARLY)[0]) == []

    def test_micrograd_demo_is_silent(self):
        """micrograd 0.1.0's own engine, training a small MLP: every rule agrees."""
        imported = set(sys.modules)
        pytest.importorskip("micrograd")
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), trace() as t, instrument() as found:
                runpy.run_path(str(ROOT / "examples" / "micrograd_mlp.py"), run_name="__main__")
        finally:  # later traces must not find micrograd already imported
            for name in set(sys.modules) - imported:
                del sys.modules[name]
        assert [e for e in t.events if e.kind == "diagnostic" and e.finding == "wrong_derivative"] == []
        assert found.reporter.rulecheck.checks

    @pytest.mark.parametrize("design", [d for d in designs() if d.name in (
        "closures_set_parents", "functional_api", "notebook_export", "val_der", "v_backprop", "int_tape",
        "cs231n_gates")], ids=lambda d: d.name)
    def test_correct_corpus_designs_are_silent(self, tmp_path, design):
        """The corpus's correct drivers, traced with the default options: no wrong_derivative, no note."""
        script, _ = materialise(design, None, tmp_path)
        done = subprocess.run([str(Path(sys.executable).parent / "trace-backward"), "--out",
                               str(tmp_path / "out"), "-q", "-s", "json", str(script)],
                              capture_output=True, text=True, cwd=script.parent)
        findings = (tmp_path / "out" / "findings.json").read_text()
        assert "wrong_derivative" not in findings and "rule_not_checked" not in findings, done.stderr


class TestTheScriptIsUnchanged:
    """Re-running forward ops happens in a forked copy: the script's own state never moves."""

    TAPE_ENGINE = textwrap.dedent('''
        import itertools
        TAPE = []
        IDS = itertools.count()

        class Var:
            everything = []

            def __init__(self, val, parents=()):
                self.val, self.der, self.parents = val, 0.0, parents
                self.backprop = None
                self.number = next(IDS)
                Var.everything.append(self)
                TAPE.append(self)

            def __mul__(self, other):
                out = Var(self.val * other.val, (self, other))
                def backprop():
                    self.der += other.val * out.der
                    other.der += self.val * out.der
                out.backprop = backprop
                print("mul made", out.number)
                return out

        x, y = Var(2.0), Var(3.0)
        for step in range(3):
            z = x * y
            x.der = y.der = 0.0
            z.der = 1.0
            z.backprop()
        print(len(TAPE), len(Var.everything), next(IDS), x.der, y.der)
        ''')

    def test_plain_and_traced_output_are_identical(self, tmp_path):
        """A forward op that appends to a global tape and counts ids prints the same traced."""
        script = tmp_path / "tape.py"
        script.write_text(self.TAPE_ENGINE)
        plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
        findings, check, traced = run(tmp_path, self.TAPE_ENGINE)
        assert traced == plain.stdout
        assert check.forks >= 1 and check.checks


class TestCostIsBounded:
    """Each (op, rule line) is checked a bounded number of times, then left alone."""

    def test_checks_and_forks_stop_once_every_rule_has_agreed(self, tmp_path):
        """Thirty passes need no more forks than five, and no rule line exceeds the bound."""
        counts = []
        for passes in (5, 30):
            _, check, _ = run(tmp_path, engine() + training("(x * y + x).tanh() ** 2", passes))
            assert all(n <= MAX_TRIES for n in check.checks.values())
            assert all(n >= AGREEING_CHECKS for n in check.checks.values())
            counts.append(check.forks)
        assert counts[0] == counts[1] <= 3


class TestWhenOpsCannotBeRerun:
    """An op that cannot be made again is said once, never judged."""

    def test_a_random_op_is_noted_once_and_never_accused(self, tmp_path):
        """A dropout-like op gives a new value each call: one info note, no error."""
        source = engine() + textwrap.dedent('''
            import random
            def dropout(v):
                out = Value(v.data * random.random(), (v,), 'drop')
                def _backward():
                    v.grad += 123.0 * out.grad
                out._backward = _backward
                return out
            x = Value(1.0)
            for step in range(4):
                x.grad = 0.0
                dropout(x).backward()
            ''')
        findings = run(tmp_path, source)[0]
        assert wrong(findings) == []
        notes = [f for f in findings if f.finding == "rule_not_checked"]
        assert len(notes) == 1 and notes[0].severity == "info" and "dropout" in notes[0].message

    def test_other_threads_mean_no_fork_and_one_note(self, tmp_path):
        """With another thread running, nothing is forked and the reason is given once."""
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        try:
            findings, check, _ = run(tmp_path, engine(tanh_local="(1 - x**2)") + training("x.tanh()", 4))
        finally:
            stop.set()
            worker.join()
        assert check.forks == 0 and wrong(findings) == []
        notes = [f for f in findings if f.finding == "rule_not_checked"]
        assert len(notes) == 1 and "threads" in notes[0].message


class TestJudging:
    """The comparison rule: central difference, one-sided agreement, rounding allowance."""

    def test_the_step_scales_with_the_value(self):
        """h = 1e-6 * max(1, |v|)."""
        assert (step_for(3.0), step_for(-1e8), step_for(1e-9)) == (3e-06, 100.0, 1e-06)

    def test_a_kink_is_undecided(self):
        """relu at 0: left slope 0, right slope 1."""
        assert judge(0.0, 0.0, Slope(0.0, 1e-6, 0.0, 1e-6, 0.0, 2.0 ** -52)) is None

    def test_a_write_lost_in_rounding_is_undecided(self):
        """1e-60 added to a grad of 1 leaves it at 1: the rule's derivative cannot be read."""
        slope = Slope(0.5, 1e-6, 0.25, 0.25 + 1e-6, 0.25 - 1e-6, 2.0 ** -52)
        assert judge(0.0, 4 * 2.0 ** -52 * 2 / 1e-60, slope) is None

    def test_rounding_of_huge_outputs_is_allowed_for(self):
        """A sum near 1e8 nudged by 1e-6 moves by rounding steps: slope 1 still agrees."""
        f0 = 1e8 + 1.0
        slope = Slope(1.0, 1e-6, f0, f0 + 1e-6, f0 - 1e-6, 2.0 ** -52)
        assert judge(1.0, 0.0, slope) is True and judge(0.0, 0.0, slope) is False


class TestOperandsLostInRounding:
    """A check whose contribution vanished in rounding judges nothing: the rule is not left alone."""

    def test_a_rule_with_an_operand_never_judged_is_not_done(self):
        """Three agreeing checks of one operand, none of the other: checks go on."""
        rule = Rule()
        rule.tries, rule.agreed = 3, {"engine.py:33": 3}
        rule.judged, rule.unsure = {1}, {0}
        assert not rule.done
        rule.judged.add(0)
        assert rule.done

    def test_its_tries_still_run_out(self):
        """An operand that can never be judged costs at most MAX_TRIES checks."""
        rule = Rule()
        rule.tries, rule.agreed, rule.unsure = MAX_TRIES, {"engine.py:33": 3}, {0}
        assert rule.done


class TestEveryDesignIsChecked:
    """Stored local derivatives, integer tapes, gate objects and path sums are checked too."""

    @pytest.mark.parametrize("design", DESIGNS)
    def test_correct_rules_give_no_warning_and_are_checked(self, tmp_path, design):
        """The correct engine: no warning or error, no note, and its mul and tanh were checked."""
        template, mul, tanh, *_ = DESIGNS[design]
        findings, check, _ = run(tmp_path, template.format(mul=mul, tanh=tanh))
        assert [f.finding for f in findings if f.severity != "info" or f.finding == "rule_not_checked"] == []
        assert sum(check.checks.values()) >= 2, check.checks

    @pytest.mark.parametrize("design", DESIGNS)
    @pytest.mark.parametrize("broken", ["mul", "tanh"])
    def test_a_wrong_rule_is_named_at_the_line_that_computes_it(self, tmp_path, design, broken):
        """mul using self's value for self, or tanh using its input: one finding, at the rule's line."""
        template, mul, tanh, bad_mul, bad_tanh = DESIGNS[design]
        rules = {"mul": bad_mul, "tanh": tanh} if broken == "mul" else {"mul": mul, "tanh": bad_tanh}
        source = template.format(**rules)
        findings = wrong(run(tmp_path, source)[0])
        marker = "# mul: self" if broken == "mul" else "# tanh"
        assert [f.site.rsplit(":", 1)[1] for f in findings] == [str(line_with(source, marker))]

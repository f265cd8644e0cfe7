"""Numbers and names as the user's program has them: complex values, long names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from trace_lines import line_objects

COMPLEX_ENGINE = '''
class Node:
    def __init__(self, data, parents=()):
        self.data, self.grad, self._prev = data, 0, parents
        self._backward = lambda: None

    def __mul__(self, other):
        out = Node(self.data * other.data, (self, other))

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        order, seen = [], set()

        def visit(n):
            if id(n) not in seen:
                seen.add(id(n))
                for p in n._prev:
                    visit(p)
                order.append(n)
        visit(self)
        self.grad = 1
        for n in reversed(order):
            n._backward()


a = Node(1 + 2j)
b = Node(3 - 1j)
c = a * b
c.backward()
print(c.data, a.grad, b.grad)
'''

LONG_NAME = '''
from autodiff_trace import Value

x = Value(2.0, name="x" * 100_000)
y = x * x
y.backward()
print(x.grad)
'''


def traced(tmp_path: Path, source: str, *options: str) -> tuple:
    """(plain run, traced run, findings.json, trace lines) of a script."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    plain = subprocess.run([sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True)
    run = subprocess.run([sys.executable, "-m", "autodiff_trace", "--no-live", "--out", str(tmp_path / "out"),
                          *options, script.name], cwd=tmp_path, capture_output=True, text=True)
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())
    lines = line_objects(tmp_path / "out" / "trace.jsonl")
    return plain, run, findings, lines


class TestComplexValues:
    """An engine over complex numbers is traced as it is, not as NaN."""

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, tmp_path_factory):
        return traced(tmp_path_factory.mktemp("complex"), COMPLEX_ENGINE)

    def test_the_values_are_recorded_with_both_parts(self, run):
        """The trace holds a = 1+2j as {"re": 1, "im": 2}, not NaN."""
        *_, lines = run
        values = [line["value"] for line in lines if line.get("kind") == "node_created"]
        assert values[0] == {"re": 1.0, "im": 2.0}

    def test_no_finding_calls_a_complex_value_non_finite(self, run):
        """A correct complex engine gets no warning or error."""
        _, traced_run, findings, _ = run
        assert traced_run.returncode == 0, traced_run.stderr
        assert [f["finding"] for f in findings if f["severity"] != "info"] == []

    def test_the_report_prints_complex_numbers(self, run):
        """The terminal report writes a's grad as 3-1j."""
        plain, traced_run, _, _ = run
        assert traced_run.stdout.startswith(plain.stdout)
        assert "0 → 3-1j" in traced_run.stdout

    def test_check_grads_says_once_why_it_cannot_check(self, tmp_path):
        """Central differences along the real line do not apply: one info finding says so."""
        _, traced_run, findings, _ = traced(tmp_path, COMPLEX_ENGINE, "--check-grads")
        assert "failed" not in traced_run.stderr
        assert [(f["finding"], f["severity"]) for f in findings] == [("check_skipped", "info")]
        assert "complex value" in findings[0]["message"]


class TestLongNames:
    """A node name of any length prints in a bounded number of lines; the trace keeps it whole."""

    def test_a_100000_character_name_does_not_flood_the_terminal(self, tmp_path):
        """The report stays short, and the trace file holds the whole name."""
        _, run, _, lines = traced(tmp_path, LONG_NAME)
        assert run.returncode == 0, run.stderr
        assert len(run.stdout.splitlines()) < 60
        assert any(line.get("name") == "x" * 100_000 for line in lines)

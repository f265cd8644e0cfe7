"""A number reads the same in every output of one traced run: findings.txt, the terminal
report and the SVG diagram all write it with ``autodiff_trace.core.text.number``."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from autodiff_trace import Diagnoser, FindingsSink, Value, backward, diagram, mul, print_report, trace

SVG = "{http://www.w3.org/2000/svg}"
# each as the learner reads it: whole numbers without ".0", else 6 significant digits
WRITTEN = {2.0: "2", 1 / 3: "0.333333", 123456789.0: "123456789", -2.5e-12: "-2.5e-12", -0.0: "0"}
STALE = [v for v in WRITTEN if v != 0]  # a zero grad left behind is not stale


def two_passes_without_zeroing(value: float, folder):
    """x * value backward twice: the second pass starts with x.grad = value (stale)."""
    with trace(analyzers=[Diagnoser()], sinks=[FindingsSink(folder)]) as t:
        x = Value(1.0, name="x")
        for _ in range(2):
            loss = mul(x, value)
            backward(loss)
    return t.events


def terminal(events) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_report(events, console, full=True)
    return console.file.getvalue()


def svg_texts(events) -> list:
    root = ET.fromstring(diagram(events, 2).pipe("svg"))
    return ["".join(e.itertext()) for e in root.iter(SVG + "text")]


class TestOneNumberStyle:
    @pytest.mark.render
    @pytest.mark.parametrize("value", list(WRITTEN), ids=list(WRITTEN.values()))
    def test_a_value_reads_the_same_in_the_terminal_and_the_svg(self, value, tmp_path):
        """The loss's value is written alike in the terminal tree and in its SVG cell."""
        events = two_passes_without_zeroing(value, tmp_path)
        written = WRITTEN[value]
        assert f"  mul  value {written}  grad" in terminal(events)
        assert f"data {written}" in svg_texts(events)

    @pytest.mark.render
    @pytest.mark.parametrize("value", STALE, ids=[WRITTEN[v] for v in STALE])
    def test_a_stale_grad_reads_the_same_in_findings_terminal_and_svg(self, value, tmp_path):
        """The grad pass 1 left on x is written alike in findings.txt, the ledger and the SVG."""
        events = two_passes_without_zeroing(value, tmp_path)
        written = WRITTEN[value]
        assert f"stale (held {written})" in terminal(events)
        assert f"stale {written} from pass 1" in svg_texts(events)
        findings = (tmp_path / "findings.txt").read_text()
        assert f"x.grad was {written} when backward pass 2 began" in findings

    def test_a_zero_left_behind_is_no_finding(self, tmp_path):
        """-0.0 left on x is zero: no stale finding, and no value or grad printed as "-0"."""
        events = two_passes_without_zeroing(-0.0, tmp_path)
        assert "stale_gradient" not in (tmp_path / "findings.txt").read_text()
        assert re.search(r"(value|grad|→|held) -0\b", terminal(events)) is None

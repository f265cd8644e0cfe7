"""Helpers shared by the diagnostics specifications: run code under a Diagnoser, read findings."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path

from autodiff_trace import trace
from autodiff_trace.analysis.diagnoser import Diagnoser


def brief(findings) -> list:
    """(kind, severity, node names, message) of each finding, for exact comparison."""
    return [(f.finding, f.severity, f.names, f.message) for f in findings]


def traced_script(path: Path, *args: str, **options) -> list:
    """Run a script under the engine adapters and a Diagnoser, as trace-backward does;
    return its findings."""
    from autodiff_trace.adapters import instrument

    saved_argv, sys.argv = sys.argv, [str(path), *args]  # the script's argv, not pytest's
    try:
        with trace(analyzers=[Diagnoser(**options)]) as t, instrument():
            with contextlib.redirect_stdout(io.StringIO()):
                runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved_argv
    return [e for e in t.events if e.kind == "diagnostic"]


def line_of(path: Path, code: str) -> int:
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if text.split("#")[0].strip() == code]
    assert len(lines) == 1, code
    return lines[0]


def run(script, **options):
    """Run ``script`` (a function using our engine) under a Diagnoser; return the tracer."""
    with trace(analyzers=[Diagnoser(**options)]) as t:
        script()
    return t


def diagnostics(t) -> list:
    return [e for e in t.events if e.kind == "diagnostic"]

"""Helpers shared by the adapter specifications: run a script under trace() and instrument()."""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

from autodiff_trace import trace
from autodiff_trace.adapters import instrument

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_traced(script: Path, **options):
    """Run a script as __main__ under trace() and instrument(); the events and what was hooked."""
    with trace() as t, instrument(**options) as found:
        runpy.run_path(str(script), run_name="__main__")
    return t.events, found


def run_source(tmp_path: Path, source: str, **options):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return run_traced(script, **options)


def of_kind(events, kind):
    return [e for e in events if e.kind == kind]


def class_dict(cls) -> dict:
    return dict(vars(cls))

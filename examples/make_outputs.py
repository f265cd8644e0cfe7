"""Regenerate outputs/ from the examples: run from the repository root,

    python examples/make_outputs.py

Each script is traced by ``trace-backward`` into ``outputs/<name>/`` (trace, one SVG
per pass, findings, and the terminal report as text and SVG); the decorator demo
and the worked example write their own files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (script, folder under outputs/, extra trace-backward options)
TRACED = [
    ("examples/notebook_bug.py", "notebook_bug", []),
    ("examples/notebook_bug.ipynb", "notebook_bug_ipynb", []),
    ("examples/worked_example.py", "worked_example", []),
    ("examples/overwrite_bug.py", "overwrite_bug", []),
    ("examples/forgot_zero_grad.py", "forgot_zero_grad", []),
    ("examples/nan_origin.py", "nan_origin", []),
    ("examples/micrograd_mlp.py", "micrograd_mlp", ["--pass", "2"]),
]
RUN_PLAIN = ["examples/decorator_demo.py"]


def trace_backward_command() -> list:
    """The trace-backward of this interpreter's environment."""
    exe = Path(sys.executable).parent / "trace-backward"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "autodiff_trace.cli"]


def regenerate(root: Path = ROOT, out_root: Path = Path("outputs")) -> None:
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    for script, folder, options in TRACED:
        out = out_root / folder
        command = [*trace_backward_command(), "--out", str(out), "--no-live", *options, script]
        print("$", " ".join(command[-len(options) - 4:]), flush=True)
        subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    for script in RUN_PLAIN:
        print("$ python", script, flush=True)
        subprocess.run([sys.executable, script], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    regenerate()

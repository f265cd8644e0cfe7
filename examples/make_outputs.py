"""Regenerate what the examples produce: run from the repository root,

    python examples/make_outputs.py            # outputs/ and tests/golden/
    python examples/make_outputs.py --golden   # tests/golden/ only
    python examples/make_outputs.py --out DIR  # another folder

Each script is traced by ``trace-backward`` into ``<folder>/<name>/`` (trace, one SVG
per pass, findings, and the terminal report as text and SVG); the decorator demo
writes its own files, and the notebook demo's trace is replayed into an HTML player.
``outputs/`` is the showcase the README links to; ``tests/golden/`` holds the same
files as the fixtures tests/test_examples.py compares a fresh run with, out of reach
of ``trace-backward``'s default output folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOWCASE, GOLDEN = Path("outputs"), Path("tests/golden")

# (script, folder under outputs/, extra trace-backward options)
TRACED = [
    ("examples/notebook_bug.py", "notebook_bug", []),
    ("examples/notebook_bug.ipynb", "notebook_bug_ipynb", []),
    ("examples/worked_example.py", "worked_example", []),
    ("examples/overwrite_bug.py", "overwrite_bug", []),
    ("examples/wrong_order.py", "wrong_order", []),
    ("examples/forgot_zero_grad.py", "forgot_zero_grad", []),
    ("examples/nan_origin.py", "nan_origin", []),
    ("examples/micrograd_mlp.py", "micrograd_mlp", ["--pass", "2"]),
]
# scripts that write their own files, given the folder to write to
RUN_PLAIN = [("examples/decorator_demo.py", "decorator_demo")]
# autodiff-trace commands run on the traces above (replay: no user code runs)
REPLAYED = [
    ["html", "outputs/notebook_bug/trace.jsonl"],
]


def command(name: str, module: str) -> list:
    """A console script of this interpreter's environment, or its module."""
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def regenerate(root: Path = ROOT, out_root: Path = SHOWCASE) -> None:
    """Run every example into ``out_root`` (relative to ``root`` unless absolute)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    for script, folder, options in TRACED:
        out = out_root / folder
        args = ["--out", str(out), "--no-live", *options, script]
        print("$ trace-backward", " ".join(args), flush=True)
        subprocess.run([*command("trace-backward", "autodiff_trace"), *args],
                       cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    for script, folder in RUN_PLAIN:
        print("$ python", script, out_root / folder, flush=True)
        subprocess.run([sys.executable, script, str(out_root / folder)], cwd=root, env=env,
                       check=True, stdout=subprocess.DEVNULL)
    for args in REPLAYED:
        args = [a.replace("outputs", str(out_root), 1) if a.startswith("outputs") else a for a in args]
        print("$ autodiff-trace", " ".join(args), flush=True)
        subprocess.run([*command("autodiff-trace", "autodiff_trace.frontends.cli"), *args],
                       cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the examples' outputs.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--golden", action="store_true", help=f"write only the fixtures, {GOLDEN}/")
    where.add_argument("--out", type=Path, help="write only into this folder")
    args = parser.parse_args(argv)
    for out_root in [args.out] if args.out else [GOLDEN] if args.golden else [SHOWCASE, GOLDEN]:
        regenerate(out_root=out_root)


if __name__ == "__main__":
    main()

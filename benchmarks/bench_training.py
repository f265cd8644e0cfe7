"""A real training run traced end to end: micrograd's demo training (benchmarks/demo_training.py,
MLP(2, [16, 16, 1]) on 100 points) run plain and under ``trace-backward``, in turns.

Prints, from this one run: the wall-time ratio traced / plain (median and range over
the rounds), the bytes the traced run wrote, and whether the default keep policy
found the same findings as ``--keep all``:

    python benchmarks/bench_training.py [--steps 5] [--engine micrograd|ours] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "demo_training.py"


def timed(command: list) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def written(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def causes(folder: Path) -> list:
    return sorted((c["finding"], c["site"], tuple(c["passes"]))
                  for c in json.loads((folder / "findings.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--engine", choices=("micrograd", "ours"), default="micrograd")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--forget-zero-grad-at", type=int, default=3, metavar="STEP",
                        help="the step from which the script stops zeroing grads (a bug to find); 0: none")
    args = parser.parse_args()
    script_args = [str(SCRIPT), "--steps", str(args.steps), "--engine", args.engine,
                   "--forget-zero-grad-at", str(args.forget_zero_grad_at)]
    tool = [sys.executable, "-m", "autodiff_trace"]
    tmp = Path(tempfile.mkdtemp(prefix="bench_training_"))
    plain, traced = [], []
    for round_no in range(args.rounds):  # in turns, so a busy moment slows both alike
        plain.append(timed([sys.executable, *script_args]))
        out = tmp / f"default_{round_no}"
        traced.append(timed([*tool, "--out", str(out), "--no-live", *script_args]))
    everything = tmp / "all"
    timed([*tool, "--out", str(everything), "--no-live", "--keep", "all", *script_args])
    ratios = [t / p for t, p in zip(traced, plain)]
    print(f"demo training, {args.steps} steps, engine {args.engine}, {args.rounds} rounds")
    print(f"traced / plain wall time: median {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}x–{max(ratios):.2f}x)")
    print(f"written by the default run: {written(tmp / 'default_0') / 1e6:.1f} MB "
          f"(--keep all: {written(everything) / 1e6:.1f} MB)")
    same = causes(tmp / "default_0") == causes(everything)
    print(f"findings: {len(causes(everything))} causes with --keep all; the default run found "
          f"{'the same' if same else 'DIFFERENT ones'}")


if __name__ == "__main__":
    main()

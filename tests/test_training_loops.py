"""A training loop that stops zeroing its gradients is named once, with every pass that adds
to the stale gradients: the same on every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("micrograd", reason="micrograd 0.1.0 is a test dependency: pip install '.[test]'")

DEMO = Path(__file__).resolve().parent.parent / "benchmarks" / "demo_training.py"
TRACE_BACKWARD = str(Path(sys.executable).with_name("trace-backward"))


def small_demo(folder: Path) -> Path:
    """micrograd's demo training with a smaller network and fewer points (a few seconds traced)."""
    text = DEMO.read_text()
    smaller = text.replace("MLP(value_cls, 2, [16, 16, 1])", "MLP(value_cls, 2, [8, 8, 1])") \
        .replace("xs, ys = moons()", "xs, ys = moons(30)")
    assert smaller.count("[8, 8, 1]") == 1 and smaller.count("moons(30)") == 1, "the demo changed shape"
    script = folder / "demo.py"
    script.write_text(smaller)
    return script


class TestAForgottenZeroGrad:
    def test_every_pass_after_it_is_named_on_every_run(self, tmp_path):
        """micrograd's demo that stops calling zero_grad() from step 3 of 5 gets one
        stale_gradient naming passes 3, 4 and 5, in two runs alike."""
        script = small_demo(tmp_path)
        seen = []
        for run in range(2):
            out = tmp_path / f"out{run}"
            done = subprocess.run([TRACE_BACKWARD, "--out", str(out), "--quiet", "--no-live", str(script),
                                   "--steps", "5", "--forget-zero-grad-at", "3", "--engine", "micrograd"],
                                  capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            seen.append([(f["finding"], f["passes"]) for f in json.loads((out / "findings.json").read_text())])
        assert seen == [[("stale_gradient", [3, 4, 5])]] * 2

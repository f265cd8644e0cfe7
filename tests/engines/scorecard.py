"""How the tool does on the whole engine corpus: run every design plain and traced.

    python tests/engines/scorecard.py [--jobs 2] [--check-grads] [DESIGN ...]

For each correct driver: is the output unchanged, are all backward passes found, are
there no warning or error findings. For each injected bug: is a finding of the right
kind named at the right line. Prints one line per run and the totals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import Bug, Design, designs, materialise  # noqa: E402

TOOL = [sys.executable, "-m", "autodiff_trace"]


def run(script: Path, out: Path, options: tuple) -> tuple:
    """(plain stdout, traced stdout, exit codes, passes, findings) of one script."""
    plain = subprocess.run([sys.executable, script.name], cwd=script.parent, capture_output=True,
                           text=True, timeout=120)
    traced = subprocess.run([*TOOL, "--quiet", "--no-live", "--out", str(out), *options, script.name],
                            cwd=script.parent, capture_output=True, text=True, timeout=300)
    passes, findings = 0, []
    trace_file = out / "trace.jsonl"
    if trace_file.exists():
        for line in trace_file.read_text().splitlines()[1:]:  # a pass's start or summary is an object line
            passes += line.startswith(('{"kind":"backward_started"', '{"kind":"pass_summary"'))
    if (out / "findings.json").exists():
        findings = json.loads((out / "findings.json").read_text())
    return plain, traced, passes, findings


def sites_of(finding) -> set:
    """Every "file:line" string anywhere in a finding (grouped findings nest occurrences)."""
    found, stack = set(), [finding]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and ":" in item:
            found.add(item)
    return found


def names_line(sites: set, path: Path, line: int) -> bool:
    return any(s.endswith(f"{path.name}:{line}") or f"{path.name}:{line} " in s
               or f"{path.name}:{line}`" in s or f"{path.name}:{line}," in s or f"{path.name}:{line})" in s
               for s in sites)


def score(design: Design, bug: Bug | None, options: tuple) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, expected = materialise(design, bug, Path(tmp))
        plain, traced, passes, findings = run(script, Path(tmp) / "out", options)
        same = plain.returncode == traced.returncode and (
            plain.stdout == traced.stdout or (bug is not None and not bug.deterministic))
        serious = [f for f in findings if f.get("severity") in ("warning", "error")]
        row = {"design": design.name, "bug": None if bug is None else bug.name, "same_output": same,
               "passes": passes, "traced_error": traced.stderr.strip().splitlines()[-1:] if not same else []}
        if bug is None:
            row["ok"] = same and passes == design.backward_passes and not serious
            row["false"] = sorted({f.get("finding") for f in serious})
        else:
            path, line = expected
            right = [f for f in findings if f.get("finding") == bug.kind and names_line(sites_of(f), path, line)]
            row["ok"] = same and bool(right)
            row["found"] = sorted({f.get("finding") for f in findings})
            row["expected"] = f"{bug.kind} at {path.name}:{line}"
        return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--check-grads", action="store_true")
    args = parser.parse_args()
    options = ("--check-grads",) if args.check_grads else ()
    chosen = [d for d in designs() if not args.names or d.name in args.names]
    runs = [(d, None) for d in chosen] + [(d, b) for d in chosen for b in d.bugs]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda r: score(*r, options), runs))
    for row in rows:
        mark = "ok  " if row["ok"] else "MISS"
        if row["bug"] is None:
            detail = f"passes {row['passes']}" + (f", false: {row['false']}" if row["false"] else "")
        else:
            detail = f"{row['expected']}; found {row['found']}"
        if not row["same_output"]:
            detail += f"; OUTPUT CHANGED {row['traced_error']}"
        print(f"{mark} {row['design']:22} {row['bug'] or 'correct driver':22} {detail}")
    correct = [r for r in rows if r["bug"] is None]
    bugs = [r for r in rows if r["bug"] is not None]
    print(f"\ncorrect drivers traced right, no false finding: {sum(r['ok'] for r in correct)}/{len(correct)}")
    print(f"injected bugs named with the right kind at the right line: {sum(r['ok'] for r in bugs)}/{len(bugs)}")
    print(f"runs whose output changed under the tool: {sum(not r['same_output'] for r in rows)}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

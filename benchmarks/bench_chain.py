"""A long chain through the command and every replay command: CPU time and peak memory.

Writes a script whose one backward pass runs over a chain of ``--ops`` multiplications
(a million by default: two million nodes, about five million events), runs it under
``trace-backward`` with the default options, then each replay command on the trace it
wrote. Each command runs in a process of its own, whose CPU time (user + system) and
peak resident memory are printed beside the plain script's:

    python benchmarks/bench_chain.py [--ops 1000000] [--keep DIR]

README.md's performance section quotes what it measured.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
from autodiff_trace import Value

x = Value(1.0, name="x")
y = x
for _ in range({ops}):
    y = y * 1.0000001
y.backward()
print(x.grad)
"""

# One command, run by a process of its own that reports its child's CPU seconds and peak RSS.
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(done.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
sys.stderr.write(done.stderr.decode(errors="replace")[-400:])
"""


def measured(command: list) -> tuple:
    """``(exit code, CPU seconds, peak MiB)`` of ``command`` run alone in its own process."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True)
    code, cpu, peak = done.stdout.split()
    if int(code) != 0:
        print(f"    ({command[0]} exited {code}: {done.stderr.strip()[-200:]})")
    return int(code), float(cpu), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep what is written")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_chain_"))
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "chain.py"
    script.write_text(SCRIPT.format(ops=args.ops))
    bin_dir = Path(sys.executable).parent
    trace_backward, replay = str(bin_dir / "trace-backward"), str(bin_dir / "autodiff-trace")
    out = folder / "out"
    trace = out / "trace.jsonl"
    rows = [("python chain.py (plain)", [sys.executable, str(script)]),
            ("trace-backward chain.py", [trace_backward, "--out", str(out), "--quiet", str(script)])]
    replays = [("stats", [replay, "stats", str(trace)]),
               ("render --to svg", [replay, "render", str(trace), "--to", "svg", "--out", str(folder / "svg")]),
               ("html", [replay, "html", str(trace), "--out", str(folder / "trace.html")]),
               ("diff (the trace against itself)", [replay, "diff", str(trace), str(trace)]),
               ("export --chrome", [replay, "export", str(trace), "--chrome", str(folder / "chrome.json")])]
    print(f"a chain of {args.ops:,} multiplications, {sys.version.split()[0]}")
    print(f"  {'command':<34} {'CPU s':>8} {'peak MiB':>10}")
    for label, command in rows:
        _, cpu, peak = measured(command)
        print(f"  {label:<34} {cpu:>8.1f} {peak:>10.0f}")
        if label.startswith("trace-backward") and trace.exists():
            size = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 2**20
            events = sum(1 for _ in open(trace, "rb")) - 1
            print(f"  {'':<34} wrote {size:,.0f} MiB, {events:,} events in trace.jsonl")
    for label, command in replays:
        _, cpu, peak = measured(command)
        print(f"  {label:<34} {cpu:>8.1f} {peak:>10.0f}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The seed's worked example: y = (x + 2)^2 at x = 2, so y = 16 and dy/dx = 2(x + 2) = 8.

    python examples/worked_example.py          # writes outputs/worked_example/events.jsonl
    trace-backward examples/worked_example.py  # the same, with the report and SVG
"""

from pathlib import Path

from autodiff_trace import JsonlSink, Value, trace

out = Path("outputs") / "worked_example"
with trace([JsonlSink(out / "events.jsonl")]) as t:
    x = Value(2.0)
    u = x + 2
    y = u ** 2
    y.backward()

print(f"y.val = {y.data:g}")
print(f"x.der = {x.grad:g}")
print(f"{len(t.events)} events written to {out / 'events.jsonl'}")

"""The seed's worked example: y = (x + 2)^2 at x = 2, so y = 16 and dy/dx = 2(x + 2) = 8.

    python examples/worked_example.py          # the numbers, and the events of the pass
    trace-backward examples/worked_example.py  # the report, the diagram and trace.jsonl
"""

from autodiff_trace import Value, trace

with trace() as t:
    x = Value(2.0)
    u = x + 2
    y = u ** 2
    y.backward()

print(f"y.val = {y.data:g}")
print(f"x.der = {x.grad:g}")
for event in t.events:
    if event.kind == "grad_accumulated":
        source = "seed" if event.fired_by is None else f"node {event.fired_by}"
        print(f"  {source:>7} adds {event.contribution:g} to node {event.target}: "
              f"{event.grad_before:g} -> {event.grad_after:g}")

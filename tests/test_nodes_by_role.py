"""Nodes recognised by the part each name plays, when no name is one the tool knows."""

from __future__ import annotations

from adapting import of_kind, run_source
from autodiff_trace.adapters.detect import _paired_slots
from diagnosing import traced_script

# x and dx on the node; parents and local derivatives in a module-level table keyed by id.
TABLED = '''
import math

EDGES = {}


class Num:
    def __init__(self, x, edges=()):
        self.x = x
        self.dx = 0.0
        EDGES[id(self)] = list(edges)

    def __mul__(self, other):
        return Num(self.x * other.x, [(self, other.x), (other, self.x)])  # mul

    def tanh(self):
        t = math.tanh(self.x)
        return Num(t, [(self, 1 - t ** 2)])

    def backprop(self):
        order, done = [], set()

        def visit(num):
            if id(num) not in done:
                done.add(id(num))
                for parent, _ in EDGES[id(num)]:
                    visit(parent)
                order.append(num)
        visit(self)
        self.dx = 1.0
        for num in reversed(order):
            for parent, local in EDGES[id(num)]:
                parent.dx += local * num.dx


w, c = Num(0.4), Num(-1.5)
for step in range(2):
    w.dx = c.dx = 0.0
    loss = (w * c).tanh() * w * c
    loss.backprop()
    w.x -= 0.1 * w.dx
print("grads", [round(w.dx, 6), round(c.dx, 6)])
'''


def _serious(findings) -> list:
    return [(f.finding, f.site) for f in findings if f.severity in ("warning", "error")]


class TestPairedNames:
    """A value and its gradient named as a pair (``x``/``dx``) are the node's two slots."""

    def test_one_pair_names_the_value_and_the_gradient(self):
        assert _paired_slots({"x", "dx", "label"}) == ("x", "dx")
        assert _paired_slots({"out", "out_grad"}) == ("out", "out_grad")

    def test_two_pairs_are_not_guessed_between(self):
        """``x``/``dx`` and ``y``/``dy`` on one object: which is the node's value is not said."""
        assert _paired_slots({"x", "dx", "y", "dy"}) is None


class TestParentsInATableKeyedById:
    """``EDGES[id(self)] = [(parent, local), ...]``: the parents are read from the table."""

    def test_each_pass_is_traced_with_its_graph(self, tmp_path, capsys):
        events, found = run_source(tmp_path, TABLED)
        assert [(r.vocabulary.value, r.vocabulary.grad) for r in found.classes if r.cls.__name__ == "Num"] == [("x", "dx")]
        starts = of_kind(events, "backward_started")
        assert len(starts) == 2 and all(len(s.order) == 6 for s in starts)
        assert capsys.readouterr().out.startswith("grads")

    def test_a_correct_engine_gets_no_warning(self, tmp_path):
        path = tmp_path / "engine.py"
        path.write_text(TABLED)
        assert _serious(traced_script(path)) == []

    def test_a_wrong_stored_derivative_is_named_where_it_is_stored(self, tmp_path):
        """mul storing self's value for self: wrong_derivative at the line that stores it."""
        path = tmp_path / "engine.py"
        path.write_text(TABLED.replace("[(self, other.x), (other, self.x)]", "[(self, self.x), (other, self.x)]"))
        line = next(n for n, text in enumerate(TABLED.splitlines(), 1) if "# mul" in text)
        assert ("wrong_derivative", f"engine.py:{line}") in [
            (kind, site.rpartition("/")[2]) for kind, site in _serious(traced_script(path))]

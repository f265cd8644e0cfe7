"""Names folded a captured run at a time: a run whose names cannot be ``op#id`` (a chain's
assigned ``y`` and its constants) holds and counts the same names as one-by-one folding,
and so does a run mixing default names with names that look like them."""

from __future__ import annotations

from test_fold_shortcuts import contents, diagnosed

from autodiff_trace import Value
from autodiff_trace.core.model import TraceModel
from autodiff_trace.core.runs import _none_named_by_id
from autodiff_trace.core.text import number
from autodiff_trace.core.tracefile import load_events


def chain() -> None:
    """``y = y * c`` in a loop: every node named ``y`` or by its constant's value, none ``op#id``."""
    x = Value(1.0, name="x")
    y = x
    for _ in range(3000):
        y = y * 1.0000001
    y.backward()


def look_alikes() -> None:
    """Names with a ``#`` of the user's own, one of them another node's default, among unnamed nodes."""
    a, b = Value(2.0, name="w#1"), Value(3.0, name="mul#4")
    total = Value(0.0)
    for i in range(1500):
        total = total + a * b * (i % 3)
    (total * 0.5 + a * b).backward()


def constants_alternating() -> None:
    """Two float objects of one value and one of another, in turns: each constant named by its value."""
    halves, third = [0.5, float("0.5")], 1 / 3
    y = Value(1.0, name="x")
    for i in range(1200):
        y = y * (third if i % 3 == 2 else halves[i % 2])
    y.backward()


class TestNamesFoldedByRuns:
    def test_names_that_cannot_be_defaults_are_held_and_counted_alike(self, tmp_path):
        """A chain's names: the same nodes, names and name counts as folding one by one."""
        for name, program in (("chain", chain), ("look_alikes", look_alikes), ("constants", constants_alternating)):
            path = tmp_path / f"{name}.jsonl"
            model, findings = diagnosed(path, program)
            again = TraceModel.from_events(e for e in load_events(path) if e.kind != "diagnostic")
            assert model.events > 3000
            assert contents(model) == contents(again)
            assert findings == []  # correct programs: silent

    def test_a_chain_counts_its_names(self, tmp_path):
        """Every ``y`` counted, and every constant by its value."""
        model, _ = diagnosed(tmp_path / "chain.jsonl", chain)
        assert model.uses("y") == 3000 and model.uses("1") == 3000 and model.uses("x") == 1

    def test_constants_are_named_by_their_value_whichever_object_holds_it(self, tmp_path):
        """A loop's constants named 0.5 or 0.333…, as each node's value when made."""
        model, _ = diagnosed(tmp_path / "constants.jsonl", constants_alternating)
        consts = [model.nodes[n] for n in model.nodes if model.nodes[n].op == "const"]
        assert len(consts) == 1200
        assert [info.name for info in consts] == [number(info.value) for info in consts]
        assert {info.name for info in consts} == {number(0.5), number(1 / 3)}

class TestNoneNamedById:
    def test_only_strings_without_a_hash_cannot_be_defaults(self):
        """Strings with no ``#``: True; a ``#`` anywhere or a name of another type: False."""
        assert _none_named_by_id(["y", "1", "w[0]"])
        assert _none_named_by_id([])
        assert not _none_named_by_id(["y", "mul#3"])
        assert not _none_named_by_id(["y", "a#b"])
        assert not _none_named_by_id(["y", 2])
        assert not _none_named_by_id(["y", None])

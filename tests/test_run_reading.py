"""A captured batch read a run at a time: the model and the findings are those of its events read one by one."""

from __future__ import annotations

import contextlib
import io
import math
import runpy
import sys

import pytest

from autodiff_trace import Value, trace
from autodiff_trace.adapters import instrument
from autodiff_trace.analysis.diagnoser import Diagnoser
from autodiff_trace.core.captured import events_of
from autodiff_trace.core.model import TraceModel
from autodiff_trace.core.runs import ReadsRuns, Run, fold_run
from autodiff_trace.core.tracefile import load_events
from autodiff_trace.sinks.jsonl import JsonlSink
from test_captured_analysis import comparable, one_at_a_time
from test_engine_traversals import CONSUMER_ENGINE, HELPER_ENGINE, ORDER_ENGINE, RECURSIVE_ENGINE, TAPE_ENGINE


class Recorder:
    """A sink that takes batches and keeps, in order, each event and a copy of each batch."""

    def __init__(self) -> None:
        self.items = []

    def handle(self, event) -> None:
        self.items.append(event)

    def handle_batch(self, first_seq, t, batch) -> None:
        self.items.append((first_seq, t, list(batch)))

    def close(self) -> None:
        pass


def training_with_odd_numbers() -> None:
    """Passes over a small model, with a NaN, an infinity and an int along the way."""
    w, b = Value(0.5, name="w"), Value(-0.25, name="b")
    for step in range(3):
        w.grad = b.grad = 0.0
        total = Value(0.0)
        for x in (1.0, 2.0, -3.0, float("nan") if step == 1 else 4.0):
            total = total + ((w * x + b).tanh() - 0.5) ** 2
        total.backward()
        w.data -= 0.1 * w.grad
    big = Value(1e308, name="big") * 10
    big.backward()


def recorded(program) -> list:
    sink = Recorder()
    with trace([sink], record=False):
        program()
    return sink.items


def folded(items, *, cuts=()) -> TraceModel:
    """The model of the recorded items; batches folded a run at a time (cut at ``cuts``),
    or one event at a time when ``cuts`` is None."""
    model = TraceModel()
    for item in items:
        if item.__class__ is not tuple:  # an event stamped alone
            model.handle(item)
        elif cuts is None:
            for event in events_of(*item):
                model.handle(event)
        else:
            first_seq, t, batch = item
            bounds = sorted({0, len(batch), *(c for c in cuts if c < len(batch))})
            for start, stop in zip(bounds, bounds[1:]):
                fold_run(model, Run(batch, start, stop, first_seq + start, t))
    return model


def state(model: TraceModel) -> list:
    """Everything the model holds, as text (so NaN equals NaN)."""
    nodes = [repr((n.id, n.name, n.op, n.value, n.parents, n.site, n.function, n.grad))
             for n in map(model.node, model.nodes)]
    passes = [repr((p.pass_no, list(p.fired), list(p.upstream.items()), list(p.writes),
                    list(p.writes_to.items()), p.fire_number)) for p in model.passes]
    return [nodes, passes, repr(sorted(model.name_uses.items())), model.events]


class TestRunsFoldAsEventsDo:
    def test_whole_batches_fold_into_the_model_their_events_make(self):
        """A forward and its passes, folded a batch at a time, hold what the events one by one give."""
        items = recorded(training_with_odd_numbers)
        assert any(item.__class__ is tuple for item in items)
        assert state(folded(items)) == state(folded(items, cuts=None))

    def test_runs_cut_anywhere_fold_into_the_same_model(self):
        """Cutting each batch into runs (as a finding cuts it) changes nothing the model holds."""
        items = recorded(training_with_odd_numbers)
        assert state(folded(items, cuts=(1, 2, 7, 30, 31))) == state(folded(items, cuts=None))

    def test_a_nan_gradient_and_an_infinite_value_read_back_as_they_were(self):
        """Runs holding a NaN grad or an infinite value are folded event by event, kept whole."""
        model = folded(recorded(training_with_odd_numbers))
        assert any(math.isnan(w.grad_after) for p in model.passes for w in p.writes)
        assert any(math.isinf(model.node(n).value) for n in model.nodes)


def run_script(path, *, filters=()) -> list:
    """The events of the script run under the adapters, a Diagnoser and a trace file."""
    out = path.with_suffix(".jsonl")
    saved_argv, sys.argv = sys.argv, [str(path)]
    try:
        with trace([JsonlSink(out)], analyzers=[Diagnoser()], filters=filters, record=False) as t, instrument():
            assert (t._captured is not None) == (not filters)
            with contextlib.redirect_stdout(io.StringIO()):
                runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved_argv
    return load_events(out)


BUGGY_ENGINES = {
    "fired_too_early": (ORDER_ENGINE, "for node in reversed(order):", "for node in order:"),
    "fired_too_early from consumer lists": (CONSUMER_ENGINE, "for v in reversed(Variable.all_vars):",
                                            "for v in Variable.all_vars:"),
    "fired_twice": (RECURSIVE_ENGINE, "inp.backprop(bp * d)", "inp.backprop(self.g * d)"),
    "fired_outside_graph": (TAPE_ENGINE, "    del tape[2:]", "    pass"),
    "fired_outside_graph of a helper's list": (HELPER_ENGINE, "return _walk(self, set(), [])",
                                               "return _walk(self, set(), _visited)"),
}


class TestBatchedFindingsMatchOneByOne:
    @pytest.mark.parametrize("case", list(BUGGY_ENGINES))
    def test_a_users_engine_gets_the_findings_and_lines_of_events_read_one_by_one(self, tmp_path, case):
        """The traversal's line, read from the call stack as each event is captured, is the
        line read while the event goes out alone; so is every other event of the file."""
        source, find, replace = BUGGY_ENGINES[case]
        assert find in source
        path = tmp_path / "engine.py"
        path.write_text(source.replace(find, replace, 1))
        batched = run_script(path)
        single = run_script(path, filters=[one_at_a_time])
        found = [e for e in batched if e.kind == "diagnostic" and e.severity != "info"]
        assert case.split()[0] in {e.finding for e in found}
        assert comparable(batched) == comparable(single)

    def test_the_diagnoser_reads_runs(self):
        """The Diagnoser takes captured batches a run at a time."""
        assert isinstance(Diagnoser(), ReadsRuns)


class BreaksOnRuns(Diagnoser):
    """A Diagnoser whose reading of a run fails."""

    def read_run(self, run):
        raise RuntimeError("broken")


class TestRunReadingFaults:
    def test_an_analyzer_failing_on_a_run_is_detached_once_and_the_file_is_whole(self, tmp_path, capsys):
        """The failure is reported once; every event still reaches the trace file in order."""
        out = tmp_path / "trace.jsonl"
        with trace([JsonlSink(out)], analyzers=[BreaksOnRuns()], record=False):
            training_with_odd_numbers()
        assert capsys.readouterr().err.count("detached") == 1
        events = load_events(out)
        assert [e.seq for e in events] == list(range(len(events))) and len(events) > 100

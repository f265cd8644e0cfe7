"""Analyzers read captured events one by one while the sinks take them a batch at a time."""

from __future__ import annotations

import contextlib
import io
import math
import re
import runpy
from pathlib import Path

from rich.console import Console

from autodiff_trace import Value, trace
from autodiff_trace.analysis.causes import Causes
from autodiff_trace.analysis.diagnoser import Diagnoser
from autodiff_trace.core.captured import FIRED, NODE
from autodiff_trace.core.tracefile import load_events
from autodiff_trace.engine import value as engine_value
from autodiff_trace.sinks.dot import DotSink
from autodiff_trace.sinks.findings import FindingsSink
from autodiff_trace.sinks.jsonl import JsonlSink
from autodiff_trace.sinks.progress import ProgressSink
from autodiff_trace.sinks.rich_tree import RichTreeSink

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def one_at_a_time(event):
    """A filter that keeps every event: with it, nothing is captured and each event goes alone."""
    return event


def two_steps_without_zeroing() -> None:
    """Two backward passes over one leaf, the grads never zeroed: a stale gradient."""
    w = Value(0.5, name="w")
    for x in (1.0, 2.0):
        loss = (w * x).tanh()
        loss.backward()


def a_nan_then_a_pass() -> None:
    """A value that becomes NaN while the graph is built, then a pass through it."""
    x = Value(float("inf"), name="x")
    y = x - x
    z = y * 2
    z.backward()


class Seen:
    """An analyzer that keeps every event it is given and finds nothing."""

    def __init__(self) -> None:
        self.events = []

    def handle(self, event):
        self.events.append(event)

    def close(self):
        return []


def traced(path, program, *, filters=(), analyzers=()) -> list:
    """The events written to ``path`` by tracing ``program``."""
    with trace([JsonlSink(path)], filters=filters, analyzers=analyzers, record=False) as t:
        program()
    assert t._captured is None
    return load_events(path)


def without_time(events) -> list:
    return [e._replace(t=0.0, **({"duration": 0.0} if "duration" in e._fields else {})) for e in events]


_IDS = ("node", "root", "target", "fired_by")
_ID_LISTS = ("parents", "order", "nodes")


def comparable(events) -> list:
    """The events without their times, node ids counted from 1 in order of creation (in
    the id fields and in names such as ``mul#7``), so two runs of one program compare."""
    ids = {e.node: i for i, e in enumerate((e for e in events if e.kind == "node_created"), 1)}
    renamed = lambda text: re.sub(r"#(\d+)", lambda m: f"#{ids.get(int(m[1]), m[1])}", text)
    out = []
    for e in without_time(events):
        fields = {f: ids.get(getattr(e, f), getattr(e, f)) for f in _IDS if f in e._fields}
        fields.update({f: tuple(ids.get(n, n) for n in getattr(e, f)) for f in _ID_LISTS if f in e._fields})
        fields.update({f: renamed(getattr(e, f)) for f in ("name", "message", "hint") if f in e._fields})
        if "names" in e._fields:
            fields["names"] = tuple(renamed(n) for n in e.names)
        out.append(e._replace(**fields))
    return out


class TestCapturedAnalysis:
    def test_a_tracer_with_analyzers_and_batch_sinks_captures(self):
        """A Diagnoser no longer turns capturing off: the sinks still get batches."""
        with trace([JsonlSink(io.StringIO())], analyzers=[Diagnoser()]) as t:
            Value(1.0) * 2
            assert t._captured and t._captured[0][0] == NODE

    def test_the_file_holds_what_events_sent_one_by_one_write(self, tmp_path):
        """Every field but the time, findings included, matches a trace sent one event at a time."""
        for program in (two_steps_without_zeroing, a_nan_then_a_pass):
            batched = traced(tmp_path / "batched.jsonl", program, analyzers=[Diagnoser()])
            single = traced(tmp_path / "single.jsonl", program, analyzers=[Diagnoser()],
                            filters=[one_at_a_time])
            assert comparable(batched) == comparable(single)
            assert any(e.kind == "diagnostic" for e in batched)

    def test_a_finding_follows_the_captured_event_that_caused_it(self, tmp_path):
        """The finding about a non-finite value is the line right after the node that holds it."""
        events = traced(tmp_path / "trace.jsonl", a_nan_then_a_pass, analyzers=[Diagnoser()])
        at = next(i for i, e in enumerate(events) if e.kind == "diagnostic")
        assert events[at - 1].kind == "node_created" and not math.isfinite(events[at - 1].value)
        assert events[at].nodes == (events[at - 1].node,)
        assert [e.seq for e in events] == list(range(len(events)))

    def test_an_analyzer_sees_each_event_numbered_as_the_file_numbers_it(self, tmp_path):
        """The analyzer is handed every event as it happens, with the ``seq`` its batch gives it."""
        seen = Seen()
        events = traced(tmp_path / "trace.jsonl", two_steps_without_zeroing, analyzers=[seen])
        assert [(e.kind, e.seq) for e in seen.events] == [(e.kind, e.seq) for e in events]
        assert without_time(seen.events) == without_time(events)

    def test_a_failing_analyzer_is_detached_once_and_the_file_is_whole(self, tmp_path, capsys):
        """An analyzer that raises on a captured event is reported once; every event is still written."""
        class Breaks(Seen):
            def handle(self, event):
                raise RuntimeError("broken")

        events = traced(tmp_path / "trace.jsonl", two_steps_without_zeroing, analyzers=[Breaks()])
        assert capsys.readouterr().err.count("detached") == 1
        assert [e.seq for e in events] == list(range(len(events))) and len(events) > 10


class TestNewCauses:
    def test_new_reports_a_cause_once_and_then_nothing(self):
        """A cause is reported by the first new() after it is seen; later calls return nothing."""
        causes = Causes(str, limit=10)
        assert causes.new() == []
        causes.add("demo", "info", "a.py:1", 1, (3,), None, lambda cause: ("seen", "fix it"))
        assert [f.message for f in causes.new()] == ["seen"]
        causes.add("demo", "info", "a.py:1", 2, (4,), None, lambda cause: ("again", "fix it"))
        assert causes.new() == []
        assert [f.nodes for f in causes.updates()] == [(4,)]


class TestBatchesForTheCommandsSinks:
    def test_progress_counts_a_batch_and_redraws_when_it_crosses_every(self):
        """A batch adds its length to the count; the line is drawn once the count passes ``every``."""
        console = Console(file=io.StringIO(), force_terminal=True, width=60, color_system=None)
        sink = ProgressSink(console, every=4, after=0)
        sink.handle_batch(0, 0.0, [(FIRED, 1, 3, 1.0, 1.0)] * 3)
        assert sink.events == 3 and console.file.getvalue() == ""
        sink.handle_batch(3, 0.0, [(FIRED, 1, 3, 1.0, 1.0)] * 2)
        sink.close()
        assert "tracing: 5 events, 0 backward passes" in console.file.getvalue()

    def test_findings_keeps_nothing_from_a_batch(self, tmp_path):
        """Captured batches hold no findings, so the findings sink keeps none of their events."""
        sink = FindingsSink(tmp_path)
        sink.handle_batch(0, 0.0, [(FIRED, 1, 3, 1.0, 1.0)])
        assert sink.findings == []

    def test_a_tree_that_is_not_live_takes_batches_and_prints_the_same_report(self):
        """A report printed once at the end lets the tracer capture; its text is the one-by-one text."""
        def report(filters) -> str:
            console = Console(file=io.StringIO(), width=80, color_system=None)
            sink = RichTreeSink(console, live=False, full=True)
            with trace([sink], filters=filters, analyzers=[Diagnoser()], record=False) as t:
                assert (t._captured is not None) == (not filters)
                two_steps_without_zeroing()
            return re.sub(r"#\d+|\d+\.\d+ ?m?s", "N", console.file.getvalue())  # ids and times differ

        assert report(()) == report((one_at_a_time,))
        assert "stale_gradient" in report(())

    def test_a_live_tree_takes_each_event_as_it_comes(self):
        """A live view redraws at each step, so the tracer does not capture for it."""
        console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
        sink = RichTreeSink(console, live=True)
        with trace([sink], record=False) as t:
            assert t._captured is None
            two_steps_without_zeroing()

    def test_a_diagram_redrawn_for_a_finding_is_the_same_batched_or_not(self, tmp_path, monkeypatch):
        """A pass drawn again for a finding shows it as of the finding: nodes made later under
        the same names (the example's second training run makes w0...w16 again) do not
        relabel it, captured or not."""
        def pictures(filters, out) -> dict:
            monkeypatch.setattr(engine_value, "_numbering", engine_value.ids_from(1))
            with trace([DotSink(out)], filters=filters, analyzers=[Diagnoser()], record=False):
                with contextlib.redirect_stdout(io.StringIO()):
                    runpy.run_path(str(EXAMPLES / "forgot_zero_grad.py"), run_name="__main__")
            return {path.name: path.read_text() for path in sorted(out.glob("*.dot"))}

        batched = pictures((), tmp_path / "batched")
        assert batched == pictures((one_at_a_time,), tmp_path / "single")
        assert "w0 #" not in batched["pass_3.dot"]

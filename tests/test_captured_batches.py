"""Hot events captured as tuples and written a batch at a time read back as if sent one by one."""

from __future__ import annotations

import math
import threading
from fractions import Fraction

import pytest

from autodiff_trace import Value, trace
from autodiff_trace.core import tracer as tracer_module
from autodiff_trace.core.captured import FIRED, NODE, WRITE, CapturedBatch, events_of, lines_of
from autodiff_trace.engine import value as value_module
from autodiff_trace.core.tracefile import encode_line, header_line, load_events
from autodiff_trace.sinks.jsonl import JsonlSink


def one_at_a_time(event):
    """A filter that keeps every event: with it, nothing is captured and each event goes alone."""
    return event


def small_training(steps: int = 3) -> Value:
    """A few passes of a small model, with names, constants and a repeated line."""
    w, b = Value(0.5, name="w"), Value(-0.25, name="b")
    for step in range(steps):
        w.grad = b.grad = 0.0
        total = Value(0.0)
        for x in (1.0, 2.0, -3.0):
            y = (w * x + b).tanh()
            total = total + (y - 0.5) ** 2
        total.backward()
        w.data -= 0.1 * w.grad
    return total


def without_time(events) -> list:
    """The events with their clock readings (``t``, a pass's ``duration``) set to 0."""
    return [event._replace(t=0.0, **({"duration": 0.0} if "duration" in event._fields else {}))
            for event in events]


def traced(path, program, *, filters=(), ids=None) -> tuple:
    """Trace ``program`` to ``path``; with ``ids`` (pytest's monkeypatch) node ids count from 1."""
    if ids is not None:
        ids.setattr(value_module, "_numbering", value_module.ids_from(1))
    with trace([JsonlSink(path)], filters=filters) as t:
        result = program()
    return t, result


class TestCapturedBatches:
    def test_a_trace_file_holds_what_events_sent_one_by_one_would_write(self, tmp_path, monkeypatch):
        """Every field but ``t`` matches a trace whose events were sent one at a time."""
        batched, _ = traced(tmp_path / "batched.jsonl", small_training, ids=monkeypatch)
        traced(tmp_path / "single.jsonl", small_training, filters=[one_at_a_time], ids=monkeypatch)
        written = without_time(load_events(tmp_path / "batched.jsonl"))
        assert written == without_time(load_events(tmp_path / "single.jsonl"))
        assert without_time(batched.events) == written and len(written) == batched.event_count

    def test_the_recorded_events_are_the_file_s_events(self, tmp_path):
        """``t.events`` holds the same events, ``t`` included, as the file the batches went to."""
        t, _ = traced(tmp_path / "trace.jsonl", small_training)
        assert t.events == load_events(tmp_path / "trace.jsonl")

    def test_seq_counts_up_and_t_never_goes_back(self, tmp_path):
        """Batches are numbered by position and timed no earlier than the events before them."""
        t, _ = traced(tmp_path / "trace.jsonl", small_training)
        assert [e.seq for e in t.events] == list(range(len(t.events)))
        times = [e.t for e in t.events]
        assert times == sorted(times)

    def test_long_passes_go_out_in_several_batches(self, tmp_path, monkeypatch):
        """A batch bound far below the pass's size changes nothing in the file."""
        with monkeypatch.context() as patch:
            patch.setattr(tracer_module, "CAPTURE_BATCH", 7)
            traced(tmp_path / "small.jsonl", small_training, ids=patch)
        traced(tmp_path / "single.jsonl", small_training, filters=[one_at_a_time], ids=monkeypatch)
        assert without_time(load_events(tmp_path / "small.jsonl")) == \
            without_time(load_events(tmp_path / "single.jsonl"))

    def test_a_recorded_batch_reads_back_as_its_events_whatever_its_values(self):
        """Kept for ``t.events`` without its tuples, a batch gives back the events it held,
        NaN bits included; a value that cannot be packed is kept as it was."""
        batch = [(NODE, 1, "", float("nan"), (), "x", "f.py:3", "<module>", None, None),
                 (WRITE, 1, 1, None, None, complex(1, 2), 0.0, 2.0, True, "f.py:9")]
        packed = CapturedBatch(4, 0.5, batch)
        assert packed.batch is None and repr(packed.events()) == repr(events_of(4, 0.5, batch))
        odd = [(NODE, 1, "", Fraction(1, 3), (), "x", None, None, None, None)]
        assert CapturedBatch(0, 0.0, odd).events() == events_of(0, 0.0, odd)

    def test_assigned_names_reach_the_values(self, tmp_path):
        """The engine's nodes take the names the tracer settles on, as when sent one by one."""
        with trace([JsonlSink(tmp_path / "trace.jsonl")]):
            x = Value(2.0)
            y = x * x + 1
        assert (x.name, y.name) == ("x", "y") and y.site.startswith("tests/test_captured_batches.py:")

    def test_special_numbers_and_odd_names_take_the_careful_path(self, tmp_path, monkeypatch):
        """NaN, infinities, an int value and a lone surrogate are written as single events write them."""
        def program():
            x = Value(float("nan"), name="x\ud800")
            y = x * float("inf") + Value(1e308) * 10
            y.backward()
        traced(tmp_path / "batched.jsonl", program, ids=monkeypatch)
        traced(tmp_path / "single.jsonl", program, filters=[one_at_a_time], ids=monkeypatch)
        written = load_events(tmp_path / "batched.jsonl")
        assert repr(without_time(written)) == repr(without_time(load_events(tmp_path / "single.jsonl")))
        assert written[0].name == "x\ud800" and math.isnan(written[0].value)

    def test_lines_of_a_batch_read_back_as_its_events(self, tmp_path):
        """A batch's lines, one per event, read back as its events, for common and special numbers
        (the first an object line, as it follows no event of the file)."""
        batch = [(NODE, 1, "", 2.0, (), "x", "f.py:3", "<module>", None, None),
                 (NODE, 2, "mul", float("inf"), (1, 1), "y", None, None, "model.0", "float32[2]"),
                 (FIRED, 1, 2, 1.0, 1.0),
                 (WRITE, 1, 1, 2, 2.0, 2.0, 0.0, 2.0, False, None),
                 (WRITE, 1, 1, None, None, complex(1, 2), 0.0, 2.0, True, "f.py:9")]
        lines = lines_of(10, 0.25, batch, numbered=True)
        path = tmp_path / "batch.jsonl"
        path.write_bytes(encode_line(header_line({})) + lines)
        assert repr(without_time(load_events(path))) == repr(without_time(events_of(10, 0.25, batch)))
        assert lines.count(b"\n") == len(batch)

    def test_a_node_linked_later_on_a_line_that_assigns_nothing_has_its_default_name(self, tmp_path):
        """A node reported with its parents still to come (a function giving them), from a
        line that assigns nothing, is named as any unnamed node: its op and id."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            t.node_created(7, "mul", 2.0, lambda: ("mul", 2.0, ()))
        assert [e.name for e in t.events] == [e.name for e in load_events(path)] == ["mul#7"]

    def test_a_nested_trace_and_its_outer_trace_stay_in_order(self, tmp_path):
        """Events captured by the outer trace go out before the inner trace's first event."""
        with trace([JsonlSink(tmp_path / "outer.jsonl")]) as outer:
            a = Value(1.0)
            b = a * 2
            with trace([JsonlSink(tmp_path / "inner.jsonl")]) as inner:
                c = b * 3
                c.backward()
            d = c + 1
            d.backward()
        seqs = [e.seq for e in outer.events]
        assert seqs == list(range(len(seqs))) and len(seqs) > len(inner.events)
        assert [e.seq for e in inner.events] == [e.seq for e in outer.events if e.seq in
                                                 {i.seq for i in inner.events}]
        assert outer.events == load_events(tmp_path / "outer.jsonl")

    def test_threads_keep_their_passes_whole(self, tmp_path):
        """Passes from several threads written in batches never interleave."""
        start = threading.Barrier(4)

        def train():
            start.wait()
            w = Value(0.5)
            for _ in range(20):
                loss = (w * 3.0 + 1.0) ** 2
                loss.backward()

        with trace([JsonlSink(tmp_path / "trace.jsonl")]) as t:
            threads = [threading.Thread(target=train) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        events = load_events(tmp_path / "trace.jsonl")
        assert [e.seq for e in events] == list(range(len(events))) and events == t.events
        open_pass = None
        for event in events:
            if event.kind == "backward_started":
                assert open_pass is None
                open_pass = event.pass_no
            elif event.kind in ("backward_fn_fired", "grad_accumulated"):
                assert event.pass_no == open_pass
            elif event.kind == "backward_finished":
                assert event.pass_no == open_pass
                open_pass = None
        assert sum(e.kind == "backward_finished" for e in events) == 80


@pytest.mark.parametrize("record", [True, False])
def test_event_count_includes_events_not_yet_sent(tmp_path, record):
    """``event_count`` counts captured events before their batch goes out."""
    with trace([JsonlSink(tmp_path / "trace.jsonl")], record=record) as t:
        x = Value(2.0)
        x * x
        assert t.event_count == 2
    assert t.event_count == 2 and len(load_events(tmp_path / "trace.jsonl")) == 2

"""Compact lines: the hot events written as JSON arrays read back exactly as the events
they stand for, cost a fraction of an object line, and a crafted one is refused by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autodiff_trace import TraceFileError, Value, backward, load_events, trace
from autodiff_trace.core.captured import FIRED, NODE, WRITE, events_of, lines_of
from autodiff_trace.core.events import SCHEMA_VERSION, from_dict
from autodiff_trace.core.tracefile import encode_event, encode_line, header_line, read_header
from autodiff_trace.sinks.jsonl import JsonlSink
from trace_lines import line_objects

OLD_TRACES = Path(__file__).resolve().parent / "old_traces"
GOLDEN = Path(__file__).resolve().parent / "golden"


def written(tmp_path, lines: bytes, version: int = SCHEMA_VERSION) -> Path:
    """A trace file holding ``lines`` after a header of ``version``."""
    header = header_line({})
    header["version"] = version
    path = tmp_path / "trace.jsonl"
    path.write_bytes(encode_line(header) + lines)
    return path


def untimed(events) -> str:
    """The events without their clock readings (``t``, a pass's ``duration``), as text (so NaN equals NaN)."""
    return repr([e._replace(t=0.0, **({"duration": 0.0} if "duration" in e._fields else {})) for e in events])


names = st.text(max_size=12)  # any text: quotes, brackets, `],["`, lone surrogates
floats = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-3, 3) | st.complex_numbers(max_magnitude=1e6)
ids = st.integers(0, 2 ** 63 - 1)
raw_events = st.one_of(
    st.tuples(st.just(NODE), ids, names, floats, st.lists(ids, max_size=3).map(tuple), names,
              st.none() | names, st.none() | names, st.none() | names, st.none() | names),
    st.tuples(st.just(FIRED), ids, ids, floats, floats),
    st.tuples(st.just(WRITE), ids, ids, st.none() | ids, st.none() | floats, floats, floats, floats,
              st.booleans(), st.none() | names))


class TestReadingBack:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(raw_events, min_size=1, max_size=8))
    def test_any_batch_reads_back_as_its_events(self, tmp_path_factory, batch):
        """Whatever a batch holds (NaN, complex, ints, odd names), its lines read back as the
        events its events' object lines give (an int value reads back as a float in both)."""
        path = written(tmp_path_factory.mktemp("batch"), lines_of(5, 0.0, batch))
        as_objects = [from_dict(json.loads(encode_event(e))) for e in events_of(5, 0.0, batch)]
        assert untimed(load_events(path)) == untimed(as_objects)

    def test_a_traced_run_reads_back_equal_times_included(self, tmp_path):
        """A run traced to a file loads equal to the events it made, times included."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            x, w = Value(2.0, name="x"), Value(-0.5, name="w")
            for _ in range(3):
                backward((x * w).tanh() + x)
        assert repr(load_events(path)) == repr(t.events)
        assert read_header(path)["version"] == SCHEMA_VERSION == 3

    def test_hot_events_are_arrays_and_the_rest_objects(self, tmp_path):
        """Nodes, firings and grad writes are arrays; a pass's start and end stay objects."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]):
            backward(Value(2.0, name="x") * 3.0)
        kinds = {}
        for line in path.read_text().splitlines()[1:]:
            data = json.loads(line)
            kinds.setdefault(data[0] if isinstance(data, list) else data["kind"], 0)
        assert set(kinds) == {"n", "f", "g", "backward_started", "backward_finished"}


class TestSize:
    def test_a_compact_line_is_less_than_half_its_object_line(self):
        """A grad write takes under half the bytes of the same event as an object."""
        raw = (WRITE, 1, 812, 813, 0.4606818980177483, 0.256114742086453, 0.9756372780395813,
               0.9046823452632948, False, None)
        compact = lines_of(123456, 1.5, [raw])
        assert compact.startswith(b'["g",123456,1,812,813,')
        assert len(compact) < len(encode_event(events_of(123456, 1.5, [raw])[0])) / 2

    def test_unset_fields_at_the_end_are_left_out(self):
        """A node without module or tensor, a write that added with no site: nothing trails."""
        lines = lines_of(0, 0.0, [(NODE, 1, "", 2.0, (), "x", None, None, None, None),
                                  (WRITE, 1, 1, None, None, 1.0, 0.0, 1.0, False, None),
                                  (WRITE, 1, 1, None, None, 1.0, 0.0, 1.0, False, "f.py:3")])
        assert lines.splitlines() == [b'["n",0,1,"",2.0,[],"x",null,null]',
                                      b'["g",1,1,1,null,null,1.0,0.0,1.0]',
                                      b'["g",2,1,1,null,null,1.0,0.0,1.0,false,"f.py:3"]']


class TestOlderFiles:
    @pytest.mark.parametrize("example", ["notebook_bug", "forgot_zero_grad"])
    def test_a_version_2_trace_reads_as_the_same_run_written_now(self, example):
        """A trace the previous version wrote (objects only) reads as today's trace of the same example."""
        old = OLD_TRACES / f"{example}_version2.jsonl"
        assert read_header(old)["version"] == 2
        assert untimed(load_events(old)) == untimed(load_events(GOLDEN / example / "trace.jsonl"))
        assert len(line_objects(old)) == len(line_objects(GOLDEN / example / "trace.jsonl"))


class TestCraftedLines:
    @pytest.mark.parametrize("line, says", [
        (b'["x",1,1,2,1.0,1.0]\n', 'an array line must start with a tag ("n" (node_created), "f" '),
        (b'[]\n', "an array line must start with a tag"),
        (b'["f",1,1,2,1.0]\n', "a backward_fn_fired array holds 6 to 6 values (the tag, seq, pass_no, node, "
                               "grad, upstream), got 5"),
        (b'["g",1,1,2,3,1.0,1.0,0.0,1.0,false,null,7]\n', "a grad_accumulated array holds 9 to 11 values"),
        (b'["f",1,1,-2,1.0,1.0]\n', "backward_fn_fired.node must be a node id"),
        (b'["n",1,1,"mul",2.0,[1,"a"],"x",null,null]\n', "node_created.parents[1] must be a node id"),
        (b'["g",1,1,2,3,1.0,1.0,0.0,1.0,"yes"]\n', "grad_accumulated.replaced must be true or false"),
    ])
    def test_a_crafted_array_is_refused_with_what_is_wrong(self, tmp_path, line, says):
        """Each bad array names the line and what is wrong in it, never a traceback."""
        with pytest.raises(TraceFileError, match=r"trace.jsonl:2: ") as refused:
            load_events(written(tmp_path, line))
        assert says in str(refused.value)

    def test_an_array_in_a_version_2_file_is_refused(self, tmp_path):
        """Version 2 wrote no arrays: one there is damage, not an event."""
        with pytest.raises(TraceFileError, match="trace.jsonl:2: expected a JSON object, got a list"):
            load_events(written(tmp_path, b'["f",1,1,2,1.0,1.0]\n', version=2))

    def test_a_number_json_cannot_hold_travels_in_an_object_line(self):
        """NaN, infinity and complex numbers are written as an object line, read back as they were."""
        lines = lines_of(0, 0.0, [(FIRED, 1, 2, math.nan, math.inf), (FIRED, 1, 2, 1j, 1.0)])
        assert all(line.startswith(b'{"kind":"backward_fn_fired"') for line in lines.splitlines())

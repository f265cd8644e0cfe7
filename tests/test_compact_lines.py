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
        """Nodes, firings and grad writes are arrays; a pass's start and end stay objects,
        and the one line that made the nodes is written once, as a site line."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]):
            backward(Value(2.0, name="x") * 3.0)
        kinds = []
        for line in path.read_text().splitlines()[1:]:
            data = json.loads(line)
            kinds.append(data[0] if isinstance(data, list) else data.get("kind", "site line"))
        assert set(kinds) == {"site line", "n", "f", "g", "backward_started", "backward_finished"}
        assert kinds.count("site line") == 1 and kinds.index("site line") < kinds.index("n")


class TestSize:
    def test_a_compact_line_is_less_than_half_its_object_line(self):
        """A grad write takes under half the bytes of the same event as an object."""
        raw = (WRITE, 1, 812, 813, 0.4606818980177483, 0.256114742086453, 0.9756372780395813,
               0.9046823452632948, False, None)
        compact = lines_of(123456, 1.5, [raw])
        assert compact.startswith(b'["g",123456,1,812,813,')
        assert len(compact) < len(encode_event(events_of(123456, 1.5, [raw])[0])) / 2

    def test_unset_fields_at_the_end_are_left_out(self):
        """A node without function, module or tensor, a write that added with no site: nothing trails."""
        lines = lines_of(0, 0.0, [(NODE, 1, "", 2.0, (), "x", None, None, None, None),
                                  (WRITE, 1, 1, None, None, 1.0, 0.0, 1.0, False, None),
                                  (WRITE, 1, 1, None, None, 1.0, 0.0, 1.0, False, "f.py:3")])
        assert lines.splitlines() == [b'["n",0,1,"",2.0,[],"x",null]',
                                      b'["g",1,1,1,null,null,1.0,0.0,1.0]',
                                      b'["g",2,1,1,null,null,1.0,0.0,1.0,false,"f.py:3"]']


class TestSiteLines:
    def test_a_loop_writes_its_line_once(self, tmp_path):
        """A thousand nodes made by two lines of a loop: two site lines, every node its site back."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            total = Value(0.0, name="total")
            for i in range(500):
                total = total + i  # each turn: a constant and a sum
        text = path.read_text()
        assert text.count('{"site_no":') == 2
        assert [e.site for e in load_events(path)] == [e.site for e in t.events]
        assert all(e.function == "test_a_loop_writes_its_line_once" for e in load_events(path))

    def test_passes_summarised_keep_the_site_lines_later_passes_use(self, tmp_path):
        """With only the last pass kept, the nodes it names still read back with their sites."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path, keep="last")]):
            w = Value(0.5, name="w")
            for _ in range(4):
                backward((w * 2.0).tanh())  # its site line is written with pass 1's nodes
        events = load_events(path)
        nodes = [e for e in events if e.kind == "node_created"]
        assert [e.kind for e in events].count("pass_summary") == 3
        assert len(nodes) > 3 and all(e.site is not None and e.function is not None for e in nodes)

    @pytest.mark.parametrize("lines, says", [
        (b'["n",0,1,"",2.0,[],"x",4]\n', "node_created.site is site number 4, which no site line before it defines"),
        (b'{"site_no":0,"site":"f.py:1"}\n', 'a site line holds "site_no" (a whole number), "site"'),
        (b'{"site_no":-1,"site":"f.py:1","function":null}\n', "a site line holds"),
        (b'{"site_no":0,"site":"f.py:1","function":null}\n["n",0,1,"",2.0,[],"x",0,"f"]\n',
         "node_created.function must be left out or null when the site is a number"),
    ])
    def test_a_crafted_site_reference_is_refused(self, tmp_path, lines, says):
        """A node naming an undefined site, or a malformed site line, is refused by name."""
        with pytest.raises(TraceFileError) as refused:
            load_events(written(tmp_path, lines))
        assert says in str(refused.value)


class TestOlderFiles:
    @pytest.mark.parametrize("version", [2, 3])
    @pytest.mark.parametrize("example", ["notebook_bug", "forgot_zero_grad"])
    def test_an_older_trace_reads_as_the_same_run_written_now(self, example, version):
        """A trace an earlier version wrote (2: objects only; 3: arrays with their seq) reads as
        today's trace of the same example."""
        old = OLD_TRACES / f"{example}_version{version}.jsonl"
        assert read_header(old)["version"] == version
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

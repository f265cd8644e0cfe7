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
from autodiff_trace.core.captured import FIRED, NODE, WRITE, CapturedBatch, events_of, lines_of
from autodiff_trace.core.compact import ARRAYS, BATCH_ARRAYS, SiteNumbers
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
signed = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0])
implied_events = st.one_of(  # numbers a line may leave out: upstream equal to grad, grad after to before + contribution
    st.tuples(signed, st.sampled_from([lambda g: g, lambda g: -g, lambda g: 0.0])).map(
        lambda pair: (FIRED, 1, 2, pair[0], pair[1](pair[0]))),
    st.tuples(signed, signed, st.booleans()).map(
        lambda f: (WRITE, 1, 2, 3, 1.0, f[0], f[1], f[0] + f[1] if f[2] else -(f[0] + f[1]), False, None)))
raw_events = st.one_of(
    st.tuples(st.just(NODE), ids, names, floats, st.lists(ids, max_size=3).map(tuple), names,
              st.none() | names, st.none() | names, st.none() | names, st.none() | names),
    st.tuples(st.just(FIRED), ids, ids, floats, floats),
    st.tuples(st.just(WRITE), ids, ids, st.none() | ids, st.none() | floats, floats, floats, floats,
              st.booleans(), st.none() | names))


SITE = "f.py:3"
named_alike = [(NODE, 7, "mul", 2.0, (5, 6), "mul#7", SITE, "f", None, None),  # a default name: null
               (NODE, 8, "mul", 2.0, (5, 6), "mul#7", SITE, "f", None, None),  # another node's: kept
               (NODE, 9, "", 1.0, (), "leaf#9", SITE, None, None, None),
               (NODE, 10, "const", 1.5, (), "1.5", "f.py:4", "f", None, None),
               (NODE, 11, "add", 2.5, (9, 10), "x#y", SITE, "f", None, None)]


class TestReadingBack:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(raw_events, min_size=1, max_size=8))
    def test_any_batch_reads_back_as_its_events(self, tmp_path_factory, batch):
        """Whatever a batch holds (NaN, complex, ints, odd names), its lines read back as the
        events its events' object lines give (an int value reads back as a float in both)."""
        path = written(tmp_path_factory.mktemp("batch"), lines_of(0, 0.0, batch))
        as_objects = [from_dict(json.loads(encode_event(e))) for e in events_of(0, 0.0, batch)]
        assert untimed(load_events(path)) == untimed(as_objects)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(implied_events, min_size=1, max_size=8))
    def test_numbers_a_line_leaves_out_read_back_bit_for_bit(self, tmp_path_factory, batch):
        """A firing's upstream and a write's grad after, left out when the line gives them,
        read back as the very floats they were (-0.0 is not 0.0), after events it does not hold."""
        path = written(tmp_path_factory.mktemp("batch"), lines_of(5, 0.0, batch, numbered=True))
        assert untimed(load_events(path)) == untimed(events_of(5, 0.0, batch))

    @settings(max_examples=150, deadline=None)
    @given(st.lists(raw_events | st.sampled_from(named_alike), min_size=1, max_size=12))
    def test_a_batch_makes_the_arrays_its_events_make_one_by_one(self, batch):
        """The arrays of a whole batch, made in one loop, are those each event's own function
        makes, site numbers and default names included (each run of one site's nodes too)."""
        one_by_one, whole = SiteNumbers(), SiteNumbers()
        expected = [ARRAYS[raw[0]](raw, one_by_one.number) for raw in batch]
        assert BATCH_ARRAYS(batch, whole.number) == expected
        assert whole.numbers == one_by_one.numbers

    def test_a_traced_run_reads_back_equal_times_included(self, tmp_path):
        """A run traced to a file loads equal to the events it made, times included."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            x, w = Value(2.0, name="x"), Value(-0.5, name="w")
            for _ in range(3):
                backward((x * w).tanh() + x)
        assert repr(load_events(path)) == repr(t.events)
        assert read_header(path)["version"] == SCHEMA_VERSION == 4

    def test_passes_summarised_leave_the_kept_events_as_they_were(self, tmp_path):
        """With passes summarised away, every event the file still holds reads back equal to
        the one the run made with the same seq, times included."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path, keep="last")]) as t:
            w = Value(0.5, name="w")
            for _ in range(4):
                backward((w * 2.0).tanh() + w)
        made = {e.seq: e for e in t.events}
        kept = [e for e in load_events(path) if e.kind != "pass_summary"]
        assert len(kept) > 10 and [repr(e) for e in kept] == [repr(made[e.seq]) for e in kept]

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


class TestRecord:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(raw_events, min_size=1, max_size=8))
    def test_a_batch_kept_as_its_lines_reads_back_as_exactly_its_events(self, batch):
        """A batch a file has just written as arrays is kept as those lines, and gives back
        the very events its tuples give (ints, NaN, complex: it keeps its tuples)."""
        lines_of(3, 0.25, batch, None)
        kept = CapturedBatch(3, 0.25, batch)
        assert repr(kept.events()) == repr(events_of(3, 0.25, batch))

    def test_a_run_traced_to_a_file_keeps_its_batches_as_lines(self, tmp_path):
        """``with trace([JsonlSink(path)]) as t`` keeps each batch as the lines it wrote,
        and ``t.events`` equals the file's events, times included."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            x, w = Value(2.0, name="x"), Value(-0.5, name="w")
            for _ in range(3):
                backward((x * w).tanh() + x * 0.0 - x)
        kept = [item for item in t._unread if isinstance(item, CapturedBatch)]
        assert kept and all(item.batch is None and item.lines for item in kept)
        assert repr(t.events) == repr(load_events(path))


class TestSize:
    def test_a_compact_line_is_less_than_half_its_object_line(self):
        """A grad write takes under half the bytes of the same event as an object."""
        raw = (WRITE, 1, 812, 813, 0.4606818980177483, 0.256114742086453, 0.9756372780395813,
               0.9046823452632948, False, None)
        compact = lines_of(123456, 1.5, [raw])
        assert compact.startswith(b'["g",1,812,813,')
        assert len(compact) < len(encode_event(events_of(123456, 1.5, [raw])[0])) / 2

    def test_what_a_reader_can_tell_at_the_end_is_left_out(self):
        """Unset fields, an upstream equal to the grad and a grad after equal to grad before
        plus contribution trail nothing; a sign of zero that differs is written; a default
        name is null."""
        lines = lines_of(0, 0.0, [(NODE, 1, "", 2.0, (), "x", None, None, None, None),
                                  (NODE, 2, "mul", 4.0, (1, 1), "mul#2", None, None, None, None),
                                  (FIRED, 1, 1, 0.5, 0.5),
                                  (FIRED, 1, 1, 0.0, -0.0),
                                  (WRITE, 1, 1, None, None, 1.0, 0.5, 1.5, False, None),
                                  (WRITE, 1, 1, None, None, 1.0, 0.0, 1.0, False, "f.py:3"),
                                  (WRITE, 1, 1, 2, 0.0, -0.0, -0.0, 0.0, False, None)])
        assert lines.splitlines() == [b'["n",1,"",2.0,[],"x",null]',
                                      b'["n",2,"mul",4.0,[1,1],null,null]',
                                      b'["f",1,1,0.5]',
                                      b'["f",1,1,0.0,-0.0]',
                                      b'["g",1,1,null,null,1.0,0.5]',
                                      b'["g",1,1,null,null,1.0,0.0,1.0,false,"f.py:3"]',
                                      b'["g",1,1,2,0.0,-0.0,-0.0,0.0]']

    def test_a_line_after_events_the_file_does_not_hold_is_an_object(self):
        """The seq a compact line leaves out is one more than the line before's: a batch
        that does not follow the event before it starts with an object line."""
        lines = lines_of(9, 0.5, [(FIRED, 1, 3, 2.0, 2.0)] * 2, numbered=True).splitlines()
        assert json.loads(lines[0])["seq"] == 9 and lines[1] == b'["f",1,3,2.0]'


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
        (b'["n",1,"",2.0,[],"x",4]\n', "node_created.site is site number 4, which no site line before it defines"),
        (b'{"site_no":0,"site":"f.py:1"}\n', 'a site line holds "site_no" (a whole number), "site"'),
        (b'{"site_no":-1,"site":"f.py:1","function":null}\n', "a site line holds"),
        (b'{"site_no":0,"site":"f.py:1","function":null}\n["n",1,"",2.0,[],"x",0,"f"]\n',
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
        (b'["f",1,2]\n', "a backward_fn_fired array holds 4 to 5 values (the tag, pass_no, node, "
                         "grad, upstream), got 3"),
        (b'["g",1,2,3,1.0,1.0,0.0,1.0,false,null,7]\n', "a grad_accumulated array holds 7 to 10 values"),
        (b'["f",1,-2,1.0,1.0]\n', "backward_fn_fired.node must be a node id"),
        (b'["n",1,"mul",2.0,[1,"a"],"x",null,null]\n', "node_created.parents[1] must be a node id"),
        (b'["g",1,2,3,1.0,1.0,0.0,1.0,"yes"]\n', "grad_accumulated.replaced must be true or false"),
        (b'["f",1,2,"one"]\n', "backward_fn_fired.grad must be a number"),
        (b'["n",1,5,2.0,[],null,null]\n', "node_created.op must be a string, got 5"),
        (b'["g",1,2,3,1.0,1.0,"zero"]\n', "grad_accumulated.grad_before must be a number"),
    ])
    def test_a_crafted_array_is_refused_with_what_is_wrong(self, tmp_path, line, says):
        """Each bad array names the line and what is wrong in it, never a traceback."""
        with pytest.raises(TraceFileError, match=r"trace.jsonl:2: ") as refused:
            load_events(written(tmp_path, line))
        assert says in str(refused.value)

    def test_a_version_3_array_holds_its_seq_and_every_number(self, tmp_path):
        """A version 3 file's arrays read with their seq, and one cut short of a number is refused."""
        path = written(tmp_path, b'["f",7,1,2,1.0,1.0]\n', version=3)
        assert load_events(path)[0].seq == 7
        with pytest.raises(TraceFileError, match="holds 6 to 6 values"):
            load_events(written(tmp_path, b'["f",7,1,2,1.0]\n', version=3))

    def test_an_array_in_a_version_2_file_is_refused(self, tmp_path):
        """Version 2 wrote no arrays: one there is damage, not an event."""
        with pytest.raises(TraceFileError, match="trace.jsonl:2: expected a JSON object, got a list"):
            load_events(written(tmp_path, b'["f",1,1,2,1.0,1.0]\n', version=2))

    def test_a_number_json_cannot_hold_travels_in_an_object_line(self):
        """NaN, infinity and complex numbers are written as an object line, read back as they were."""
        lines = lines_of(0, 0.0, [(FIRED, 1, 2, math.nan, math.inf), (FIRED, 1, 2, 1j, 1.0)])
        assert all(line.startswith(b'{"kind":"backward_fn_fired"') for line in lines.splitlines())

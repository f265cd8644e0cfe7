"""The trace reader's promises: every field's type is checked, every line and list is bounded,
and numbers (NaN, ±inf, -0.0, complex) come back exactly as they were written."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autodiff_trace import JsonlSink, TraceFileError, Value, backward, load_events, read_header, trace
from autodiff_trace.core.events import (
    EVENT_TYPES, MAX_LIST_ITEMS, BackwardFinished, BackwardFnFired, BackwardStarted, Diagnostic,
    GradAccumulated, GradsZeroed, NodeCreated, from_dict, to_dict,
)
from autodiff_trace.core.long_lists import CHUNK
from autodiff_trace.core.tracefile import MAX_LINE_BYTES, encode_event, encode_line, header_line, iter_events

HEADER = {"kind": "header", "schema": "autodiff_trace.events", "version": 1}

# One well-formed event of every kind, as the writer puts it on a line.
GOOD = {
    "node_created": to_dict(NodeCreated(0, 0.25, 1, "mul", 6.0, (2, 3), "z", "s.py:4", "<module>")),
    "backward_started": to_dict(BackwardStarted(1, 0.5, 1, 1, 1.0, (1, 2, 3), (0.0, 0.0, 0.0))),
    "backward_fn_fired": to_dict(BackwardFnFired(2, 0.5, 1, 1, 1.0, 1.0)),
    "grad_accumulated": to_dict(GradAccumulated(3, 0.5, 1, 2, 1, 3.0, 3.0, 0.0, 3.0, False, "s.py:9")),
    "grads_zeroed": to_dict(GradsZeroed(4, 0.75, (2, 3), (3.0, 2.0))),
    "backward_finished": to_dict(BackwardFinished(5, 1.0, 1, 1, 0.5, 1, 1)),
    "diagnostic": to_dict(Diagnostic(6, 1.0, 1, "stale_gradient", "warning", "x.grad held 2",
                                     (2,), ("x",), None, "call zero_grad()")),
}

# What each field must hold, and values that are not that (JSON as json.loads gives it).
SHAPE = {
    "seq": "count", "pass_no": "count", "fired": "count", "accumulated": "count",
    "node": "id", "root": "id", "target": "id", "fired_by": "id or null",
    "t": "seconds", "duration": "seconds",
    "value": "number", "seed": "number", "grad": "number", "upstream": "number",
    "contribution": "number", "grad_before": "number", "grad_after": "number",
    "local_grad": "number or null",
    "parents": "ids", "order": "ids", "nodes": "ids", "grads_before": "numbers", "names": "strings",
    "op": "string", "name": "string", "finding": "string", "message": "string", "hint": "string",
    "site": "string or null", "function": "string or null", "severity": "severity", "replaced": "bool",
    "module": "string or null", "tensor": "string or null",
}
OBJECT, LIST, DEEP = {"id": 1}, [1], [[[1]]]
NOT_WHOLE = [OBJECT, LIST, None, "1", True, False, 1.0, 1.5, -1, 2 ** 63, "NaN"]
WRONG = {
    "count": NOT_WHOLE,
    "id": NOT_WHOLE,
    "id or null": [v for v in NOT_WHOLE if v is not None],
    "seconds": [OBJECT, LIST, None, "0.5", True, "NaN", "Infinity", math.inf, math.nan],
    "number": [OBJECT, LIST, None, "1.0", "nan", True, False, {"re": 1.0}, {"re": 1, "im": "x"},
               {"re": 1, "im": 2, "x": 3}, 10 ** 400],
    "number or null": [OBJECT, LIST, "1.0", True, {"re": [], "im": 0}],
    "ids": [3, OBJECT, None, "1,2", True, [None], ["1"], [1.0], [True], [-1], [OBJECT], DEEP],
    "numbers": [3, 1.5, OBJECT, None, "NaN", [None], ["1"], [True], [LIST], DEEP],
    "strings": [3, "x", OBJECT, None, [None], [1], [True], [LIST]],
    "string": [3, 1.5, OBJECT, LIST, None, True],
    "string or null": [3, 1.5, OBJECT, LIST, True],
    "severity": ["fatal", "", 3, None, LIST, True],
    "bool": [0, 1, "true", None, LIST, OBJECT],
}
CASES = [(kind, field, wrong) for kind, good in GOOD.items() for field in good if field != "kind"
         for wrong in WRONG[SHAPE[field]]]


def write_lines(path: Path, *lines, version: int = 1) -> Path:
    """A trace file: the header (of ``version``), then each line (a dict is JSON-encoded,
    bytes go as they are)."""
    with open(path, "wb") as file:
        for line in ({**HEADER, "version": version}, *lines):
            file.write(line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n")
    return path


def with_field(kind: str, field: str, value) -> dict:
    line = dict(GOOD[kind])
    line[field] = value
    return line


def is_well_typed(event) -> bool:
    """Every field of ``event`` holds what docs/events.md says it does."""
    def whole(v):
        return type(v) is int and 0 <= v < 2 ** 63

    def number(v):
        return type(v) in (float, complex)

    checks = {
        "count": whole, "id": whole, "id or null": lambda v: v is None or whole(v),
        "seconds": lambda v: type(v) is float and math.isfinite(v), "number": number,
        "number or null": lambda v: v is None or number(v),
        "ids": lambda v: type(v) is tuple and all(map(whole, v)),
        "numbers": lambda v: type(v) is tuple and all(map(number, v)),
        "strings": lambda v: type(v) is tuple and all(type(s) is str for s in v),
        "string": lambda v: type(v) is str, "string or null": lambda v: v is None or type(v) is str,
        "severity": lambda v: v in ("error", "warning", "info"), "bool": lambda v: type(v) is bool,
    }
    return type(event) in EVENT_TYPES.values() and all(
        checks[SHAPE[f]](getattr(event, f)) for f in event._fields)


class TestEveryFieldIsChecked:
    """A line that parses as JSON but holds a wrong type is one error naming file, line and field."""

    @pytest.mark.parametrize("kind, field, wrong", CASES, ids=[f"{k}.{f}={json.dumps(w)[:20]}"
                                                                for k, f, w in CASES])
    def test_a_wrong_type_names_the_file_line_and_field(self, tmp_path, kind, field, wrong):
        """Any value of the wrong type in any field of any event kind is a TraceFileError."""
        path = write_lines(tmp_path / "trace.jsonl", GOOD["node_created"], with_field(kind, field, wrong))
        with pytest.raises(TraceFileError, match=rf"^{path}:3: {kind}\.{field}(\[\d+\])? must be "):
            load_events(path)

    def test_the_message_says_what_was_expected_and_what_came(self, tmp_path):
        """`parents` holding an int reads as one sentence with the value found."""
        path = write_lines(tmp_path / "trace.jsonl", with_field("node_created", "parents", 3))
        with pytest.raises(TraceFileError) as error:
            load_events(path)
        assert str(error.value).startswith(f"{path}:2: node_created.parents must be a list of node ids, got 3;")
        assert "\n" not in str(error.value)

    @pytest.mark.parametrize("wrong, shown", [({"id": 1}, "an object"), ([1], "a list"), (None, "null"),
                                              (True, "true"), ("7", '"7"')])
    def test_a_node_id_of_another_type_is_named(self, tmp_path, wrong, shown):
        """A node id that is an object, a list, null, a bool or a string is refused by name."""
        path = write_lines(tmp_path / "trace.jsonl", with_field("backward_fn_fired", "node", wrong))
        with pytest.raises(TraceFileError, match=rf":2: backward_fn_fired\.node must be a node id "
                                                 rf"\(a whole number from 0 to 2\*\*63-1\), got {shown};"):
            load_events(path)

    def test_a_bad_list_item_is_named_by_its_index(self, tmp_path):
        """`order[2]` holding a string is named with its index."""
        path = write_lines(tmp_path / "trace.jsonl", with_field("backward_started", "order", [1, 2, "3"]))
        with pytest.raises(TraceFileError, match=r":2: backward_started\.order\[2\] must be a node id .*got \"3\""):
            load_events(path)

    def test_grads_must_pair_with_their_nodes(self, tmp_path):
        """`grads_before` must hold one grad per node of `order`."""
        path = write_lines(tmp_path / "trace.jsonl", with_field("backward_started", "grads_before", [0.0]))
        with pytest.raises(TraceFileError, match=r"backward_started\.grads_before holds 1 numbers for the 3 "):
            load_events(path)

    @pytest.mark.parametrize("line, words", [
        ({"kind": "teleported"}, "unknown event kind 'teleported'"),
        ({"kind": ["node_created"]}, "kind must be an event kind, got a list"),
        ([1, 2], "expected a JSON object, got a list"),
        ({k: v for k, v in GOOD["grads_zeroed"].items() if k != "nodes"}, "grads_zeroed event: missing nodes"),
        ({**GOOD["grads_zeroed"], "extra": 1}, 'grads_zeroed event: unexpected "extra"'),
    ])
    def test_a_line_of_the_wrong_shape_says_what_is_wrong(self, tmp_path, line, words):
        """Unknown kinds, non-objects, missing and unexpected fields are named."""
        path = write_lines(tmp_path / "trace.jsonl", line)
        with pytest.raises(TraceFileError, match=rf"^{path}:2: {words}"):
            load_events(path)

    @pytest.mark.parametrize("header, words", [
        ({**HEADER, "version": True}, "schema version true is not supported"),
        ({**HEADER, "script": ["x.py"]}, "header.script must be a string, got a list"),
        ({**HEADER, "argv": "x.py"}, "header.argv must be a list of strings"),
        ({**HEADER, "schema": {"a": 1}}, "schema an object is not"),
    ])
    def test_a_header_of_the_wrong_types_is_refused(self, tmp_path, header, words):
        """The header's version must be the number 1, and the fields tools read must be strings."""
        path = tmp_path / "trace.jsonl"
        path.write_text(json.dumps(header) + "\n")
        with pytest.raises(TraceFileError, match=rf"^{path}:1: {words}"):
            read_header(path)

    def test_every_good_line_reads_as_its_event(self, tmp_path):
        """The well-formed example of each kind reads back equal, field for field."""
        path = write_lines(tmp_path / "trace.jsonl", *GOOD.values())
        assert [json.loads(encode_line(to_dict(e))) for e in load_events(path)] == [
            json.loads(json.dumps(g)) for g in GOOD.values()]


class TestBounds:
    """No line, list or nesting makes the reader hold more than a bounded amount of memory."""

    def test_an_endless_line_is_refused_after_the_limit(self, tmp_path):
        """`/dev/zero`, a file with no newline at all, is refused once MAX_LINE_BYTES are read."""
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero here")
        tracemalloc.start()
        try:
            with pytest.raises(TraceFileError, match=r"^/dev/zero:1: the line is longer than 16,777,216 bytes"):
                read_header("/dev/zero")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2.5 * MAX_LINE_BYTES

    def test_a_long_line_after_the_header_is_refused_by_number(self, tmp_path):
        """A 40 MiB line without a newline, after good lines, is refused naming line 3."""
        path = write_lines(tmp_path / "trace.jsonl", GOOD["node_created"], b"[" + b" " * (40 << 20))
        with pytest.raises(TraceFileError, match=rf"^{path}:3: the line is longer than 16,777,216 bytes, "
                                                 rf"the most a trace line may hold;"):
            load_events(path)

    def test_a_big_file_of_long_lines_is_read_one_line_at_a_time(self, tmp_path):
        """Reading 48 MiB of long, valid lines never holds more than a few lines' worth of memory."""
        padded = json.dumps(GOOD["node_created"])[:-1] + " " * (8 << 20) + "}"
        path = write_lines(tmp_path / "trace.jsonl", *[padded.encode() + b"\n"] * 6)
        tracemalloc.start()
        try:
            count = sum(1 for _ in iter_events(path))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == 6
        assert peak < 4 * (8 << 20)

    def test_a_list_beyond_the_bound_is_refused(self, tmp_path):
        """A pass `order` of more than MAX_LIST_ITEMS ids, over its list lines, is refused with
        the bound and the fix as soon as the bound is passed."""
        started = {**GOOD["backward_started"], "order": [1] * CHUNK, "grads_before": [0.0] * CHUNK}
        more = MAX_LIST_ITEMS // CHUNK  # one line more than the bound allows
        piece = {"more_of": started["seq"], "order": [1] * CHUNK, "grads_before": []}
        path = write_lines(tmp_path / "trace.jsonl", {**started, "more": more}, *[piece] * more, version=3)
        with pytest.raises(TraceFileError, match=rf":{more + 2}: backward_started\.order holds more than the "
                                                 rf"10,000,000 items one list of a trace may hold; "
                                                 rf"trace a smaller graph$"):
            load_events(path)

    def test_a_pass_over_many_nodes_goes_on_over_lines_of_bounded_length(self, tmp_path):
        """A pass over 250,001 nodes is written as its event and two list lines, none over
        1.2 MB, and reads back whole, special numbers included."""
        started = BackwardStarted(5, 0.5, 1, 250_000, 1.0, tuple(range(250_001)),
                                  (0.0,) * 250_000 + (float("nan"),))
        path = tmp_path / "trace.jsonl"
        path.write_bytes(encode_line(header_line({})) + encode_event(started))
        lines = path.read_bytes().splitlines()
        assert len(lines) == 4 and max(map(len, lines)) < 1_200_000
        assert repr(load_events(path)) == repr([started])

    @pytest.mark.parametrize("lines, says", [
        ([{"more_of": 3, "order": [1], "grads_before": [0.0]}], "a list line (more_of 3) must follow the line of "
                                                                 "the event whose seq it names"),
        ([{**GOOD["backward_started"], "seq": 3, "more": 2}, {"more_of": 3, "order": [1], "grads_before": [0.0]},
          GOOD["backward_fn_fired"]], "the event with seq 3 is missing 1 of its list lines"),
        ([{**GOOD["backward_started"], "more": 0}], "more must be how many list lines follow"),
        ([{**GOOD["backward_fn_fired"], "more": 1}], "only backward_started, grads_zeroed, diagnostic events go on"),
        ([{**GOOD["backward_started"], "seq": 3, "more": 1}, {"more_of": 3, "order": 7, "grads_before": []}],
         "backward_started.order must be a list, got 7"),
    ])
    def test_list_lines_out_of_place_are_refused(self, tmp_path, lines, says):
        """A list line without its event, an event missing its list lines, or a bad one, is named."""
        with pytest.raises(TraceFileError) as refused:
            load_events(write_lines(tmp_path / "trace.jsonl", *lines, version=3))
        assert says in str(refused.value)

    def test_a_trace_cut_inside_a_long_event_keeps_what_came_before(self, tmp_path):
        """The events before an event whose list lines were cut short still read, with a warning."""
        path = write_lines(tmp_path / "trace.jsonl", GOOD["backward_fn_fired"],
                           {**GOOD["backward_started"], "more": 3}, version=3)
        with pytest.warns(RuntimeWarning, match="the last event's list lines are cut short"):
            assert [e.kind for e in load_events(path)] == ["backward_fn_fired"]

    @pytest.mark.parametrize("where", ["line", "field"])
    def test_deep_nesting_is_one_error(self, tmp_path, where):
        """A line nested 100,000 deep, whole or in a field, is a TraceFileError, not a RecursionError."""
        deep = b"[" * 100_000 + b"]" * 100_000
        line = deep if where == "line" else json.dumps(with_field("grads_zeroed", "nodes", 0)).encode().replace(
            b'"nodes": 0', b'"nodes": ' + deep)
        path = write_lines(tmp_path / "trace.jsonl", line + b"\n")
        with pytest.raises(TraceFileError, match=rf"^{path}:2: its JSON is nested too deeply for a trace line"):
            load_events(path)

    def test_a_number_too_long_to_read_is_one_error(self, tmp_path):
        """An integer of 5,000 digits is refused, not a ValueError from int()."""
        path = write_lines(tmp_path / "trace.jsonl", b'{"kind": "grads_zeroed", "seq": ' + b"9" * 5000 + b"}\n")
        with pytest.raises(TraceFileError, match=rf"^{path}:2: a number in it is too long to read"):
            load_events(path)

    def test_bytes_that_are_not_utf8_name_their_line(self, tmp_path):
        """A line of invalid UTF-8 in the middle of a trace is refused by line number."""
        path = write_lines(tmp_path / "trace.jsonl", b'{"kind": "\xff\xfe"}\n', GOOD["node_created"])
        with pytest.raises(TraceFileError, match=rf"^{path}:2: not UTF-8 text \(byte 11 is 0xff\)"):
            load_events(path)

    def test_a_last_line_cut_inside_a_character_is_a_cut_line(self, tmp_path):
        """A crash in the middle of a multi-byte name drops only that line, with the usual warning."""
        named = json.dumps(with_field("node_created", "name", "損失"), ensure_ascii=False).encode()
        path = write_lines(tmp_path / "trace.jsonl", GOOD["node_created"], named[:named.index("失".encode()) + 1])
        with pytest.warns(RuntimeWarning, match=":3: the last line is cut short"):
            assert len(load_events(path)) == 1


class TestFilesAsWritten:
    """Traces the tool writes read back exactly; a byte-order mark is no obstacle."""

    def test_a_written_trace_reads_back_equal(self, tmp_path):
        """A real run with NaN, inf and -0.0 values loads equal to the events it made."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            x, y = Value(-0.0, name="x"), Value(float("inf"), name="y\ud800")
            backward((x * y) + Value(float("nan")) + x)
        loaded = load_events(path)
        assert [to_dict(e) for e in loaded] == [to_dict(e) for e in t.events]

    def test_a_byte_order_mark_is_skipped(self, tmp_path):
        """A trace saved by an editor that adds a UTF-8 BOM reads the same events."""
        plain = write_lines(tmp_path / "plain.jsonl", *GOOD.values())
        marked = tmp_path / "marked.jsonl"
        marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
        assert read_header(marked) == read_header(plain)
        assert load_events(marked) == load_events(plain)

    def test_a_key_given_twice_counts_once_the_last_time(self, tmp_path):
        """Duplicate keys read as JSON reads them: the last one counts."""
        line = json.dumps(GOOD["backward_fn_fired"]).replace('"seq": 2', '"seq": 2, "seq": 7').encode()
        path = write_lines(tmp_path / "trace.jsonl", line + b"\n")
        assert load_events(path)[0].seq == 7

    @pytest.mark.parametrize("literal, expected", [(b"NaN", math.nan), (b"-Infinity", -math.inf),
                                                  (b"1e999", math.inf), (b"-1e999", -math.inf)])
    def test_number_literals_beyond_json_read_as_the_floats_they_name(self, tmp_path, literal, expected):
        """NaN, Infinity and overflowing literals in a number field read as the float they denote."""
        line = json.dumps(with_field("backward_fn_fired", "grad", 0.125)).encode().replace(b"0.125", literal)
        path = write_lines(tmp_path / "trace.jsonl", line + b"\n")
        grad = load_events(path)[0].grad
        assert grad == expected or (math.isnan(grad) and math.isnan(expected))

    def test_a_time_that_is_not_finite_is_refused(self, tmp_path):
        """`t` must be a finite number of seconds: a NaN literal there is refused."""
        line = json.dumps(with_field("backward_fn_fired", "t", 0.125)).encode().replace(b"0.125", b"NaN")
        path = write_lines(tmp_path / "trace.jsonl", line + b"\n")
        with pytest.raises(TraceFileError, match=r":2: backward_fn_fired\.t must be a time in seconds"):
            load_events(path)


class TestNumbersAreRecordedFaithfully:
    """-0.0, NaN, ±inf and complex numbers survive to_dict, from_dict and the JSON Lines file."""

    EVENTS = [
        NodeCreated(0, 0.0, 1, "", -0.0, (), "x", None, None),
        NodeCreated(1, 0.0, 2, "", complex(1.5, -0.0), (), "z", None, None),
        BackwardStarted(2, 0.1, 1, 2, complex(1, 0), (2, 1), (complex(0, float("nan")), -0.0)),
        BackwardFnFired(3, 0.2, 1, 2, complex(float("inf"), 2), -0.0),
        GradAccumulated(4, 0.3, 1, 1, 2, complex(0, 1), complex(-1, 1), -0.0, complex(-1, 1), False, None),
        GradsZeroed(5, 0.4, (1, 2), (-0.0, complex(-0.0, -0.0))),
    ]

    @staticmethod
    def same(a, b) -> bool:
        """Equal, and with the same signs of zero and the same NaNs, part by part."""
        def parts(v):
            if isinstance(v, tuple):
                return [p for item in v for p in parts(item)]
            if isinstance(v, (float, complex)):
                c = complex(v)
                return [type(v).__name__] + [(math.copysign(1, p), p if p == p else "nan") for p in (c.real, c.imag)]
            return [v]
        return parts(tuple(a)) == parts(tuple(b))

    @pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
    def test_to_dict_and_from_dict_keep_every_number(self, event):
        """The dict form, through JSON text and back, gives the same numbers with the same signs."""
        assert self.same(from_dict(json.loads(json.dumps(to_dict(event)))), event)

    def test_negative_zero_keeps_its_sign_through_a_trace_file(self, tmp_path):
        """A value and a grad of -0.0 written by JsonlSink read back as -0.0."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]):
            x = Value(-0.0, name="x")
            backward(x * -1.0)
        created = [e for e in load_events(path) if e.kind == "node_created"]
        assert math.copysign(1, created[0].value) == -1

    def test_complex_values_travel_as_re_and_im(self, tmp_path):
        """A complex number is written as {"re", "im"} and every event reads back the same."""
        out = io.StringIO()
        sink = JsonlSink(out)
        for event in self.EVENTS:
            sink.handle(event)
        sink.close()
        text = out.getvalue()
        assert '"value":{"re":1.5,"im":-0.0}' in text.replace(" ", "")
        path = tmp_path / "trace.jsonl"
        path.write_text(text)
        for read, written in zip(load_events(path), self.EVENTS, strict=True):
            assert self.same(read, written), written.kind

    def test_encode_line_writes_special_numbers_as_documented(self):
        """NaN, inf and a complex with a NaN part are written as the strings docs/events.md names."""
        line = encode_line(to_dict(GradsZeroed(0, 0.0, (1, 2, 3), (math.nan, -math.inf, complex(math.nan, 1)))))
        assert json.loads(line)["grads_before"] == ["NaN", "-Infinity", {"re": "NaN", "im": 1.0}]


# -- fuzzing: whatever the bytes, reading gives events or one TraceFileError ---------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "error", "info"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["re", "im", "x"]), inner,
                                                                 max_size=3),
    max_leaves=12)


@st.composite
def crafted_lines(draw) -> bytes:
    """A line of an event of any kind with one field changed, removed or added, or raw bytes."""
    how = draw(st.sampled_from(["change", "change", "change", "remove", "add", "bytes", "cut", "literal"]))
    kind = draw(st.sampled_from(sorted(GOOD)))
    line = dict(GOOD[kind])
    field = draw(st.sampled_from(sorted(line)))
    if how == "change":
        line[field] = draw(json_values)
    elif how == "remove":
        del line[field]
    elif how == "add":
        line[draw(st.text(max_size=5))] = draw(json_values)
    elif how == "bytes":
        return draw(st.binary(max_size=60))
    text = json.dumps(line, allow_nan=True).encode()  # NaN and Infinity literals included
    if how == "cut":
        return text[:draw(st.integers(0, len(text)))]
    if how == "literal":
        token = draw(st.sampled_from([b"NaN", b"-Infinity", b"1e999", b"9" * 40, b"true", b"[[[[[", b"\"\\ud800\""]))
        value = json.dumps(line[field]).encode()
        return text.replace(value, token, 1)
    return text


class TestFuzz:
    """Crafted files, over every event kind, field and many wrong types, never end in another exception."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(lines=st.lists(crafted_lines(), min_size=1, max_size=4), newline_at_end=st.booleans(),
           bom=st.booleans())
    def test_reading_gives_well_typed_events_or_one_trace_file_error(self, tmp_path, lines, newline_at_end, bom):
        """Every read either yields events whose fields all hold their documented types, or a TraceFileError."""
        path = tmp_path / "crafted.jsonl"
        body = b"\n".join([json.dumps(HEADER).encode(), *lines]) + (b"\n" if newline_at_end else b"")
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                events = load_events(path)
            except TraceFileError as error:
                assert str(error).startswith(f"{path}:") and "\n" not in str(error)
                return
        assert all(is_well_typed(e) for e in events)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.binary(max_size=200))
    def test_any_bytes_at_all_give_events_or_one_error(self, tmp_path, data):
        """A file of random bytes, with or without a valid header in front, reads or is refused."""
        for content in (data, json.dumps(HEADER).encode() + b"\n" + data):
            path = tmp_path / "random.jsonl"
            path.write_bytes(content)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                try:
                    assert all(is_well_typed(e) for e in load_events(path))
                except TraceFileError:
                    pass


class TestQuickReading:
    """Common lines are read by a generated quick reader: it gives the careful path's event or
    steps aside, never another value or type."""

    @settings(max_examples=400, deadline=None)
    @given(line=crafted_lines())
    def test_the_quick_reader_reads_as_the_careful_path_does(self, line):
        """For any crafted line, the quick reader's event, when it gives one, is the careful
        path's, field for field and type for type."""
        import autodiff_trace.core.events as events

        try:
            data = json.loads(line)
        except ValueError:
            return
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str) \
                or data["kind"] not in events.EVENT_TYPES:
            return
        cls = events.EVENT_TYPES[data["kind"]]
        quick = events._QUICK[cls](data)
        if quick is None:
            return
        careful_readers, events._QUICK = events._QUICK, {c: (lambda d: None) for c in events._QUICK}
        try:
            careful = from_dict(data)
        finally:
            events._QUICK = careful_readers
        assert quick == careful and [type(v) for v in quick] == [type(v) for v in careful]

    def test_every_kind_of_common_line_is_read_quickly(self):
        """A well-formed line of each kind is read by its quick reader."""
        import autodiff_trace.core.events as events

        for kind, line in GOOD.items():
            data = json.loads(json.dumps(line))
            assert events._QUICK[EVENT_TYPES[kind]](data) == from_dict(data), kind


# -- through the command line ---------------------------------------------------------------
CRAFTED = {
    "parents an int": [with_field("node_created", "parents", 3)],
    "node id an object": [with_field("node_created", "node", {"id": 1})],
    "value a list": [with_field("node_created", "value", [1.0])],
    "deeply nested": [b"[" * 50_000 + b"]" * 50_000 + b"\n"],
    "not utf-8": [b"\xff\xfe\n"],
    "order over the bound": [{**GOOD["backward_started"], "order": [1] * (MAX_LIST_ITEMS + 1),
                              "grads_before": [0.0] * (MAX_LIST_ITEMS + 1)}],
}


class TestCommandLine:
    """`autodiff-trace stats` on a crafted file prints one line on stderr and exits 2."""

    @pytest.mark.parametrize("crafted", sorted(CRAFTED))
    def test_a_crafted_trace_is_one_line_and_exit_2(self, tmp_path, crafted):
        """No traceback: one line naming the file and line, exit code 2."""
        command = Path(sys.executable).with_name("autodiff-trace")
        if not command.exists():
            pytest.skip("the autodiff-trace command is not installed")
        path = write_lines(tmp_path / "trace.jsonl", GOOD["node_created"], *CRAFTED[crafted])
        done = subprocess.run([str(command), "stats", str(path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith(f"autodiff-trace: {path}:3: ")

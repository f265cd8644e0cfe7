"""The keep policy of long runs: every pass is analysed, but only the passes that matter
(the first ones, those with findings, the last) keep their every event in trace.jsonl
and in the diagrams; the others are one ``pass_summary`` line each."""

from __future__ import annotations

import io
import json

import pytest

from autodiff_trace import Value, trace
from autodiff_trace.analysis.diagnoser import Diagnoser
from autodiff_trace.core.events import SCHEMA_VERSION, PassSummary, from_dict, to_dict
from autodiff_trace.core.keep import DEFAULT_KEEP, KeepPolicy, describe_kept
from autodiff_trace.core.tracefile import encode_event, encode_line, iter_events, read_header
from autodiff_trace.frontends.session import open_session
from autodiff_trace.sinks.dot import DotSink
from autodiff_trace.sinks.jsonl import JsonlSink
from trace_lines import line_objects


def train(steps: int, *, stale_from: int = 0) -> None:
    """``steps`` passes of y = w * x; from pass ``stale_from`` on, w's grad is not zeroed."""
    w = Value(2.0, name="w")
    for step in range(1, steps + 1):
        x = Value(float(step), name="x")
        y = w * x
        if not stale_from or step < stale_from:
            w.grad = 0.0
        y.backward()


def traced_lines(steps: int, keep: str, **options) -> tuple:
    """The lines of the trace of :func:`train` written with ``keep``, and the sink."""
    out = io.StringIO()
    sink = JsonlSink(out, keep=KeepPolicy.parse(keep))
    with trace([sink], analyzers=[Diagnoser()], record=False):
        train(steps, **options)
    return line_objects(out.getvalue()), sink


def passes_in_full(lines: list) -> list:
    return [line["pass_no"] for line in lines if line["kind"] == "backward_started"]


def summarised(lines: list) -> list:
    return [line["pass_no"] for line in lines if line["kind"] == "pass_summary"]


class TestKeepPolicy:
    def test_the_default_keeps_the_first_two_the_findings_and_the_last(self):
        """first:2,findings,last keeps passes 1, 2, any where a finding shows, and the last one."""
        policy = KeepPolicy.parse(DEFAULT_KEEP)
        kept = [n for n in range(1, 11) if policy.keeps(n, has_findings=n == 6, last=10)]
        assert kept == [1, 2, 6, 10]

    def test_all_keeps_every_pass(self):
        """``all`` keeps everything, and says so."""
        policy = KeepPolicy.parse("all")
        assert policy.keeps_everything and all(policy.keeps(n, False, 100) for n in range(1, 101))

    @pytest.mark.parametrize("text, kept", [
        ("first:3", [1, 2, 3]), ("last:2", [9, 10]), ("every:4", [4, 8]),
        ("first:1,every:5,last", [1, 5, 10]), ("first:0,last", [10]),
    ])
    def test_each_word_keeps_its_passes(self, text, kept):
        """first:N, last:N, every:N and their combinations keep exactly their passes."""
        policy = KeepPolicy.parse(text)
        assert [n for n in range(1, 11) if policy.keeps(n, False, 10)] == kept

    @pytest.mark.parametrize("text", ["", "firsts:2", "first:x", "every:0", "last:-1", "all:3"])
    def test_a_bad_word_is_one_line_naming_it_and_the_choices(self, text):
        """A word that is not a choice raises a one-line ValueError that lists the choices."""
        with pytest.raises(ValueError) as refused:
            KeepPolicy.parse(text)
        message = str(refused.value)
        assert "\n" not in message and "--keep" in message

    def test_the_policy_reads_back_as_its_words(self):
        """str() of a policy is the --keep text that makes it."""
        assert str(KeepPolicy.parse("last,first:2,findings")) == "first:2,findings,last"

    def test_the_note_names_what_was_kept_and_how_to_keep_all(self):
        """describe_kept names the passes kept in full, the count summarised and --keep all."""
        note = describe_kept([1, 2, 9], [3, 4, 5, 6, 7, 8], KeepPolicy.parse(DEFAULT_KEEP))
        assert "passes 1, 2 and 9" in note and "6 passes" in note and "--keep all" in note
        assert describe_kept([1, 2], [], KeepPolicy.parse(DEFAULT_KEEP)) is None


class TestJsonlSinkKeeps:
    def test_unkept_passes_become_one_summary_line_each(self):
        """With first:1,last, passes 2–4 of 5 are summarised; 1 and 5 keep every event."""
        lines, sink = traced_lines(5, "first:1,last")
        assert passes_in_full(lines) == [1, 5]
        assert summarised(lines) == [2, 3, 4]
        assert (sink.kept, sink.summarised) == ([1, 5], [2, 3, 4])

    def test_a_summary_counts_what_it_replaces(self):
        """A pass_summary holds the pass's root, its counts and the number of lines left out."""
        lines, _ = traced_lines(3, "first:1,last")
        summary = next(line for line in lines if line["kind"] == "pass_summary")
        assert (summary["pass_no"], summary["reached"], summary["fired"], summary["accumulated"]) == (2, 3, 1, 3)
        assert summary["made"] == 2 and summary["events"] == 8  # x, y; started, 3 writes, 1 fired, finished

    def test_the_pass_where_a_finding_first_shows_is_kept_in_full(self):
        """A stale gradient from pass 3 on keeps pass 3; passes 4 and 5, which repeat it, are
        summarised, and their findings stay in the file."""
        lines, _ = traced_lines(6, "first:1,findings,last", stale_from=3)
        assert passes_in_full(lines) == [1, 3, 6]
        assert summarised(lines) == [2, 4, 5]
        assert {line["pass_no"] for line in lines if line["kind"] == "diagnostic"} >= {3}

    def test_a_new_kind_of_finding_keeps_its_pass_too(self):
        """A finding at another site is new, so its pass is kept even after an earlier finding."""
        out = io.StringIO()
        sink = JsonlSink(out, keep=KeepPolicy.parse("findings"))
        with trace([sink], analyzers=[Diagnoser()], record=False):
            w = Value(2.0, name="w")
            for step in range(4):
                y = w * 3.0
                y.backward()  # w.grad is never zeroed: stale from pass 2 on
            z = Value(float("nan"), name="z") * w
            z.backward()  # pass 5: a non-finite value, a new finding
        lines = line_objects(out.getvalue())
        assert passes_in_full(lines) == [2, 5]

    def test_findings_and_leaves_of_a_summarised_pass_stay(self):
        """A summarised pass keeps its leaves' node_created lines and every finding."""
        lines, _ = traced_lines(4, "first:1,last", stale_from=2)
        leaves = [line["name"] for line in lines if line["kind"] == "node_created" and line["op"] == ""]
        assert leaves == ["w", "x", "x", "x", "x"]
        assert {line["pass_no"] for line in lines if line["kind"] == "diagnostic"} >= {2}

    def test_seq_still_increases_through_the_summaries(self):
        """Summaries stand where the pass ended: seq increases strictly through the file."""
        lines, _ = traced_lines(6, "first:1,last", stale_from=2)
        seqs = [line["seq"] for line in lines[1:]]
        assert seqs == sorted(set(seqs))

    def test_without_a_policy_every_event_is_written(self):
        """keep=None (or all) writes every pass, as a trace always did."""
        lines, sink = traced_lines(4, "all")
        assert passes_in_full(lines) == [1, 2, 3, 4] and summarised(lines) == []
        assert sink.kept == [1, 2, 3, 4]

    def test_a_trace_with_summaries_reads_back(self, tmp_path):
        """iter_events reads a file with its summaries as PassSummary events."""
        path = tmp_path / "trace.jsonl"
        sink = JsonlSink(path, keep=KeepPolicy.parse("first:1,last"))
        with trace([sink], record=False):
            train(4)
        assert read_header(path)["version"] == SCHEMA_VERSION
        kinds = [type(e).__name__ for e in iter_events(path)]
        assert kinds.count("PassSummary") == 2 and kinds.count("BackwardStarted") == 2

    def test_a_version_1_trace_still_reads(self, tmp_path):
        """A file of object lines only, as version 1 wrote (header version 1), reads unchanged."""
        path = tmp_path / "old.jsonl"
        with trace([JsonlSink(path)], filters=[lambda event: event], record=False):  # one line per event
            train(2)
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        header["version"] = 1
        path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
        assert sum(1 for e in iter_events(path) if e.kind == "backward_finished") == 2

    def test_a_kept_pass_of_megabytes_is_copied_event_for_event(self, tmp_path):
        """A kept segment larger than the megabyte the copy reads at a time reads back whole,
        as the events the tracer sent."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path, keep=KeepPolicy.parse("first:1,last"))]) as t:
            y = Value(1.0, name="x")
            for _ in range(20_000):
                y = y * 1.0001
            y.backward()
        assert path.stat().st_size > 2 * 2**20
        assert [(e.kind, e.seq) for e in iter_events(path)] == [(e.kind, e.seq) for e in t.events]

    def test_a_crash_mid_pass_still_closes_into_a_valid_trace(self, tmp_path):
        """An exception mid-run closes the pass under way; the file reads back whole."""
        path = tmp_path / "trace.jsonl"
        with pytest.raises(RuntimeError):
            with trace([JsonlSink(path, keep=KeepPolicy.parse("first:1"))], record=False):
                train(3)
                raise RuntimeError("the script failed")
        events = list(iter_events(path))
        assert [e.pass_no for e in events if e.kind == "backward_started"] == [1]
        assert [e.pass_no for e in events if e.kind == "pass_summary"] == [2, 3]


class TestEventLines:
    @pytest.mark.parametrize("numbers", [(1.0, 2.0), (float("nan"), 1.0), (float("inf"), -0.0),
                                         (1j, 2.0), (3, 4), (None, 1e308)])
    def test_the_fast_line_is_the_careful_line(self, numbers):
        """encode_event writes exactly what encode_line(to_dict(event)) writes, NaN and all."""
        from autodiff_trace.core.events import GradAccumulated

        local, contribution = numbers
        event = GradAccumulated(3, 0.5, 1, 2, 1, local, contribution if contribution is not None else 0.0,
                                0.0, 1.0, False, "x\ud800")
        assert encode_event(event) == encode_line(to_dict(event))

    def test_a_summary_round_trips(self):
        """pass_summary survives to_dict and from_dict unchanged."""
        summary = PassSummary(9, 1.5, 2, 7, 3, 2, 8, 1, 3, 0.25)
        assert from_dict(json.loads(encode_event(summary))) == summary


class TestDiagramsFollowThePolicy:
    def test_only_kept_passes_are_drawn(self, tmp_path):
        """DotSink with first:1,last draws pass_1 and pass_4, not 2 or 3."""
        sink = DotSink(tmp_path, formats=(), keep=KeepPolicy.parse("first:1,last"))
        with trace([sink], record=False):
            train(4)
        assert sorted(p.name for p in tmp_path.glob("pass_*.dot")) == ["pass_1.dot", "pass_4.dot"]

    def test_the_pass_where_a_finding_first_shows_is_drawn(self, tmp_path):
        """A pass kept for its finding is drawn once its findings are in; repeats are not."""
        sink = DotSink(tmp_path, formats=(), keep=KeepPolicy.parse("first:1,findings"))
        with trace([sink], analyzers=[Diagnoser()], record=False):
            train(4, stale_from=3)
        assert sorted(p.name for p in tmp_path.glob("pass_*.dot")) == ["pass_1.dot", "pass_3.dot"]


class TestSessionSaysWhatItKept:
    def test_the_session_note_names_the_summarised_passes(self, tmp_path):
        """open_session's trace keeps the default passes and says which it summarised."""
        session = open_session(tmp_path, sinks=("json",), keep="first:1,last")
        with session.tracer:
            train(3)
        assert "passes 1 and 3" in session.kept_note and "1 pass is summarised" in session.kept_note

    def test_keep_all_says_nothing(self, tmp_path):
        """With every pass kept there is nothing to say."""
        session = open_session(tmp_path, sinks=("json",), keep="all")
        with session.tracer:
            train(3)
        assert session.kept_note is None

    def test_a_bad_keep_on_the_command_line_is_a_usage_error(self, tmp_path):
        """trace-backward --keep nonsense exits with 2 and names the word."""
        from typer.testing import CliRunner

        from autodiff_trace.frontends.cli import trace_backward

        script = tmp_path / "s.py"
        script.write_text("print('hi')\n")
        result = CliRunner().invoke(trace_backward, ["--keep", "nonsense", str(script)])
        assert result.exit_code == 2 and "nonsense" in result.output

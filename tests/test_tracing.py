"""The event stream, the tracer, and the JSON Lines log."""

import io
import json
import subprocess
import sys
import textwrap

import pytest

from autodiff_trace import (
    Diagnoser, JsonlSink, TraceFileError, Value, backward, load_events, read_header, trace, zero_grad,
)
from autodiff_trace.core.events import SCHEMA_VERSION, Finding, from_dict, to_dict
from autodiff_trace.sinks.recorder import Recorder
from trace_lines import line_objects


def worked_example():
    """y = (x + 2)^2 at x = 2, traced; returns (tracer, x, u, y)."""
    with trace() as t:
        x = Value(2.0, name="x")
        u = x + 2
        y = u ** 2
        y.backward()
    return t, x, u, y


class TestEvents:
    def test_worked_example_stream_in_order(self):
        """The worked example emits creations, then one pass: start, seed, firings and writes, finish."""
        t, x, u, y = worked_example()
        assert [e.kind for e in t.events] == [
            "node_created", "node_created", "node_created", "node_created",
            "backward_started", "grad_accumulated",
            "backward_fn_fired", "grad_accumulated",
            "backward_fn_fired", "grad_accumulated", "grad_accumulated",
            "backward_finished",
        ]
        assert [e.seq for e in t.events] == list(range(12))
        times = [e.t for e in t.events]
        assert times == sorted(times)

    def test_node_created_carries_op_value_parents_name_and_site(self):
        """node_created says what the node is and the user line that made it."""
        t, x, u, y = worked_example()
        created = [e for e in t.events if e.kind == "node_created"]
        assert [(e.op, e.value, e.name) for e in created] == [
            ("", 2.0, "x"), ("const", 2.0, "2"), ("add", 4.0, "u"), ("**2", 16.0, "y")]
        assert created[2].parents == (x.id, created[1].node)
        line = next(i for i, text in enumerate(open(__file__), 1) if "y = u ** 2" in text)
        assert created[3].site.endswith(f"test_tracing.py:{line}")
        assert created[3].function == "worked_example"

    def test_backward_started_lists_order_and_grads_before(self):
        """The pass announces its root, seed, visiting order and the grads it starts from."""
        t, x, u, y = worked_example()
        started = next(e for e in t.events if e.kind == "backward_started")
        assert (started.pass_no, started.root, started.seed) == (1, y.id, 1.0)
        constant = u.parents[1]
        assert started.order == (y.id, u.id, constant.id, x.id)
        assert started.grads_before == (0.0, 0.0, 0.0, 0.0)

    def test_grad_accumulated_records_the_chain_rule_step(self):
        """Each write says who sent it, local derivative, contribution, and grad before/after."""
        t, x, u, y = worked_example()
        writes = [e for e in t.events if e.kind == "grad_accumulated"]
        seed, to_u, to_x = writes[0], writes[1], writes[2]
        assert (seed.target, seed.fired_by, seed.contribution, seed.grad_after) == (y.id, None, 1.0, 1.0)
        assert (to_u.target, to_u.fired_by, to_u.local_grad, to_u.contribution) == (u.id, y.id, 8.0, 8.0)
        assert (to_x.target, to_x.fired_by, to_x.grad_before, to_x.grad_after) == (x.id, u.id, 0.0, 8.0)
        assert not any(w.replaced for w in writes)

    def test_backward_fn_fired_in_order_with_upstream(self):
        """y fires before u, each with the gradient it passes on."""
        t, x, u, y = worked_example()
        fired = [(e.node, e.upstream) for e in t.events if e.kind == "backward_fn_fired"]
        assert fired == [(y.id, 1.0), (u.id, 8.0)]

    def test_backward_finished_counts_the_pass(self):
        """The finish event counts firings and writes, with a duration."""
        t, *_ = worked_example()
        done = t.events[-1]
        assert (done.pass_no, done.fired, done.accumulated) == (1, 2, 4)
        assert done.duration >= 0

    def test_second_pass_shows_stale_grads_before(self):
        """Without zeroing, pass 2 starts from the grads pass 1 left."""
        with trace() as t:
            x = Value(5.0, name="x")
            z = x + x
            backward(z)
            z2 = x * x
            backward(z2)
        second = [e for e in t.events if e.kind == "backward_started"][1]
        assert second.pass_no == 2
        assert dict(zip(second.order, second.grads_before))[x.id] == 2.0

    def test_grads_zeroed_records_what_was_lost(self):
        """zero_grad emits the nodes reset and the grads they held."""
        x = Value(1.0)
        y = x * 3
        y.backward()
        with trace() as t:
            zero_grad([x, y])
        assert [(e.kind, e.nodes, e.grads_before) for e in t.events] == [
            ("grads_zeroed", (x.id, y.id), (3.0, 1.0))]

    def test_untraced_code_emits_nothing(self):
        """Outside ``with trace()`` the engine reports to no one."""
        with trace() as t:
            pass
        Value(1.0).exp().backward()
        assert t.events == []

    @pytest.mark.parametrize("event_index", range(12))
    def test_every_event_round_trips_through_a_dict(self, event_index):
        """to_dict then from_dict gives the same event back."""
        t, *_ = worked_example()
        event = t.events[event_index]
        assert from_dict(json.loads(json.dumps(to_dict(event)))) == event

    def test_non_finite_floats_survive_json(self):
        """NaN and infinities travel as strings and come back as floats."""
        with trace() as t:
            big = Value(1e308) * 10
            big.backward()
        created = t.events[2]
        restored = from_dict(json.loads(json.dumps(to_dict(created))))
        assert restored.value == float("inf")


class TestTracer:
    def test_sinks_receive_every_event_and_are_closed(self):
        """A sink gets the same events as t.events, then close()."""
        sink = Recorder()
        with trace([sink]) as t:
            (Value(1.0) * 2).backward()
        assert sink.events == t.events and sink.closed

    def test_failing_sink_is_detached_and_result_unchanged(self, capsys):
        """A sink that raises is reported once on stderr, detached, and the grads are still right."""
        class Broken:
            def handle(self, event):
                raise RuntimeError("disk on fire")

            def close(self):
                pass

        good = Recorder()
        with trace([Broken(), good]):
            x = Value(3.0)
            (x * x).backward()
        assert x.grad == 6.0
        err = capsys.readouterr().err
        assert err.count("Broken failed") == 1 and "disk on fire" in err
        assert good.events[-1].kind == "backward_finished"

    def test_failing_filter_is_detached_not_raised_into_user_code(self, capsys):
        """A filter that raises is reported and dropped; the events still reach the sinks."""
        sink = Recorder()
        with trace([sink], filters=[lambda e: 1 / 0]):
            x = Value(1.0, name="x")
        assert x.name == "x" and [e.kind for e in sink.events] == ["node_created"]
        assert "ZeroDivisionError" in capsys.readouterr().err

    def test_object_without_handle_is_refused(self):
        """trace([object()]) says what a sink needs."""
        with pytest.raises(TypeError, match=r"needs handle\(event\) and close\(\)"):
            trace([object()])

    def test_filters_drop_events_before_sinks(self):
        """A filter returning None drops the event, like a structlog processor."""
        only_writes = lambda e: e if e.kind == "grad_accumulated" else None  # noqa: E731
        sink = Recorder()
        with trace([sink], filters=[only_writes]):
            (Value(1.0) * 2).backward()
        assert {e.kind for e in sink.events} == {"grad_accumulated"}

    def test_nested_traces_both_listen_with_one_sequence(self):
        """An inner trace sees its block; the outer sees everything, numbered once."""
        with trace() as outer:
            Value(1.0)
            with trace() as inner:
                Value(2.0)
            Value(3.0)
        assert [e.value for e in outer.events] == [1.0, 2.0, 3.0]
        assert [e.value for e in inner.events] == [2.0]
        assert inner.events[0].seq == 1

    def test_analyzer_findings_follow_the_event_that_caused_them(self):
        """An analyzer's finding becomes a diagnostic event right after its cause, in every sink."""
        class FlagPasses:
            def handle(self, event):
                if event.kind == "backward_started":
                    return [Finding(event.pass_no, "demo", "info", "a pass began", (event.root,),
                                    ("y",), None, "nothing to do")]

            def close(self):
                return []

        sink = Recorder()
        with trace([sink], analyzers=[FlagPasses()]):
            (Value(1.0) * 2).backward()
        kinds = [e.kind for e in sink.events]
        at = kinds.index("backward_started")
        assert kinds[at + 1] == "diagnostic"
        assert sink.events[at + 1].message == "a pass began"
        assert [e.seq for e in sink.events] == sorted(e.seq for e in sink.events)

    def test_exception_mid_backward_still_closes_the_pass(self):
        """A pass cut short by an exception is finished on close, so the trace stays complete."""
        class StopAfterFirstFiring:
            def handle(self, event):
                if event.kind == "backward_fn_fired":
                    raise KeyboardInterrupt

            def close(self):
                pass

        sink = Recorder()
        with pytest.raises(KeyboardInterrupt):
            with trace([sink, StopAfterFirstFiring()]):
                ((Value(1.0) * 2) * 3).backward()
        assert sink.events[-1].kind == "backward_finished"


class TestJsonl:
    def test_round_trip_through_a_file(self, tmp_path):
        """Events written by JsonlSink load back equal, after a header with the schema version."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            x = Value(2.0, name="x")
            ((x + 2) ** 2).backward()
        assert load_events(path) == t.events
        header = read_header(path)
        assert (header["schema"], header["version"]) == ("autodiff_trace.events", SCHEMA_VERSION)

    def test_writes_to_a_text_stream(self):
        """The sink writes one JSON value per line to a StringIO: the header, then each event."""
        out = io.StringIO()
        sink = JsonlSink(out)
        with trace([sink]):
            Value(1.0, name="x")
        lines = line_objects(out.getvalue())
        assert lines[0]["kind"] == "header"
        assert lines[1] == {
            "kind": "node_created", "seq": 0, "t": lines[1]["t"], "node": lines[1]["node"],
            "op": "", "value": 1.0, "parents": [], "name": "x",
            "site": lines[1]["site"], "function": "test_writes_to_a_text_stream"}

    def test_crash_mid_script_leaves_a_readable_trace(self, tmp_path):
        """A script that dies after its first pass leaves that pass complete on disk."""
        script = tmp_path / "crash.py"
        path = tmp_path / "trace.jsonl"
        script.write_text(textwrap.dedent(f"""
            import os
            from autodiff_trace import Value, trace, JsonlSink
            t = trace([JsonlSink({str(path)!r})]).start()
            x = Value(2.0, name="x")
            (x * x).backward()
            os._exit(3)  # no close, no flush at exit
        """))
        done = subprocess.run([sys.executable, str(script)])
        assert done.returncode == 3
        events = load_events(path)
        assert events[-1].kind == "backward_finished"

    def test_malformed_line_is_named_by_number(self, tmp_path):
        """A broken line in the middle raises TraceFileError with its line number."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]):
            (Value(1.0) * 2).backward()
        lines = path.read_text().splitlines(keepends=True)
        lines[3] = "{not json\n"
        path.write_text("".join(lines))
        with pytest.raises(TraceFileError, match=r"trace.jsonl:4:"):
            load_events(path)

    def test_unknown_event_kind_is_an_error(self, tmp_path):
        """A line with an unknown kind names it and lists the known ones."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]):
            Value(1.0)
        with open(path, "a") as f:
            f.write('{"kind": "teleported"}\n')
        last = len(path.read_text().splitlines())
        with pytest.raises(TraceFileError, match=rf":{last}: unknown event kind 'teleported'"):
            load_events(path)

    def test_truncated_last_line_is_dropped_with_a_warning(self, tmp_path):
        """A last line cut mid-write (a crash) loses only itself."""
        path = tmp_path / "trace.jsonl"
        with trace([JsonlSink(path)]) as t:
            (Value(1.0) * 2).backward()
        text = path.read_text()
        path.write_text(text + text.splitlines()[2][:17])
        with pytest.warns(RuntimeWarning, match="cut short"):
            assert load_events(path) == t.events

    def test_wrong_schema_version_is_refused(self, tmp_path):
        """A trace from another schema version gets a clear error, not a misread."""
        path = tmp_path / "trace.jsonl"
        path.write_text(json.dumps({"kind": "header", "schema": "autodiff_trace.events", "version": 99}) + "\n")
        with pytest.raises(TraceFileError, match="schema version 99 is not supported"):
            load_events(path)

    @pytest.mark.parametrize("content,words", [
        ("", "the file is empty"),
        ("hello\n", "not an autodiff_trace trace"),
    ])
    def test_not_a_trace_is_refused(self, tmp_path, content, words):
        """Empty files and other files are named as such."""
        path = tmp_path / "trace.jsonl"
        path.write_text(content)
        with pytest.raises(TraceFileError, match=words):
            load_events(path)

    def test_missing_file_is_one_clear_error(self, tmp_path):
        """A path that does not exist says so."""
        with pytest.raises(TraceFileError, match="no such trace file"):
            load_events(tmp_path / "nope.jsonl")

    def test_unwritable_folder_is_one_clear_error(self, tmp_path):
        """A trace path whose folder cannot be made names the path and the fix."""
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(OSError, match="cannot write the trace to .*choose a writable folder"):
            JsonlSink(blocker / "trace.jsonl")


class TestOnePipeline:
    """Every event goes through filters, model, sinks, analyzers, in that order, for everyone."""

    def test_a_diagnoser_given_to_trace_reads_the_tracers_model(self):
        """trace(analyzers=[Diagnoser()]) binds the Diagnoser to the model the tracer folds."""
        d = Diagnoser()
        with trace(analyzers=[d]) as t:
            x = Value(2.0)
            y = x * x
            y.backward()
        assert d.model is t.model
        assert [e.pass_no for e in t.model.passes] == [1]

    def test_a_filtered_event_reaches_no_stage(self, capsys):
        """A filter that drops backward_started drops it for the model, the sinks and the analyzers."""
        seen = Recorder()

        def drop_start(event):
            return None if event.kind == "backward_started" else event

        with trace([seen], filters=[drop_start], analyzers=[Diagnoser()]) as t:
            x = Value(2.0)
            y = x * x
            y.backward()
        assert "detached" not in capsys.readouterr().err
        assert "backward_started" not in {e.kind for e in seen.events}
        assert t.model.passes == []

    def test_stages_that_read_the_model_share_one(self):
        """Two sinks and an analyzer that read the model all get the same one."""
        from autodiff_trace import DotSink, RichTreeSink

        tree, dots, d = RichTreeSink(io_console()), DotSink("unused", formats=()), Diagnoser()
        tracer = trace([tree, dots], analyzers=[d])
        assert tree.model is dots.model is d.model is tracer.model

    def test_no_model_is_folded_when_no_stage_reads_it(self):
        """A tracer with only a recorder folds nothing: the model costs nothing unused."""
        assert trace([Recorder()]).model is None

    def test_an_object_without_handle_and_close_is_refused(self):
        """A stage that is not a sink or analyzer is a TypeError naming it, before tracing starts."""
        with pytest.raises(TypeError, match="needs handle"):
            trace(analyzers=[object()])


def io_console():
    from rich.console import Console

    return Console(file=io.StringIO(), width=80, color_system=None)

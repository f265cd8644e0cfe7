"""Export and diff read runs of compact lines a column at a time: what they write is what
reading each event gives, byte for byte, wherever the traces part."""

from __future__ import annotations

import io

from autodiff_trace import Diagnoser, JsonlSink, Value, trace
from autodiff_trace.core.compact_runs import CompactRun
from autodiff_trace.core.tracefile import iter_events, load_events
from autodiff_trace.replay.tracediff import diff_traces
from autodiff_trace.views.chrome import chrome_events, write_chrome_trace

from streams import forgotten_zero_grad_trace


def _chain_trace(path, length: int = 300, odd_at: int = -1, factor: float = 1.001) -> None:
    """One pass over a chain of multiplications, one of them (``odd_at``) by another factor."""
    with trace([JsonlSink(path)], analyzers=[Diagnoser()]):
        x = Value(1.0, name="x")
        y = x
        for i in range(length):
            y = y * (factor * 2 if i == odd_at else factor)
        y.backward()


def _loop_trace(path, steps: int = 4) -> None:
    """Passes of a loop that forgets zero_grad, with auto-named nodes and findings."""
    forgotten_zero_grad_trace(path, steps, terms=80)


def _timeline(events) -> bytes:
    buffer = io.BytesIO()
    write_chrome_trace(events, buffer)
    return buffer.getvalue()


def _report(result) -> str:
    """The diff's report without its first two lines, which name the files or say "events"."""
    return "".join(result.format().splitlines(keepends=True)[2:])


class TestExportFromRuns:
    def test_runs_write_the_timeline_events_write(self, tmp_path):
        """A chain and a training loop give the same bytes read as runs as read as events."""
        for make in (_chain_trace, _loop_trace):
            path = tmp_path / f"{make.__name__}.jsonl"
            make(path)
            assert any(isinstance(item, CompactRun) for item in iter_events(path, runs=True))
            assert _timeline(iter_events(path, runs=True)) == _timeline(iter_events(path))

    def test_a_number_that_is_not_finite_in_a_run_is_written_as_its_event_is(self, tmp_path):
        """A NaN in a compact line (read by json, not orjson) takes the careful way, as its event does."""
        path = tmp_path / "trace.jsonl"
        _chain_trace(path, length=100)
        lines = path.read_bytes().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.startswith(b'["g",'))
        fields = lines[at][1:-2].split(b",")
        fields[5] = b"NaN"  # its contribution
        lines[at] = b"[" + b",".join(fields) + b"]\n"
        path.write_bytes(b"".join(lines))
        assert any(isinstance(item, CompactRun) for item in iter_events(path, runs=True))
        written = _timeline(iter_events(path, runs=True))
        assert written == _timeline(iter_events(path)) and b'"contribution":"NaN"' in written

    def test_records_of_runs_equal_records_of_events(self, tmp_path):
        """chrome_events takes runs too, record by record."""
        path = tmp_path / "trace.jsonl"
        _loop_trace(path, steps=2)
        assert list(chrome_events(iter_events(path, runs=True))) == list(chrome_events(iter_events(path)))


class TestDiffFromRuns:
    def test_a_trace_read_as_runs_matches_itself(self, tmp_path):
        """Every step agrees a run at a time, and the counts are those of its events."""
        path = tmp_path / "trace.jsonl"
        _loop_trace(path)
        result = diff_traces(path, path)
        assert result.same and result.a.count == len(load_events(path))
        assert _report(result) == _report(diff_traces(load_events(path), load_events(path)))

    def test_a_step_that_differs_inside_a_run_is_reported_as_from_events(self, tmp_path):
        """Two chains that part in the middle of a run give the report the events give."""
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        _chain_trace(a, odd_at=-1)
        _chain_trace(b, odd_at=150)
        result = diff_traces(a, b)
        assert not result.same and result.first is not None
        assert _report(result) == _report(diff_traces(load_events(a), load_events(b)))

    def test_numbers_equal_to_12_digits_still_match_inside_a_run(self, tmp_path):
        """A factor off in the 15th digit changes every step as read, yet not as compared."""
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        _chain_trace(a, length=40)
        _chain_trace(b, length=40, factor=1.001 + 4.4e-16)  # each product parts in the 16th digit
        result = diff_traces(a, b)
        assert result.first is None
        assert _report(result) == _report(diff_traces(load_events(a), load_events(b)))

    def test_one_pass_of_each_reads_runs_too(self, tmp_path):
        """Pass 1 of a loop against its pass 2: the report the events give."""
        path = tmp_path / "trace.jsonl"
        _loop_trace(path)
        assert _report(diff_traces(path, path, pass_no=(1, 2))) == \
            _report(diff_traces(load_events(path), load_events(path), pass_no=(1, 2)))

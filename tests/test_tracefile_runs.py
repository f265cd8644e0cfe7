"""Counting without events: runs of compact lines checked a column at a time give the
numbers the events give, and anything the quick readers would refuse is read line by line."""

from __future__ import annotations

import json
import re

import pytest

from autodiff_trace import TraceFileError
from autodiff_trace.core.compact_runs import CompactRun, plain_run, stretches
from autodiff_trace.core.tracefile import iter_events
from autodiff_trace.replay.summary import trace_stats

from streams import forgotten_zero_grad_trace

SITES = {0: ("s.py:3", "<module>")}
NODE = ["n", 2, "mul", 6.0, [1, 0], "z", 0]
FIRED = ["f", 1, 2, 1.0]
WRITE = ["g", 1, 1, 2, 3.0, 3.0, 0.0]


def _training_trace(path, steps: int = 8) -> None:
    """A loop that forgets zero_grad: passes of a few hundred compact lines, and findings."""
    forgotten_zero_grad_trace(path, steps, terms=100)


class TestCountsFromRuns:
    def test_stats_of_runs_equal_stats_of_events(self, tmp_path):
        """Every count, pass and finding is what reading each event gives, in the same order."""
        path = tmp_path / "trace.jsonl"
        _training_trace(path)
        assert any(isinstance(item, CompactRun) for item in iter_events(path, runs=True))
        assert trace_stats(iter_events(path))["findings"]
        assert json.dumps(trace_stats(iter_events(path, runs=True))) == json.dumps(trace_stats(iter_events(path)))

    def test_a_bad_field_among_good_lines_names_its_line(self, tmp_path):
        """A node id that is a string, deep in a block of good lines, fails as reading events fails."""
        path = tmp_path / "trace.jsonl"
        _training_trace(path)
        lines = path.read_bytes().splitlines()
        at = max(i for i, line in enumerate(lines) if line.startswith(b'["g",'))
        lines[at] = re.sub(rb'^\["g",(\d+),', rb'["g","\1",', lines[at])  # its pass number a string
        path.write_bytes(b"\n".join(lines) + b"\n")
        with pytest.raises(TraceFileError) as by_events:
            trace_stats(iter_events(path))
        with pytest.raises(TraceFileError) as by_runs:
            trace_stats(iter_events(path, runs=True))
        assert str(by_runs.value) == str(by_events.value)
        assert f":{at + 1}: " in str(by_runs.value)

    def test_old_versions_are_read_as_events(self):
        """A version 3 trace holds its seq in each array: it is read event by event, as before."""
        path = "tests/old_traces/forgot_zero_grad_version3.jsonl"
        assert not any(isinstance(item, CompactRun) for item in iter_events(path, runs=True))


class TestPlainRun:
    def test_good_lines_come_back_by_kind_in_order(self):
        """The arrays of each kind keep their order; the kinds come in the order first seen."""
        rows = [WRITE, NODE, FIRED, [*WRITE[:6], 5.0]]
        run = plain_run(rows, SITES, 0.5)
        assert list(run.rows) == ["g", "n", "f"]
        assert run.rows["g"] == [WRITE, [*WRITE[:6], 5.0]] and run.count == 4 and run.t == 0.5

    @pytest.mark.parametrize("row", [
        ["n", True, "mul", 6.0, [1, 0], "z", 0],  # a bool is not an id
        ["n", -1, "mul", 6.0, [1, 0], "z", 0],  # nor a negative number
        ["n", 2, "mul", 6, [1, 0], "z", 0],  # an int value would read back as a float
        ["n", 2, "mul", 6.0, [1, 0.5], "z", 0],  # a parent that is not an id
        ["n", 2, "mul", 6.0, [1, 0], "z", 9],  # a site no site line defined
        ["n", 2, "mul", 6.0, [1, 0], "z", "s.py:3", "<module>"],  # a site written out: read one by one
        ["f", 1, 2, "1.0"],
        ["f", 1, 2],
        ["g", 1, 1, 2, 3.0, 3.0, 0.0, 3.0, 1],  # replaced must be true or false
        ["g", 1, 1, 2.0, 3.0, 3.0, 0.0],
        ["x", 1],
        [],
        [["n"], 1],
    ])
    def test_a_line_the_quick_readers_refuse_refuses_the_run(self, row):
        """One line that is not plainly valid sends the whole run to the careful reader."""
        assert plain_run([NODE, row, WRITE], SITES, 0.0) is None


class TestStretches:
    def test_long_stretches_of_arrays_are_runs_and_the_rest_is_read_line_by_line(self):
        """64 arrays in a row make a run; shorter stretches stay with the lines around them."""
        values = [{"t": 1}] + [["f", 1, 2, 1.0]] * 64 + [{"t": 2}] + [["f", 1, 2, 1.0]] * 3 + [None]
        parts = list(stretches(values))
        assert [(is_run, len(part)) for is_run, part in parts] == [(False, 1), (True, 64), (False, 5)]
        assert [value for _, part in parts for value in part] == values

    def test_a_block_of_arrays_only_is_one_run(self):
        """The common block, nothing but arrays, is one run as it is."""
        values = [["f", 1, 2, 1.0]] * 3
        assert list(stretches(values)) == [(True, values)]

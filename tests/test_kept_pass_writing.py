"""A pass the keep policy is known to keep goes into trace.jsonl as it is traced, not
through the spool, and the trace reads the same as one written through it."""

from __future__ import annotations

from autodiff_trace import Value, trace
from autodiff_trace.analysis.diagnoser import Diagnoser
from autodiff_trace.core.keep import KeepPolicy
from autodiff_trace.core.tracefile import iter_events
from autodiff_trace.sinks.jsonl import JsonlSink


def chain(steps: int, ops: int) -> None:
    """``steps`` passes over a chain of ``ops`` multiplications of one leaf, grads zeroed."""
    x = Value(1.0, name="x")
    for _ in range(steps):
        y = x
        for _ in range(ops):
            y = y * 1.0000001
        x.grad = 0.0
        y.backward()


class FileSizes:
    """A sink after the trace file's: the file's size as each batch of events goes out,
    and where the pass began and ended among them."""

    def __init__(self, path) -> None:
        self.path, self.sizes, self.started, self.finished = path, [], None, None

    def handle(self, event) -> None:
        if event.kind == "backward_started":
            self.started = len(self.sizes)
        elif event.kind == "backward_finished":
            self.finished = len(self.sizes)

    def handle_batch(self, first_seq: int, t: float, batch: list) -> None:
        self.sizes.append(self.path.stat().st_size)

    def close(self) -> None:
        pass


def written(path, keep: str, steps: int = 3, ops: int = 40) -> tuple:
    """The events read back from a trace of :func:`chain` kept by ``keep``, and the sink."""
    sink = JsonlSink(path, keep=KeepPolicy.parse(keep))
    with trace([sink], analyzers=[Diagnoser()], record=False):
        chain(steps, ops)
    return [(e.kind, e.seq, getattr(e, "pass_no", None)) for e in iter_events(path)], sink


class TestKeptPassWriting:
    def test_a_kept_pass_is_in_the_file_before_it_ends(self, tmp_path):
        """Once a kept pass has begun, its events reach the file while it runs: the file
        grows batch by batch before the pass's backward_finished."""
        path = tmp_path / "trace.jsonl"
        sink = JsonlSink(path, keep=KeepPolicy.parse("first:1,last"))
        probe = FileSizes(path)
        with trace([sink, probe], record=False):
            y = Value(1.0, name="x")
            for _ in range(3000):
                y = y * 1.0000001
            y.backward()
        in_pass = probe.sizes[probe.started:probe.finished]
        assert len(in_pass) > 2 and in_pass[-1] > in_pass[0]
        assert sink.kept == [1] and sink.summarised == []

    def test_a_pass_not_yet_known_to_be_kept_waits_in_the_spool(self, tmp_path):
        """Under ``last`` alone, a pass's fate is known only when a later one begins: its
        events reach the file only then."""
        path = tmp_path / "trace.jsonl"
        probe = FileSizes(path)
        with trace([JsonlSink(path, keep=KeepPolicy.parse("last")), probe], record=False):
            y = Value(1.0, name="x")
            for _ in range(3000):
                y = y * 1.0000001
            y.backward()
        in_pass = probe.sizes[probe.started:probe.finished]
        assert len(in_pass) > 2 and in_pass[-1] == in_pass[0]

    def test_the_trace_reads_as_one_written_whole(self, tmp_path):
        """Kept and summarised passes read back in order, as with every pass kept, less the
        summarised passes' events."""
        everything, _ = written(tmp_path / "all.jsonl", "all")
        kept, sink = written(tmp_path / "kept.jsonl", "first:1,last")
        assert sink.kept == [1, 3] and sink.summarised == [2]
        summary = [item for item in kept if item[0] == "pass_summary"]
        assert [item[2] for item in summary] == [2]
        in_kept_passes = [item for item in everything if item[2] in (1, 3)]
        assert [item for item in kept if item[2] in (1, 3)] == in_kept_passes
        seqs = [item[1] for item in kept]
        assert seqs == sorted(seqs)

    def test_a_pass_kept_for_its_place_after_a_summarised_one_is_still_whole(self, tmp_path):
        """A pass that waits behind an unsettled one (``last``) is spooled and copied whole."""
        kept, sink = written(tmp_path / "trace.jsonl", "last", steps=4)
        assert sink.kept == [4] and sink.summarised == [1, 2, 3]
        assert [item[2] for item in kept if item[0] == "backward_started"] == [4]
        seqs = [item[1] for item in kept]
        assert seqs == sorted(seqs)

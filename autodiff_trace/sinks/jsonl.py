"""JSON Lines: a header line, then a line per event (the format is :mod:`autodiff_trace.core.tracefile`).

Lines are written in batches, not one ``write`` per event; the tracer may hand the
hot events over as a captured batch of tuples (``handle_batch``), written in one go as
compact lines, each new site first as a site line (:mod:`autodiff_trace.core.compact`). The file is flushed at the
end of every backward pass and on close, so a script that crashes leaves a valid
prefix of its trace (at worst a cut last line, which the reader tolerates with a
warning).

With a keep policy (:class:`~autodiff_trace.core.keep.KeepPolicy`) a long run stays
small: each pass, with the nodes made since the pass before, is one *segment*, held
in a spool file until it is known whether the policy keeps it. A kept segment is
copied into the trace whole (under ``findings``, a pass where a finding first shows);
any other becomes one ``pass_summary`` line, and only
its leaves (``node_created`` with op ``""``), findings and site lines stay, so the nodes
and sites a later kept pass names are still known.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from operator import itemgetter
from pathlib import Path
from typing import IO, List, Optional, Union

from ..core.captured import NODE, forget_lines, lines_of
from ..core.compact import SiteNumbers
from ..core.events import Event, PassSummary
from ..core.keep import KeepPolicy, NewFindings
from ..core.tracefile import ENCODERS, encode_event, encode_line, header_line
from ._errors import cannot_write

__all__ = ["JsonlSink"]

BATCH = 4096  # lines joined into one write
SPOOL_IN_MEMORY = 16 * 1024 * 1024  # a segment's bytes held in memory before its spool goes to disk
_kind_of, _op_of = itemgetter(0), itemgetter(2)  # of a captured tuple (core/captured.py)


class JsonlSink:
    """Write events to ``path`` (or an open text file) as JSON Lines.

    Args:
        target: a path (its folder is created) or a writable text file.
        metadata: extra keys for the header line (script name, argv, ...).
        keep: which passes to write in full, as a :class:`KeepPolicy` or its words
            (``"first:2,findings,last,small:2000"``); None (or ``"all"``) writes every event.

    After ``close``, ``kept`` and ``summarised`` list the pass numbers written in full
    and in summary.
    """

    def __init__(self, target: Union[str, os.PathLike, IO[str]], *, metadata: Optional[dict] = None,
                 keep: Union[KeepPolicy, str, None] = None):
        if isinstance(target, (str, os.PathLike)):
            path = Path(target)
            self.where = path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "wb")
            except OSError as exc:
                raise cannot_write(f"the trace to {path}", exc) from None
            self._owns_file = True
            self._write = self._file.write
            spool_dir: Optional[Path] = path.parent
        else:  # an open text file, such as io.StringIO in tests
            self.where = getattr(target, "name", None) or type(target).__name__
            self._file = target
            self._owns_file = False
            self._write = lambda data: target.write(data.decode())
            spool_dir = None
        keep = KeepPolicy.parse(keep) if isinstance(keep, str) else keep
        self.keep = keep
        self.kept: List[int] = []
        self.summarised: List[int] = []
        self._batch: List[bytes] = []
        self._sites = SiteNumbers()  # the sites this file's site lines have defined
        self._next_seq = 0  # a compact line leaves its seq out: the next one it may stand for
        self._segments = None if keep is None or keep.keeps_everything else _Segments(self, keep, spool_dir)
        self.closed = False
        try:
            self._write(encode_line(header_line(metadata or {})))
            self._file.flush()
        except OSError as exc:
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

    def handle(self, event: Event) -> None:
        self._next_seq = event.seq + 1
        try:
            if self._segments is not None:
                self._segments.add(event, ENCODERS[event.__class__](event))
                return
            batch = self._batch
            batch.append(ENCODERS[event.__class__](event))
            if event.kind == "backward_finished":
                self._write(b"".join(batch))
                batch.clear()
                self._file.flush()
                self.kept.append(event.pass_no)
            elif len(batch) >= BATCH:
                self._write(b"".join(batch))
                batch.clear()
        except OSError as exc:  # a full disk: say so once; the tracer detaches this sink
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

    def handle_batch(self, first_seq: int, t: float, batch: list) -> None:
        """Write a batch of captured events (:mod:`autodiff_trace.core.captured`)."""
        numbered = first_seq != self._next_seq  # events this file does not hold came between
        self._next_seq = first_seq + len(batch)
        try:
            if self._segments is not None:
                self._segments.add_batch(first_seq, t, batch, numbered)
                return
            if self._batch:
                self._write(b"".join(self._batch))
                self._batch.clear()
            lines = lines_of(first_seq, t, batch, self._sites, numbered=numbered)
            self._write(self._sites.take_new() + lines)
        except OSError as exc:  # a full disk: say so once; the tracer detaches this sink
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

    def flush(self) -> None:
        """Write out what is buffered (the tracer calls it before the process forks)."""
        if not self.closed:
            if self._batch:
                self._write(b"".join(self._batch))
                self._batch.clear()
            self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._segments is not None:
                self._segments.finish()
            self.flush()
        except OSError as exc:
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None
        self.closed = True
        forget_lines()  # the last batch written, kept for a record this trace may not make
        if self._owns_file:
            self._file.close()

    def _give_up(self) -> None:
        """After a failed write: close our file without trying to write it again."""
        self.closed = True
        if self._segments is not None:
            self._segments.discard()
        if self._owns_file:
            try:
                self._file.close()
            except OSError:
                pass  # the same failure again, while flushing what could not be written


class _Segment:
    """One pass and the events since the pass before it, spooled until it is settled; or,
    once it is known to be written whole next (:meth:`_Segments.go_direct`), written
    straight into the trace."""

    __slots__ = ("spool", "write", "direct", "batch", "lines", "made", "kept_lines", "started", "finished",
                 "findings", "known_kept")

    def __init__(self, spool_dir: Optional[Path]) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=spool_dir)
        self.write = self.spool.write  # where its lines go: the spool, or the trace itself
        self.direct = False
        self.batch: List[bytes] = []
        self.lines = self.made = 0
        self.kept_lines: list = []  # (seq, line) of the leaves and findings: kept in any case
        self.started = None  # (pass_no, root, nodes reached) of its backward_started: not its long lists
        self.finished = None  # its backward_finished event
        self.findings = False
        self.known_kept = False

    @property
    def pass_no(self) -> Optional[int]:
        return None if self.started is None else self.started[0]

    def spill(self) -> None:
        if self.batch:
            self.write(b"".join(self.batch))
            self.batch.clear()


class _Segments:
    """Settles segments in order: those the policy keeps go into the trace whole, the
    others as one ``pass_summary`` line. The last ``keep.last`` wait for the end."""

    def __init__(self, sink: JsonlSink, keep: KeepPolicy, spool_dir: Optional[Path]) -> None:
        self.sink, self.keep, self.spool_dir = sink, keep, spool_dir
        self.current = _Segment(spool_dir)
        self.new_findings = NewFindings()
        self.waiting: deque = deque()  # settled segments whose fate is not known yet, in order

    def add(self, event: Event, line: bytes) -> None:
        segment = self.current
        kind = event.kind
        if segment.finished is not None and kind != "diagnostic":  # the findings after a pass are in
            self._settle(segment)
            segment = self.current = _Segment(self.spool_dir)
        segment.batch.append(line)
        segment.lines += 1
        if kind == "node_created":
            segment.made += 1
            if event.op == "":
                segment.kept_lines.append((event.seq, line))
        elif kind == "diagnostic":
            segment.findings = self.new_findings.is_new(event) or segment.findings
            segment.kept_lines.append((event.seq, line))
        elif kind == "backward_started":
            segment.started = (event.pass_no, event.root, len(event.order))
            if not self.waiting and self.keep.keeps_early(event.pass_no, False, len(event.order)):
                self.go_direct(segment)
        elif kind == "backward_finished":
            segment.finished = event
        if len(segment.batch) >= BATCH or segment.finished is event:
            segment.spill()

    def add_batch(self, first_seq: int, t: float, batch: list, numbered: bool) -> None:
        """A captured batch: hot events only, so never a pass's start or end. A segment
        kept whole follows, in the file, the last event of the one before it, so its
        compact lines leave their seq out as in a trace written whole."""
        segment = self.current
        if segment.finished is not None:
            self._settle(segment)
            segment = self.current = _Segment(self.spool_dir)
        segment.spill()
        sites = self.sink._sites
        lines = lines_of(first_seq, t, batch, sites, numbered=numbered)
        defined = sites.take_new()
        segment.write(defined + lines)
        segment.lines += len(batch)
        if segment.direct:  # written whole: no summary will need its leaves or counts
            return
        if defined:  # kept in any case: a later pass's nodes may name these sites
            segment.kept_lines.append((-1, defined))
        segment.made += list(map(_kind_of, batch)).count(NODE)
        ops = list(map(_op_of, batch))  # a node's op; the others hold an id there, never ""
        if "" in ops:  # the leaves, kept with their seq
            segment.kept_lines += [(first_seq + i, lines_of(first_seq + i, t, [batch[i]], sites, numbered=True))
                                   for i, op in enumerate(ops) if op == ""]

    def go_direct(self, segment: _Segment) -> None:
        """``segment`` is known to be kept and no segment waits before it, so it will be the
        next written whole: what it spooled goes into the trace now, and its later lines
        straight after, with no second copy through the spool (a long pass's most bytes)."""
        segment.direct = True
        self._write_whole(segment)
        segment.write = self.sink._write

    def _settle(self, segment: _Segment) -> None:
        segment.spill()
        if segment.direct:  # already in the trace, in order: nothing waits before it
            if segment.pass_no is not None:
                self.sink.kept.append(segment.pass_no)
            self.sink._file.flush()
            return
        segment.known_kept = segment.pass_no is None or segment.finished is None or \
            self.keep.keeps_early(segment.pass_no, segment.findings,
                                  segment.started[2] if segment.started is not None else None)
        self.waiting.append(segment)
        passes = sum(1 for s in self.waiting if s.pass_no is not None)
        while self.waiting:
            first = self.waiting[0]
            if first.known_kept:
                self._write_whole(self.waiting.popleft())
                passes -= first.pass_no is not None
            elif passes > self.keep.last:  # a later pass exists: this one is not among the last
                self._write_summary(self.waiting.popleft())
                passes -= 1
            else:
                break
        self.sink._file.flush()

    def finish(self) -> None:
        """The trace ended: the segments still waiting hold the last passes."""
        if self.current.lines:
            self._settle(self.current)
        self.current = None
        while self.waiting:
            self._write_whole(self.waiting.popleft())

    def discard(self) -> None:
        for segment in [self.current, *self.waiting]:
            if segment is not None:
                segment.spool.close()
        self.waiting.clear()

    def _write_whole(self, segment: _Segment) -> None:
        sink = self.sink
        segment.spill()
        segment.spool.seek(0)
        read, rest = segment.spool.read, b""
        while True:  # a megabyte at a time, each write ending at a line's end
            chunk = read(1 << 20)
            if not chunk:
                break
            end = chunk.rfind(b"\n") + 1
            if end:
                sink._write(rest + chunk[:end] if rest else chunk[:end])
                rest = chunk[end:]
            else:
                rest += chunk
        if rest:
            sink._write(rest)
        segment.spool.close()
        if segment.pass_no is not None and not segment.direct:
            sink.kept.append(segment.pass_no)

    def _write_summary(self, segment: _Segment) -> None:
        sink = self.sink
        segment.spool.close()
        (pass_no, root, reached), finished = segment.started, segment.finished
        summary = PassSummary(finished.seq, finished.t, pass_no, root, reached,
                              segment.made, segment.lines, finished.fired, finished.accumulated,
                              finished.duration)
        lines = sorted([*segment.kept_lines, (summary.seq, encode_event(summary))],
                       key=_first)
        sink._write(b"".join(line for _, line in lines))
        sink.summarised.append(pass_no)


def _first(pair: tuple) -> int:
    return pair[0]


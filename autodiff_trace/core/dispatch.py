"""How the tracer stamps events and delivers them: the second half of :class:`~.tracer.Tracer`.

An event is stamped (its ``seq`` and ``t``) once, then delivered to the tracer that
received the report and to every tracer around it: filters, model, record, sinks,
then the analyzers, whose findings are queued and delivered after the event that
caused them. A thread whose turn has not come (another thread's pass is going out)
waits in line (:mod:`.turns`).

The hot events may instead be captured as plain tuples (:mod:`.captured`) and go out
to the sinks a batch at a time; a batch always goes out before the next event stamped
singly, so ``seq`` keeps the order in which things happened. Before the sinks, the model
and the analyzers read the batch: a run at a time, column-wise (:mod:`.runs`), and one by
one the events an analyzer names (those that may complete a finding); a finding sends the
batch out up to the event that caused it, then follows it. An analyzer that needs the
engine's call stack at an event watches each tuple as it is captured. With an analyzer
that cannot read runs, the model and the analyzers read each captured event at once.
"""

from __future__ import annotations

import sys
import time
from threading import get_ident
from typing import Callable, Iterable, Optional

from .captured import CAPTURED, CapturedBatch
from .runs import ReadsRuns, Run, fold_run
from .events import BackwardFinished, BackwardStarted, Diagnostic, Event

__all__ = ["Dispatch"]

_now = time.perf_counter
_new = tuple.__new__


class Dispatch:
    """The delivery half of the tracer; :class:`~.tracer.Tracer` holds the state it uses
    (``_clock``, ``_threads``, ``_outer``, the stages, ``_queue``, the capture list)."""

    _reads_captured = False  # do the model or analyzers read each captured event at once?
    _reads_runs = False  # do they read each captured batch, a run at a time?

    def _emit(self, cls, *fields, on_emit: Optional[Callable] = None) -> None:
        """Send the event, or hold it while another thread's pass goes out. The caller holds
        ``self._clock.lock``: each report takes it once."""
        clock = self._clock
        thread = get_ident()
        state = self._threads.get(thread)
        if state is not None and state.held is not None:  # a line's nodes go out first
            self._release(state)
        if clock.must_wait(thread):  # another thread's pass is going out: wait in line
            clock.waiting.setdefault(thread, []).append((self, cls, fields, _now(), on_emit))
            return
        self._send(cls, fields, _now(), on_emit, thread)
        if cls is BackwardFinished:
            self._let_waiting_go()

    def _send(self, cls, fields: tuple, t: float, on_emit: Optional[Callable], thread: int) -> None:
        """Stamp the event and deliver it to this tracer and every tracer around it."""
        tracer = self
        while tracer is not None:  # what was captured before this event goes out first
            if tracer._captured:
                tracer._flush_captured()
            tracer = tracer._outer
        clock = self._clock
        if cls is BackwardStarted:
            clock.streaming = thread
        elif cls is BackwardFinished:
            clock.streaming = None
        clock.last_t = t = t - clock.t0
        event = _new(cls, (clock.seq, t, *fields))  # cls(...) without its Python __new__
        clock.seq += 1
        self._dispatch(event)
        if self._captured is not None and self._reads_runs:  # an analyzer may watch from now on
            self._capture = self._capturer()
        if on_emit is not None:
            on_emit(event)

    def _dispatch(self, event: Event) -> None:
        """Deliver a stamped event to this tracer and every tracer around it."""
        tracer = self
        while tracer is not None:  # nested tracers: every one that is listening
            if tracer.analyzers:
                tracer._receive(event)
            else:
                tracer._deliver(event)
            tracer = tracer._outer

    def _flush_captured(self) -> None:
        """Send the captured events as one batch, read first by the model and the analyzers
        when they read runs. The caller holds ``self._clock.lock``."""
        batch = self._captured
        if not batch:
            return
        self._captured = []
        self._capture = self._capturer()
        if self._reads_runs:
            self._read_captured(batch)
        else:
            self._send_captured(batch)

    def _send_captured(self, batch: list) -> None:
        """Send captured events to the sinks: numbered from the clock's next ``seq``, timed
        as the event stamped before them (a compact trace line's time is that of the line
        before it)."""
        clock = self._clock
        first_seq, t = clock.seq, clock.last_t
        clock.seq = first_seq + len(batch)
        for sink in self.sinks:
            try:
                sink.handle_batch(first_seq, t, batch)
            except Exception as exc:
                self.sinks = self._detach(self.sinks, sink, CAPTURED[batch[0][0]].kind, exc)
        if self.record:
            self._unread.append(CapturedBatch(first_seq, t, batch))

    def _read_captured(self, batch: list) -> None:
        """The model and the analyzers read the batch, then the sinks take it: the events an
        analyzer names one by one, the runs between them column-wise. After a finding, the
        batch goes out up to the event that caused it, then the finding follows."""
        clock = self._clock
        whole = Run(batch, 0, len(batch), clock.seq, clock.last_t)
        singles = set()
        for analyzer in self.analyzers:
            try:
                singles.update(analyzer.singles(whole))
            except Exception as exc:
                self.analyzers = self._detach(self.analyzers, analyzer, whole.event(0).kind, exc)
        if not singles:
            self._fold_run(whole)
            self._send_captured(batch)
            return
        sent = start = 0  # batch[:sent] has gone out; batch[:start] has been read
        for single in sorted(singles):
            if single > start:
                self._fold_run(Run(batch, start, single, clock.seq + start - sent, clock.last_t))
            raw = batch[single]
            event = _new(CAPTURED[raw[0]], (clock.seq + single - sent, clock.last_t) + raw[1:])
            if self.model is not None:
                self.model.handle(event)
            for analyzer in self.analyzers:
                try:
                    found = analyzer.read_captured(raw, event)
                    if found:  # the batch goes out up to its cause, then the findings follow
                        if sent <= single:
                            self._send_captured(batch[sent:single + 1])
                            sent = single + 1
                        self._emit_findings(found)
                except Exception as exc:
                    self.analyzers = self._detach(self.analyzers, analyzer, event.kind, exc)
            if self._queue and not self._dispatching:
                self._drain_now()
            start = single + 1
        if start < len(batch):
            self._fold_run(Run(batch, start, len(batch), clock.seq + start - sent, clock.last_t))
        if sent < len(batch):
            self._send_captured(batch[sent:])

    def _fold_run(self, run: Run) -> None:
        """The model, then every analyzer, reads a run of captured events."""
        if self.model is not None:
            fold_run(self.model, run)
        for analyzer in self.analyzers:
            try:
                analyzer.read_run(run)
            except Exception as exc:
                self.analyzers = self._detach(self.analyzers, analyzer, run.event(0).kind, exc)

    def _begin_capture(self) -> None:
        """Capture the hot events from now on: appended as tuples; the model and the
        analyzers read them a batch at a time when every analyzer reads runs
        (:class:`~.runs.ReadsRuns`), else each at once (:meth:`_capture_read`)."""
        self._captured = []
        self._reads_runs = all(isinstance(analyzer, ReadsRuns) for analyzer in self.analyzers) \
            and (self.model is not None or bool(self.analyzers))
        self._reads_captured = not self._reads_runs and (self.model is not None or bool(self.analyzers))
        self._capture = self._capturer()

    def _capturer(self) -> Callable[[tuple], None]:
        """What takes each captured tuple now: the bound append, unless an analyzer watches
        the tuples as they come (it reads the engine's call stack at some of them)."""
        captured = self._captured
        if self._reads_captured:
            return self._capture_read
        watches = [watch for watch in (getattr(analyzer, "watch", None) for analyzer in self.analyzers)
                   if watch is not None] if self._reads_runs else []
        append = captured.append
        if not watches:
            return append
        if len(watches) == 1:
            watch = watches[0]

            def capture(raw: tuple) -> None:
                append(raw)
                watch(raw)
            return capture

        def capture_all(raw: tuple) -> None:
            append(raw)
            for each in watches:
                each(raw)
        return capture_all

    def _capture_read(self, raw: tuple) -> None:
        """Capture one hot event and hand it now to the model and the analyzers, numbered and
        timed as the batch will give it. The caller holds ``self._clock.lock``."""
        captured = self._captured
        captured.append(raw)
        clock = self._clock
        event = _new(CAPTURED[raw[0]], (clock.seq + len(captured) - 1, clock.last_t) + raw[1:])
        if self.model is not None:
            self.model.handle(event)
        for analyzer in self.analyzers:
            try:
                found = analyzer.handle(event)
                if found:  # the batch goes out up to its cause, then the findings follow
                    self._flush_captured()
                    self._emit_findings(found)
            except Exception as exc:
                self.analyzers = self._detach(self.analyzers, analyzer, event.kind, exc)
        if self._queue and not self._dispatching:
            self._drain_now()

    def _read_events(self) -> list:
        """Every event recorded so far, as event objects (captured ones made now)."""
        if self._captured:
            self._flush_captured()
        if self._unread:
            unread, self._unread = self._unread, []
            for item in unread:
                if item.__class__ is CapturedBatch:
                    self._events.extend(item.events())
                else:
                    self._events.append(item)
        return self._events

    def _let_waiting_go(self) -> None:
        """Between passes, send what waiting threads held back, a thread at a time."""
        clock = self._clock
        while clock.streaming is None and clock.waiting:
            thread = next(iter(clock.waiting))
            for tracer, cls, fields, t, on_emit in clock.waiting.pop(thread):
                tracer._send(cls, fields, t, on_emit, thread)

    def _stamp(self, cls, *fields) -> Event:
        """The event with the next sequence number and the time since the trace began."""
        clock = self._clock
        clock.last_t = t = _now() - clock.t0
        event = cls(clock.seq, t, *fields)
        clock.seq += 1
        return event

    def _receive(self, event: Event) -> None:
        """Deliver the event, then hand it to the analyzers. Findings, and events sent while
        one is being delivered, are queued: every sink sees them after the event that caused
        them, never in the middle of another event's delivery."""
        if self._dispatching:
            self._queue.append(event)
            return
        self._dispatching = True
        try:
            event = self._deliver(event)
            if event is not None:  # dropped by a filter: for the analyzers too
                self._analyze(event)
            if self._queue:
                self._drain()
        finally:
            self._dispatching = False

    def _drain_now(self) -> None:
        """Deliver the queued findings and events now: no delivery is under way."""
        self._dispatching = True
        try:
            self._drain()
        finally:
            self._dispatching = False

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            event = self._deliver(queue.popleft())
            if event is not None:
                self._analyze(event)

    def _analyze(self, event: Event) -> None:
        """Hand a delivered event to every analyzer; queue what they find."""
        for analyzer in self.analyzers:
            try:
                found = analyzer.handle(event)
                if found:
                    self._emit_findings(found)
            except Exception as exc:
                self.analyzers = self._detach(self.analyzers, analyzer, event.kind, exc)

    def report_finding(self, finding) -> None:
        """Deliver a finding made outside the analyzers (an adapter's own check) as a
        ``diagnostic`` event, stamped and sent like every other event."""
        with self._clock.lock:
            self._emit(Diagnostic, finding.pass_no, finding.finding, finding.severity, finding.message,
                       tuple(finding.nodes), tuple(finding.names), finding.site, finding.hint)

    def _emit_findings(self, findings: Optional[Iterable]) -> None:
        for f in findings or ():
            self._queue.append(self._stamp(Diagnostic, f.pass_no, f.finding, f.severity, f.message,
                                           tuple(f.nodes), tuple(f.names), f.site, f.hint))

    def _deliver(self, event: Event) -> Optional[Event]:
        """Filters, model, record, sinks; the event as the filters left it, or None."""
        for keep in self.filters:
            try:
                event = keep(event)
            except Exception as exc:
                self.filters = self._detach(self.filters, keep, event.kind, exc)
            if event is None:
                return None
        if self.record:
            if self._unread:  # after captured batches not yet read: keep the order
                self._unread.append(event)
            else:
                self._events.append(event)
        if self.model is not None:
            self.model.handle(event)
        for sink in self.sinks:
            try:
                sink.handle(event)
            except Exception as exc:
                self.sinks = self._detach(self.sinks, sink, event.kind, exc)
        return event

    def _detach(self, group: list, member, kind: str, exc: Exception) -> list:
        """Report a failing sink or analyzer; the group without it (a new list, so a
        loop over the old one finishes safely)."""
        print(f"autodiff_trace: {type(member).__name__} failed on a {kind} event "
              f"({type(exc).__name__}: {exc}); it is detached and the trace goes on without it",
              file=sys.stderr)
        return [m for m in group if m is not member]

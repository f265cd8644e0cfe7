"""The tracer: engines report what happens, the tracer stamps it and hands it on.

``with trace(sinks=[...]) as t:`` turns tracing on for the block. Engines call the
tracer's report methods (``node_created``, ``backward_started``, ...) with plain ids
and numbers. Each event then goes through one pipeline, in this order:

1. the filters, each of which returns the event or None to drop it for everyone;
2. the model (:class:`TraceModel`), folded once for every stage that reads it;
3. ``events`` (when recording), then every sink;
4. the analyzers, whose findings become ``diagnostic`` events that take the same
   path once the event that caused them has been delivered.

When no filter reads events one by one and every sink takes batches (as
:class:`~autodiff_trace.sinks.jsonl.JsonlSink` does), the hot events are captured as
plain tuples and go out to the sinks in batches (:mod:`.captured`), while the model and
the analyzers still read each one as it comes; ``events`` makes their event objects
when it is read.

A stage that reads the model declares ``bind(model)``; the tracer calls it once, with
its own model, so stages never fold a model of their own while a tracer feeds them.
A sink, filter or analyzer that raises is reported once and detached: it can never
change the engine's result.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from threading import get_ident
from typing import Callable, Dict, List, Optional, Sequence

from .active import _stack, active_tracer, announce, follow_active
from .captured import CAPTURE_BATCH, FIRED, WRITE
from .dispatch import Dispatch, _new, _now
from .events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, Event, GradAccumulated, GradsZeroed,
)
from .model import TraceModel
from .node_reports import NodeReports
from .stages import Analyzer, ReadsModel, Sink, TakesBatches
from .turns import PassCounts, ThreadState, Turns

__all__ = ["Sink", "Analyzer", "ReadsModel", "Tracer", "trace", "active_tracer", "follow_active"]


class Tracer(NodeReports, Dispatch):
    """Receives reports from engines, and sends events to its sinks.

    Args:
        sinks: objects with ``handle(event)`` and ``close()``.
        analyzers: objects whose ``handle(event)`` returns findings.
        filters: callables taking an event and returning it, or None to drop it
            (structlog's processors); they run before the sinks.
        record: keep every event in ``self.events``.
        name_prefix: put before every inferred name (``"f."`` scopes names to ``f``).
        model: the :class:`TraceModel` to fold; by default a new one, made only when a
            stage reads it (see :class:`ReadsModel`).
    """

    def __init__(self, sinks: Sequence[Sink] = (), *, analyzers: Sequence[Analyzer] = (),
                 filters: Sequence[Callable] = (), record: bool = True,
                 name_prefix: str = "", model: Optional[TraceModel] = None) -> None:
        for stage in (*sinks, *analyzers):
            if not isinstance(stage, Sink):
                raise TypeError(f"{stage!r} is not a sink or analyzer: it needs handle(event) and close() methods")
        readers = [stage for stage in (*sinks, *analyzers) if isinstance(stage, ReadsModel)]
        if readers and model is None:
            model = TraceModel()
        for stage in readers:
            stage.bind(model)
        self.sinks = list(sinks)
        self.analyzers = list(analyzers)
        self.filters = list(filters)
        self._events: List[Event] = []
        self._unread: list = []  # captured batches (and the events after them) not yet read
        self._captured: Optional[list] = None  # the hot events as tuples, when capturing
        self._batch = CAPTURE_BATCH  # captured events that go out together
        self._capture: Optional[Callable] = None  # its bound append
        self.record = record
        self.name_prefix = name_prefix
        self.model = model
        self.closed = False
        self._pid = os.getpid()
        self._outer: Optional[Tracer] = None
        self._clock = Turns()  # replaced when started: a new one, or the outer tracer's
        self._queue: deque = deque()
        self._dispatching = False
        self._threads: Dict[int, ThreadState] = {}  # each thread's pass and held line

    # -- turning on and off -----------------------------------------------------------
    def __enter__(self) -> "Tracer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.close()

    def start(self) -> "Tracer":
        """Begin listening: nested inside another tracer, share its clock and feed it too."""
        if self.closed:
            raise RuntimeError("this tracer is closed; make a new one with trace()")
        self._outer = active_tracer()
        self._clock = self._outer._clock if self._outer is not None else Turns()
        if self._outer is not None:  # its captured events go out before this tracer's
            with self._clock.lock:
                self._outer._flush_captured()
        if self._outer is None and not self.filters and all(isinstance(sink, TakesBatches) for sink in self.sinks):
            self._begin_capture()
        self._pid = os.getpid()
        _stack.append(self)
        announce()
        return self

    def stop(self) -> None:
        """Stop listening; the tracers around this one keep theirs."""
        with self._clock.lock:
            for state in list(self._threads.values()):
                if state.held is not None:
                    self._release(state)
            self._flush_captured()
            self._captured = self._capture = None
        if self in _stack:
            _stack.remove(self)
        announce()

    def close(self) -> None:
        """Finish: a pass cut short by an exception is closed, analyzers give their last
        findings, and every sink is closed (and so flushed)."""
        if self.closed:
            return
        if self.in_forked_child:  # leaving the block in a forked child: the files are the parent's
            self.closed = True
            return
        self.stop()
        with self._clock.lock:
            for thread, state in list(self._threads.items()):  # passes cut short, in any thread
                if state.pass_ is not None:
                    self._finish(state, thread)
            self._let_waiting_go()
        for analyzer in self.analyzers:
            self._emit_findings(analyzer.close())
        self._drain()
        self.closed = True
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # a sink's failure must not hide the user's result
                print(f"autodiff_trace: {type(sink).__name__} failed to close: {exc}", file=sys.stderr)

    # -- reports from engines --------------------------------------------------------
    def _state(self) -> ThreadState:
        """The calling thread's pass and held line in this tracer."""
        state = self._threads.get(get_ident())
        if state is None:
            state = self._threads[get_ident()] = ThreadState()
        return state

    def backward_started(self, root: int, seed: float, order: tuple, grads_before: tuple) -> int:
        """Report the start of a backward pass; returns its number (1, 2, ...)."""
        with self._clock.lock:
            state = self._state()
            if state.pass_ is not None:  # an engine's pass we never saw end
                self._finish(state)
            self._clock.passes += 1
            pass_no = self._clock.passes
            state.pass_ = PassCounts(pass_no, root)
            self._emit(BackwardStarted, pass_no, root, seed, order, grads_before)
        return pass_no

    def backward_fn_fired(self, node: int, grad: float, upstream: float) -> None:
        """Report that ``node``'s backward function is running."""
        clock = self._clock
        with clock.lock:
            thread = get_ident()
            state = self._threads.get(thread)
            if state is None or state.pass_ is None or state.held is not None or clock.waiting \
                    or clock.streaming != thread:  # held lines, other threads' turns: the full path
                p = self._state().pass_
                if p is not None:
                    p.fired += 1
                self._emit(BackwardFnFired, 0 if p is None else p.pass_no, node, grad, upstream)
                return
            p = state.pass_  # this thread's own pass, going out now: stamp and deliver at once
            p.fired += 1
            if self._capture is not None:
                self._capture((FIRED, p.pass_no, node, grad, upstream))
                if len(self._captured) >= self._batch:
                    self._flush_captured()
                return
            seq = clock.seq
            clock.seq = seq + 1
            clock.last_t = t = _now() - clock.t0
            self._dispatch(_new(BackwardFnFired, (seq, t, p.pass_no, node, grad, upstream)))

    def grad_accumulated(self, target: int, fired_by: Optional[int], local_grad: Optional[float],
                         contribution: float, grad_before: float, grad_after: float,
                         replaced: bool = False, site: Optional[str] = None) -> None:
        """Report a write to ``target``'s grad."""
        clock = self._clock
        with clock.lock:
            thread = get_ident()
            state = self._threads.get(thread)
            if state is None or state.pass_ is None or state.held is not None or clock.waiting \
                    or clock.streaming != thread:  # held lines, other threads' turns: the full path
                p = self._state().pass_
                if p is not None:
                    p.accumulated += 1
                self._emit(GradAccumulated, 0 if p is None else p.pass_no, target, fired_by, local_grad,
                           contribution, grad_before, grad_after, replaced, site)
                return
            p = state.pass_  # this thread's own pass, going out now: stamp and deliver at once
            p.accumulated += 1
            if self._capture is not None:
                self._capture((WRITE, p.pass_no, target, fired_by, local_grad,
                               contribution, grad_before, grad_after, replaced, site))
                if len(self._captured) >= self._batch:
                    self._flush_captured()
                return
            seq = clock.seq
            clock.seq = seq + 1
            clock.last_t = t = _now() - clock.t0
            self._dispatch(_new(GradAccumulated, (seq, t, p.pass_no, target, fired_by, local_grad,
                                                  contribution, grad_before, grad_after, replaced, site)))

    @property
    def lock(self):
        """The lock every report takes (reentrant): an engine holds it around the steps it
        captures itself (:meth:`pass_capture`)."""
        return self._clock.lock

    def pass_capture(self) -> Optional[Callable[[tuple], None]]:
        """The function an engine may give the calling thread's pass events to itself, as
        captured tuples (``(FIRED, pass_no, node, grad, upstream)`` and ``(WRITE, pass_no,
        target, fired_by, local_grad, contribution, grad_before, grad_after, False, None)``,
        see :mod:`.captured`), while it holds :attr:`lock`; then it calls
        :meth:`pass_captured`. None when the events must go through
        :meth:`backward_fn_fired` and :meth:`grad_accumulated` (no capture, a held line,
        another thread's turn)."""
        thread = get_ident()
        state = self._threads.get(thread)
        clock = self._clock
        if self._capture is None or state is None or state.pass_ is None or state.held is not None \
                or clock.waiting or clock.streaming != thread:
            return None
        return self._capture

    def pass_captured(self, fired: int, accumulated: int) -> None:
        """Count the events an engine captured itself in its pass; a full batch goes out."""
        p = self._threads[get_ident()].pass_
        p.fired += fired
        p.accumulated += accumulated
        if len(self._captured) >= self._batch:
            self._flush_captured()

    def grads_zeroed(self, nodes: tuple, grads_before: tuple) -> None:
        """Report that the grads of ``nodes`` were set to zero."""
        with self._clock.lock:
            self._emit(GradsZeroed, nodes, grads_before)

    def backward_finished(self) -> None:
        """Report the end of the calling thread's backward pass."""
        with self._clock.lock:
            state = self._state()
            if state.pass_ is not None:
                self._finish(state)

    def _finish(self, state: ThreadState, thread: Optional[int] = None) -> None:
        """End ``state``'s pass; as ``thread`` (not the caller) when closing for it."""
        p, state.pass_ = state.pass_, None
        fields = (p.pass_no, p.root, time.perf_counter() - p.start, p.fired, p.accumulated)
        if thread is None:
            self._emit(BackwardFinished, *fields)
        elif thread in self._clock.waiting:
            self._clock.waiting[thread].append((self, BackwardFinished, fields, _now(), None))
        else:
            self._send(BackwardFinished, fields, _now(), None, thread)

    @property
    def pass_no(self) -> int:
        """The number of the calling thread's pass under way, or 0 between passes."""
        state = self._threads.get(get_ident())
        return 0 if state is None or state.pass_ is None else state.pass_.pass_no

    display: Optional[Callable] = None  # events -> a picture; set by the package, which knows the views

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """In Jupyter, a finished trace shows the diagram of its last backward pass."""
        if Tracer.display is None or not any(e.kind == "backward_started" for e in self.events):
            return {"text/plain": f"<Tracer: {len(self.events)} events, no backward pass>"}
        return Tracer.display(self.events)._repr_mimebundle_(include, exclude)

    @property
    def events(self) -> List[Event]:
        """Every event of this trace so far, in order (while recording)."""
        with self._clock.lock:
            return self._read_events()

    @property
    def event_count(self) -> int:
        """How many events this trace (and any it is nested in) has emitted so far."""
        return self._clock.seq + len(self._captured or ())

    @property
    def in_forked_child(self) -> bool:
        """True in a forked child of the process that traced: the files are the parent's."""
        return self._pid != os.getpid()

    @property
    def in_pass(self) -> bool:
        return self.pass_no != 0


def trace(sinks: Sequence[Sink] = (), *, analyzers: Sequence[Analyzer] = (),
          filters: Sequence[Callable] = (), record: bool = True, name_prefix: str = "",
          model: Optional[TraceModel] = None) -> Tracer:
    """A tracer to use as ``with trace(sinks=[...]) as t:``; ``t.events`` holds the events.

    The arguments are :class:`Tracer`'s.
    """
    return Tracer(sinks, analyzers=analyzers, filters=filters, record=record,
                  name_prefix=name_prefix, model=model)

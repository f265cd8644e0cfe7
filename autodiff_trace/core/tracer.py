"""The tracer: engines report what happens, the tracer stamps it and hands it on.

``with trace(sinks=[...]) as t:`` turns tracing on for the block. Engines call the
tracer's report methods (``node_created``, ``backward_started``, ...) with plain ids
and numbers. Each event then goes through one pipeline, in this order:

1. the filters, each of which returns the event or None to drop it for everyone;
2. the model (:class:`TraceModel`), folded once for every stage that reads it;
3. ``events`` (when recording), then every sink;
4. the analyzers, whose findings become ``diagnostic`` events that take the same
   path once the event that caused them has been delivered.

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
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from .active import _stack, active_tracer, announce, follow_active
from .events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, Diagnostic, Event, GradAccumulated,
    GradsZeroed, NodeCreated,
)
from .held_line import HeldLine
from .model import TraceModel
from .sites import default_name, describe_line, user_frame
from .stages import Analyzer, ReadsModel, Sink
from .turns import PassCounts, ThreadState, Turns

__all__ = ["Sink", "Analyzer", "ReadsModel", "Tracer", "trace", "active_tracer", "follow_active"]


_now = time.perf_counter


class Tracer:
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
        self.events: List[Event] = []
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
    def node_created(self, node: int, op: str, value: float, parents: tuple,
                     name: Optional[str] = None, *, skip: Iterable = (), obj: object = None,
                     on_emit: Optional[Callable[[NodeCreated], None]] = None) -> None:
        """Report a new node.

        A node made on an assignment line (``z = mul(add(x, y), add(x, y))``) is held
        until the line is done, so that the last node it made, its result, can be
        named ``z``; the held events go out, in order, before any later event.
        ``obj`` is the node itself, when the engine has one (it tells a loop's new
        run of a line from the same run making several nodes); ``on_emit`` receives
        the event once its name is settled; ``skip`` holds code objects to look past
        when finding the user's line (an adapter's op functions).
        """
        frame = user_frame(skip)
        site = function = assigned = None
        if frame is not None:
            site, function, assigned = describe_line(frame)
        with self._clock.lock:
            state = self._state()
            held = state.held
            own = None if held is None else held.admits(frame)
            if own is None and held is not None:
                self._release(state)
                held = None
            if held is None and assigned is not None:
                held = state.held = HeldLine(frame, assigned, self.name_prefix + assigned)
                own = True
            report = (node, op, value, parents, name, site, function, on_emit)
            if held is None:
                self._emit_node(*report)
            else:
                held.reports.append((report, own))
                if own:
                    held.last_node = obj

    def _state(self) -> ThreadState:
        """The calling thread's pass and held line in this tracer."""
        state = self._threads.get(get_ident())
        if state is None:
            state = self._threads[get_ident()] = ThreadState()
        return state

    def _release(self, state: ThreadState) -> None:
        """Emit the held nodes of a finished line; its result takes the assigned name."""
        held, state.held = state.held, None
        result = max((i for i, (r, own) in enumerate(held.reports)
                      if own and r[4] is None and r[1] != "const"), default=None)
        for i, ((node, op, value, parents, name, site, function, on_emit), _) in enumerate(held.reports):
            self._emit_node(node, op, value, parents, held.name if i == result else name,
                            site, function, on_emit)

    def _emit_node(self, node, op, value, parents, name, site, function, on_emit) -> None:
        if name is None:
            name = default_name(node, op, value)
        self._emit(NodeCreated, node, op, value, parents, name, site, function, on_emit=on_emit)

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
        with self._clock.lock:
            p = self._state().pass_
            if p is not None:
                p.fired += 1
            self._emit(BackwardFnFired, 0 if p is None else p.pass_no, node, grad, upstream)

    def grad_accumulated(self, target: int, fired_by: Optional[int], local_grad: Optional[float],
                         contribution: float, grad_before: float, grad_after: float,
                         replaced: bool = False, site: Optional[str] = None) -> None:
        """Report a write to ``target``'s grad."""
        with self._clock.lock:
            p = self._state().pass_
            if p is not None:
                p.accumulated += 1
            self._emit(GradAccumulated, 0 if p is None else p.pass_no, target, fired_by, local_grad,
                       contribution, grad_before, grad_after, replaced, site)

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
    def event_count(self) -> int:
        """How many events this trace (and any it is nested in) has emitted so far."""
        return self._clock.seq

    @property
    def in_forked_child(self) -> bool:
        """True in a forked child of the process that traced: the files are the parent's."""
        return self._pid != os.getpid()

    @property
    def in_pass(self) -> bool:
        return self.pass_no != 0

    # -- dispatch ---------------------------------------------------------------------
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
        clock = self._clock
        if cls is BackwardStarted:
            clock.streaming = thread
        elif cls is BackwardFinished:
            clock.streaming = None
        event = cls(clock.seq, t - clock.t0, *fields)
        clock.seq += 1
        tracer = self
        while tracer is not None:  # nested tracers: every one that is listening
            if tracer.analyzers:
                tracer._receive(event)
            else:
                tracer._deliver(event)
            tracer = tracer._outer
        if on_emit is not None:
            on_emit(event)

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
        event = cls(clock.seq, _now() - clock.t0, *fields)
        clock.seq += 1
        return event

    def _receive(self, event: Event) -> None:
        # An analyzer's findings are queued, so every sink sees them after the event
        # that caused them, never in the middle of another event's delivery.
        self._queue.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            self._drain()
        finally:
            self._dispatching = False

    def _drain(self) -> None:
        while self._queue:
            event = self._deliver(self._queue.popleft())
            if event is None:  # dropped by a filter: for the analyzers too
                continue
            for analyzer in self.analyzers:
                try:
                    self._emit_findings(analyzer.handle(event))
                except Exception as exc:
                    self.analyzers = self._detach(self.analyzers, analyzer, event, exc)

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
                self.filters = self._detach(self.filters, keep, event, exc)
            if event is None:
                return None
        if self.record:
            self.events.append(event)
        if self.model is not None:
            self.model.handle(event)
        for sink in self.sinks:
            try:
                sink.handle(event)
            except Exception as exc:
                self.sinks = self._detach(self.sinks, sink, event, exc)
        return event

    def _detach(self, group: list, member, event: Event, exc: Exception) -> list:
        """Report a failing sink or analyzer; the group without it (a new list, so a
        loop over the old one finishes safely)."""
        print(f"autodiff_trace: {type(member).__name__} failed on a {event.kind} event "
              f"({type(exc).__name__}: {exc}); it is detached and the trace goes on without it",
              file=sys.stderr)
        return [m for m in group if m is not member]


def trace(sinks: Sequence[Sink] = (), *, analyzers: Sequence[Analyzer] = (),
          filters: Sequence[Callable] = (), record: bool = True, name_prefix: str = "",
          model: Optional[TraceModel] = None) -> Tracer:
    """A tracer to use as ``with trace(sinks=[...]) as t:``; ``t.events`` holds the events.

    The arguments are :class:`Tracer`'s.
    """
    return Tracer(sinks, analyzers=analyzers, filters=filters, record=record,
                  name_prefix=name_prefix, model=model)

"""The tracer's reports of new nodes, and the lines held until they can name their result.

``node_created`` takes any engine's report; ``value_made`` is the lean report of an
engine that keeps its nodes' names itself (:class:`~autodiff_trace.engine.Value`). A node
made on an assignment line waits in a :class:`~.held_line.HeldLine` until the line is done,
then goes out with the rest of the line, captured as a tuple when the tracer captures.
"""

from __future__ import annotations

from threading import get_ident
from typing import Callable, Iterable, Optional

from .captured import NODE
from .dispatch import _new
from .events import NodeCreated
from .held_line import HeldLine, PendingReport
from .sites import default_name
from .turns import ThreadState
from .user_line import INSIDE, NOWHERE, by_code, code_lines, line_at, user_line

__all__ = ["NodeReports"]


def _outside(frame) -> tuple:
    """The first of ``frame`` and the frames it was called from that is outside this
    package, with its described instructions (:func:`.user_line.code_lines`); ``(None, None)``
    if there is none."""
    while frame is not None:
        lines = by_code.get(id(frame.f_code))
        if lines is None:
            lines = code_lines(frame.f_code)
        if lines is not INSIDE:
            return frame, lines
        frame = frame.f_back
    return None, None


class NodeReports:
    """The node half of :class:`~.tracer.Tracer`'s reports (it holds the state they use)."""

    def node_created(self, node: int, op: str, value: float, parents: tuple,
                     name: Optional[str] = None, *, skip: Iterable = (), obj: object = None,
                     on_emit: Optional[Callable[[NodeCreated], None]] = None,
                     module: Optional[str] = None, tensor: Optional[str] = None) -> None:
        """Report a new node.

        A node made on an assignment line (``z = mul(add(x, y), add(x, y))``) is held
        until the line is done, so that the last node it made, its result, can be
        named ``z``; the held events go out, in order, before any later event.
        ``obj`` is the node itself, when the engine has one (it tells a loop's new
        run of a line from the same run making several nodes); ``on_emit`` receives
        the event once its name is settled; ``skip`` holds code objects to look past
        when finding the user's line (an adapter's op functions); ``module`` is the model
        part that made it, when the adapter knows one (``model.0``), and ``tensor`` the dtype
        and shape of the tensor the node stands for (``float32[64, 512]``). ``parents`` may be a
        function giving ``(op, value, parents)``, for a node not finished when it is
        reported (its op links it after making it, ``ret._ctx = ctx``, or its ``__init__``
        has yet to run): the report is then held until its line is done.
        """
        frame, (site, function, assigned, lineno) = user_line(skip)
        lasti = -1 if frame is None else frame.f_lasti
        with self._clock.lock:
            state = self._threads.get(get_ident()) or self._state()
            held = state.held
            own = None if held is None else held.admits(frame, lasti, lineno)
            if own is None and held is not None:
                self._release(state)
                held = None
            if held is None and (assigned is not None or callable(parents) and frame is not None):
                held = state.held = HeldLine(frame, lasti, lineno, assigned,
                                             assigned and self.name_prefix + assigned, site, function)
                own = True
            report = PendingReport(node, op, value, parents, name, site, function, on_emit, module, tensor)
            if held is None:
                self._emit_node(*report)
                return
            held.pending = True
            if own:
                held.own(report, obj, name is None and op != "const")
            else:
                held.reports.append(report)

    def value_made(self, frame, obj: object, node: int, op: str, value: float, parents: tuple,
                   name: Optional[str], named: Callable[[object, str], None]) -> Optional[str]:
        """Report a finished node of an engine that keeps its nodes' names itself: the
        lean ``node_created`` of :class:`~autodiff_trace.engine.Value`.

        ``frame`` is the first frame outside the engine's own code (the user's line is
        found from it, past this package's frames). Returns the node's site. A node with
        no ``name`` of its own goes out with its default name (:func:`~.sites.default_name`);
        when it is the result of an assignment line, ``named(obj, name)`` gives it the
        assigned name once the line is done (see :meth:`node_created`).
        """
        result = name is None and op != "const"  # may be the line's result
        lock = self._clock.lock
        lock.acquire()
        try:
            state = self._threads.get(get_ident())
            held = None if state is None else state.held
            if held is not None and frame is held.frame and frame.f_lasti == held.lasti:
                # the instruction the held line made its last node at, again: one more node of
                # the line (sum() adding), or a loop's next run of it (``y = y * c``)
                last = held.last_node
                if last is not None and frame.f_locals.get(held.target) is last:  # the line's next run
                    self._release(state)
                    if state.held is None:  # held anew, in the same object (HeldLine.restart)
                        state.held = held
                        held.reports = []
                        held.result = held.result_obj = held.named = None
                        held.pending = False
                    else:
                        held = None
                if held is not None:
                    site = held.site
                    if result:  # the line's result so far: named as the line's result, as it most likely is
                        if held.result is None and held.name is not None:
                            shown = held.name
                        else:  # default_name's op#id, without its call for the common ops
                            shown = f"{op}#{node}" if op else default_name(node, op, value)
                            if held.result is not None:
                                held.superseded()
                        held.result, held.result_obj, held.named = len(held.reports), obj, named
                    else:
                        shown = name if name is not None else default_name(node, op, value)
                    held.reports.append((NODE, node, op, value, parents, shown, site, held.function, None, None))
                    held.last_node = obj
                    return site
                held = state.held
            return self._value_made(state, held, frame, obj, node, op, value, parents, name, named, result)
        finally:
            lock.release()

    def _value_made(self, state: Optional[ThreadState], held: Optional[HeldLine], frame, obj: object,
                    node: int, op: str, value: float, parents: tuple, name: Optional[str],
                    named: Callable, result: bool) -> Optional[str]:
        """:meth:`value_made` past its common case: the caller holds the lock; ``held`` is the
        thread's held line (``state.held``)."""
        if frame is not None:
            lines = by_code.get(id(frame.f_code))
            if lines is None or lines is INSIDE:  # past this package's frames (rare: the engine skips its own)
                frame, lines = _outside(frame)
        if frame is not None:
            lasti = frame.f_lasti
            site, function, assigned, lineno = lines.get(lasti) or line_at(frame)
        else:
            lasti, (site, function, assigned, lineno) = -1, NOWHERE
        # default_name's op#id, without its call for the common ops
        shown = name if name is not None else f"{op}#{node}" if result and op else default_name(node, op, value)
        raw = (NODE, node, op, value, parents, shown, site, function, None, None)
        if state is None:
            state = self._state()
        if held is not None:
            if frame is held.frame:  # HeldLine.admits, inline
                if lineno == held.lineno and (lasti > held.lasti or held.last_node is None
                                              or frame.f_locals.get(held.target) is not held.last_node):
                    held.lasti = lasti  # the line goes on; HeldLine.own, inline (its call: +1.5%
                    if result:  # instructions on a line of four ops)
                        if held.result is not None:
                            held.superseded()
                        held.result, held.result_obj, held.named = len(held.reports), obj, named
                    held.reports.append(raw)
                    held.last_node = obj
                    return site
                own = None
            else:
                own = held.admits(frame, lasti, lineno)
            if own is None:
                self._release(state)
                if assigned is not None and frame is held.frame and lineno == held.lineno \
                        and state.held is None:
                    held.restart(lasti)  # a loop's next run of the line: held anew, in the same object
                    state.held = held
                    held.own(raw, obj, result, named)
                    return site
            else:
                if own:
                    held.own(raw, obj, result, named)
                else:
                    held.reports.append(raw)
                return site
        if assigned is not None:
            held = state.held = HeldLine(frame, lasti, lineno, assigned, self.name_prefix + assigned,
                                         site, function)
            held.own(raw, obj, result, named)
            return site
        self._emit_made(raw)
        return site

    def _release(self, state: ThreadState) -> None:
        """Emit the held nodes of a finished line; its result takes the assigned name."""
        held, state.held = state.held, None
        reports, result = held.reports, held.result
        if result is not None:
            entry = reports[result]
            if entry.__class__ is tuple:  # a captured node tuple: its name is item 5
                name = held.name
                if entry[5] is not name:  # not made with it already (HeldLine.superseded)
                    reports[result] = entry[:5] + (name,) + entry[6:]
                held.named(held.result_obj, name)
            else:
                reports[result] = entry._replace(name=held.name)
        captured = self._captured
        clock = self._clock
        if not held.pending and captured is not None and (
                (clock.streaming is None and not clock.waiting) or not clock.must_wait(get_ident())):
            if self._reads_captured:
                for raw in reports:
                    self._capture(raw)
            else:
                captured.extend(reports)
            if len(self._captured) >= self._batch:
                self._flush_captured()
            return
        for entry in reports:
            if entry.__class__ is tuple:
                self._emit_made(entry)
            else:
                self._emit_node(*entry)

    def _may_capture(self) -> bool:
        """May the calling thread's node go into the capture now (no other thread's pass
        is going out, and it is not waiting its turn)? The caller holds the lock."""
        clock = self._clock
        return (clock.streaming is None and not clock.waiting) or not clock.must_wait(get_ident())

    def _emit_made(self, raw: tuple) -> None:
        """Send a finished node, given as its captured tuple."""
        captured = self._captured
        if captured is not None and self._may_capture():
            self._capture(raw)
            if len(captured) >= self._batch:
                self._flush_captured()
        else:
            self._emit(NodeCreated, *raw[1:])

    def _emit_node(self, node, op, value, parents, name, site, function, on_emit, module=None,
                   tensor=None) -> None:
        if callable(parents):
            op, value, parents = parents()
        if name is None:
            name = default_name(node, op, value)
        captured = self._captured
        if captured is not None and self._may_capture():
            raw = (NODE, node, op, value, parents, name, site, function, module, tensor)
            if on_emit is not None:  # numbered and timed as its batch will be
                clock = self._clock
                on_emit(_new(NodeCreated, (clock.seq + len(captured), clock.last_t) + raw[1:]))
            self._capture(raw)
            if len(captured) >= self._batch:
                self._flush_captured()
            return
        self._emit(NodeCreated, node, op, value, parents, name, site, function, module, tensor,
                   on_emit=on_emit)

"""The analyzer: turns the event stream into findings a learner can act on.

:class:`Diagnoser` is an analyzer (``trace(analyzers=[Diagnoser()])``). It keeps the
pass under way and hands each event to the checks that read its kind (see
:mod:`.checks`); the checks record occurrences, and occurrences of the same kind at
the same line are one cause (:mod:`.causes`), reported once when first seen and
updated at the end of each pass. :func:`diagnose` runs it over a finished list of events.

Under a tracer that captures the hot events, it reads them a batch at a time
(:class:`~..core.runs.ReadsRuns`): each check names the events it must read one by one
(``singles``) and notes the rest column-wise (``on_run``). Where a check reads the call
stack (the traversal that fired a node), the pass of this package's engine leaves the
user's frames as they are; for a user's engine, :meth:`Diagnoser.watch` records the
firing site as the event is captured.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, List, Optional, Set

from ..core.captured import CAPTURED, FIRED, WRITE
from ..core.events import EVENT_TYPES, Event, Finding, from_dict
from ..core.model import PassInfo, TraceModel
from ..core.runs import Run, fold_run
from .callers import begin_site, engine_pass_frames, firing_site, source_line
from .causes import Causes
from .checks import Context, default_checks
from .checks.base import NOT_RECORDED

__all__ = ["Diagnoser", "diagnose", "source_line"]


class Diagnoser:
    """Reads events as they come and reports gradient bugs as findings, one per cause.

    Args:
        check_grads: at the end of each pass, compare every leaf's gradient with
            central differences recomputed from the recorded graph (off by default).
        rtol: relative tolerance of that check.
        atol: absolute tolerance of that check.
        eps: the step of the central differences, relative to the leaf's size.
        check_leaves: check at most this many leaves per pass.
        limit: report at most this many causes of one kind; the rest are counted in
            one summary finding.

    Alone, it folds a model of its own; under a tracer it reads the tracer's (``bind``).
    """

    def __init__(self, *, check_grads: bool = False, rtol: float = 1e-3, atol: float = 1e-5,
                 eps: float = 1e-6, check_leaves: int = 100, limit: int = 10) -> None:
        for label, number in (("rtol", rtol), ("atol", atol), ("eps", eps)):
            if not (isinstance(number, (int, float)) and number >= 0 and math.isfinite(number)):
                raise ValueError(f"Diagnoser({label}={number!r}): expected a finite number >= 0")
        for label, count in (("check_leaves", check_leaves), ("limit", limit)):
            if not (isinstance(count, int) and count >= 1):
                raise ValueError(f"Diagnoser({label}={count!r}): expected a whole number >= 1")
        self.check_grads = check_grads
        self.options = dict(eps=eps, atol=atol, rtol=rtol, max_leaves=check_leaves)
        self.limit = limit
        self.bind(TraceModel())
        self._folds = True  # alone: fold the model it reads; a tracer's ``bind`` stops that

    # -- the analyzer protocol ----------------------------------------------------------
    def bind(self, model: TraceModel) -> None:
        """Read ``model``, which the tracer folds before this analyzer sees each event."""
        self.model = model
        self._folds = False
        self.causes = Causes(model.name, self.limit)
        self.context = Context(model, self.causes)
        self.checks = default_checks(self.context, check_grads=self.check_grads, **self.options)
        self._handlers: Dict[str, tuple] = {
            kind: tuple(getattr(c, "on_" + kind) for c in self.checks if hasattr(c, "on_" + kind))
            for kind in EVENT_TYPES}
        self._hooks = {hook: [getattr(c, hook) for c in self.checks if hasattr(c, hook)]
                       for hook in ("on_pass_start", "on_pass_end", "on_close")}
        # One reader per kind, chosen once: most events pay one call per check that reads them.
        self._readers: Dict[str, Callable[[Event], Optional[List[Finding]]]] = {
            kind: _reader(handlers, self.causes) for kind, handlers in self._handlers.items()}
        # The kinds that begin or end a pass need more than their checks' handlers.
        self._readers.update(backward_started=self._read_start, backward_finished=self._read_finish)
        # Reading captured runs: the checks that can, and the kinds some other check reads one by one.
        runs = [c for c in self.checks if hasattr(c, "on_run") and hasattr(c, "singles")]
        self._singles = [c.singles for c in runs]
        self._run_readers = [c.on_run for c in runs]
        self._one_by_one = {CAPTURED.index(cls) for cls in CAPTURED
                            if any(hasattr(c, "on_" + cls.kind) for c in self.checks if c not in runs)}
        self.watch: Optional[Callable[[tuple], None]] = None  # see _start_pass
        self._watched: Set[int] = set()  # nodes that fired or wrote in the watched pass
        self._reach: Optional[Callable[[int], bool]] = None
        self._recorded: Dict[int, object] = {}  # id of a captured tuple -> its firing site
        self._reading: Dict[int, object] = {}  # those of the batch being read

    def handle(self, event: Event) -> Optional[List[Finding]]:
        """Fold one event in; return the findings it completes, if any."""
        if self._folds:
            self.model.handle(event)
        return self._readers[event.kind](event)

    # -- captured batches (ReadsRuns) ---------------------------------------------------
    def singles(self, run: Run) -> Iterable[int]:
        """The places of a captured batch to read one by one: those the checks name, every
        event of a kind a check reads only one by one, and all of a pass's events that are
        not the pass under way."""
        self._reading, self._recorded = self._recorded, {}
        if (run.fire_at or run.write_at) and (run.pass_no is None or self.context.in_pass(run.pass_no) is None):
            return range(len(run))
        found: Set[int] = set()
        for singles in self._singles:
            found.update(singles(run))
        for kind in self._one_by_one:
            found.update(at for at, each in enumerate(run.kinds) if each == kind)
        return found

    def read_run(self, run: Run) -> Optional[List[Finding]]:
        """Note a run of captured events (none of them completes a finding: see :meth:`singles`)."""
        if self._folds:
            fold_run(self.model, run)
        for on_run in self._run_readers:
            on_run(run)
        return self.causes.new() if self.causes.fresh else None

    def read_captured(self, raw: tuple, event: Event) -> Optional[List[Finding]]:
        """:meth:`handle` a captured event named by :meth:`singles`, with the firing site
        recorded when it was captured, if one was."""
        self.context.recorded = self._reading.pop(id(raw), NOT_RECORDED)
        try:
            return self.handle(event)
        finally:
            self.context.recorded = NOT_RECORDED

    def _watch(self, raw: tuple) -> None:
        """Record the firing site of a captured firing or write that a check may read it
        at: a node firing again or outside the graph, a write to a node that fired or wrote
        before, a write by a node outside the graph (a superset of where checks read it)."""
        kind, watched, reach = raw[0], self._watched, self._reach
        if kind == FIRED:
            node = raw[2]
            if node in watched or (reach is not None and not reach(node)):
                self._recorded[id(raw)] = firing_site()
            watched.add(node)
        elif kind == WRITE:
            writer = raw[3]
            if raw[2] in watched or (writer is not None and reach is not None and not reach(writer)):
                self._recorded[id(raw)] = firing_site(raw[9])
            watched.add(writer)

    def _read(self, event: Event) -> Optional[List[Finding]]:
        for handler in self._handlers[event.kind]:
            handler(event)
        if self.causes.fresh:
            return self.causes.new()
        return None

    def _read_start(self, event: Event) -> Optional[List[Finding]]:
        found = self._start_pass(event)
        found += self._read(event) or ()
        return found or None

    def _read_finish(self, event: Event) -> Optional[List[Finding]]:
        found = self._read(event) or []
        p = self.context.in_pass(event.pass_no)
        if p is not None:
            found += self._finish_pass(p)
        return found or None

    def close(self) -> List[Finding]:
        """The findings only the end of the trace completes: a pass cut short, the updates
        of causes seen again, and the summaries."""
        found: List[Finding] = []
        if self.context.pass_ is not None:
            found += self._finish_pass(self.context.pass_)
        for hook in self._hooks["on_close"]:
            hook()
        return found + self.causes.updates() + self.causes.left_out()

    # -- passes -------------------------------------------------------------------------
    def _start_pass(self, event) -> List[Finding]:
        found = self._finish_pass(self.context.pass_) if self.context.pass_ is not None else []
        p = self.context.pass_ = self.model.passes[-1]
        self.context.begin_sites[p.pass_no] = getattr(event, "site", None) or begin_site()
        frames = self.context.pass_frames = engine_pass_frames()
        self.watch = self._watch if frames is None else None  # this package's engine: its frames
        self._watched, self._reach = set(), p.reachable.contains if frames is None and p.order else None
        for hook in self._hooks["on_pass_start"]:
            hook(p)
        return found

    def _finish_pass(self, p: PassInfo) -> List[Finding]:
        for hook in self._hooks["on_pass_end"]:
            hook(p)
        self.context.pass_ = self.context.pass_frames = self.watch = None
        self._watched, self._reach = set(), None
        return self.causes.updates()


def _reader(handlers: tuple, causes: Causes) -> Callable[[Event], Optional[List[Finding]]]:
    """The reader of one kind: its checks' handlers in order, then the causes they made
    (most events make none, and no list)."""
    if len(handlers) == 1:
        only = handlers[0]

        def read(event: Event) -> Optional[List[Finding]]:
            only(event)
            return causes.new() if causes.fresh else None
    else:
        def read(event: Event) -> Optional[List[Finding]]:
            for handler in handlers:
                handler(event)
            return causes.new() if causes.fresh else None
    return read


def diagnose(events: Iterable, **options) -> List[Finding]:
    """The findings for a finished trace: ``diagnose(t.events)`` or ``diagnose(load_events(path))``.

    Args:
        events: events, or their dicts as read from JSON.
        **options: passed to :class:`Diagnoser` (``check_grads=True``, ``rtol=...``).
    """
    diagnoser = Diagnoser(**options)
    findings: List[Finding] = []
    for position, event in enumerate(events):
        if isinstance(event, dict):
            event = from_dict(event)
        elif not hasattr(event, "kind"):
            raise TypeError(f"diagnose(): item {position} is a {type(event).__name__}, not an event; "
                            f"pass trace().events or load_events(path)")
        findings.extend(diagnoser.handle(event) or ())
    findings.extend(diagnoser.close())
    return findings

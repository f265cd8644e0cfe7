"""The analyzer: turns the event stream into findings a learner can act on.

:class:`Diagnoser` is an analyzer (``trace(analyzers=[Diagnoser()])``). It keeps the
pass under way and hands each event to the checks that read its kind (see
:mod:`.checks`); the checks record occurrences, and occurrences of the same kind at
the same line are one cause (:mod:`.causes`), reported once when first seen and
updated at the end of each pass. :func:`diagnose` runs it over a finished list of events.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, List, Optional

from ..core.events import EVENT_TYPES, Event, Finding, from_dict
from ..core.model import PassInfo, TraceModel
from .callers import begin_site, source_line
from .causes import Causes
from .checks import Context, default_checks

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

    def handle(self, event: Event) -> Optional[List[Finding]]:
        """Fold one event in; return the findings it completes, if any."""
        if self._folds:
            self.model.handle(event)
        return self._readers[event.kind](event)

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
        for hook in self._hooks["on_pass_start"]:
            hook(p)
        return found

    def _finish_pass(self, p: PassInfo) -> List[Finding]:
        for hook in self._hooks["on_pass_end"]:
            hook(p)
        self.context.pass_ = None
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

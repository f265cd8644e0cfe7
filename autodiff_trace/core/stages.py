"""The seams of the tracer's pipeline: what a sink, an analyzer and a model reader provide."""

from __future__ import annotations

from typing import Iterable, Optional, Protocol, runtime_checkable

from .events import Event
from .model import TraceModel

__all__ = ["Sink", "Analyzer", "ReadsModel", "TakesBatches"]


@runtime_checkable
class Sink(Protocol):
    """Anything that consumes events: ``handle`` each one, ``close`` at the end."""

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ReadsModel(Protocol):
    """A stage (sink or analyzer) that reads the tracer's model instead of folding one."""

    def bind(self, model: TraceModel) -> None: ...


@runtime_checkable
class Analyzer(Protocol):
    """Reads events as they come and returns findings (objects with Diagnostic's fields
    other than ``seq`` and ``t``); the tracer turns them into ``diagnostic`` events."""

    def handle(self, event: Event) -> Optional[Iterable]: ...

    def close(self) -> Optional[Iterable]: ...


@runtime_checkable
class TakesBatches(Protocol):
    """A sink that can take the hot events a batch at a time, as the plain tuples of
    :mod:`.captured`: event ``i`` of ``batch`` has ``seq`` ``first_seq + i`` and time ``t``.
    While every sink of a tracer takes batches (and no filter reads events one by one),
    the tracer captures those events for the sinks without making event objects."""

    def handle_batch(self, first_seq: int, t: float, batch: list) -> None: ...

"""The in-memory recorder: keeps every event in a list."""

from __future__ import annotations

from typing import List

from ..core.events import Event

__all__ = ["Recorder"]


class Recorder:
    """A sink that appends each event to ``self.events``."""

    def __init__(self) -> None:
        self.events: List[Event] = []
        self.closed = False

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True

    def of_kind(self, kind: str) -> List[Event]:
        """The events of one kind, in order: ``of_kind("grad_accumulated")``."""
        return [e for e in self.events if e.kind == kind]

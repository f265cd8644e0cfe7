"""A one-line status on a terminal while a long script runs: events and passes so far."""

from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.status import Status

from ..events import Event

__all__ = ["ProgressSink"]


class ProgressSink:
    """Shows ``tracing: 120,000 events, 3 backward passes`` and keeps it current.

    Args:
        console: where to draw; nothing is drawn unless it is a terminal.
        every: events between two updates of the line (redrawing costs more than counting).
    """

    def __init__(self, console: Console, *, every: int = 5000) -> None:
        self.console = console
        self.every = every
        self.events = 0
        self.passes = 0
        self._status: Optional[Status] = None

    def handle(self, event: Event) -> None:
        self.events += 1
        if event.kind == "backward_started":
            self.passes += 1
        if self.events % self.every == 0 and self.console.is_terminal:
            if self._status is None:
                self._status = self.console.status("", spinner="dots")
                self._status.start()
            self._status.update(self.describe())

    def describe(self) -> str:
        """The status line.

        >>> sink = ProgressSink(Console(file=None)); sink.events, sink.passes = 12000, 1
        >>> sink.describe()
        'tracing: 12,000 events, 1 backward pass'
        """
        passes = f"{self.passes} backward pass" + ("" if self.passes == 1 else "es")
        return f"tracing: {self.events:,} events, {passes}"

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

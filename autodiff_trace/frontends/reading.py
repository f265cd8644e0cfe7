"""A progress bar on the terminal while a replay command reads a big trace file.

The trace reader tells :data:`~autodiff_trace.core.tracefile.READING` how far it has
got every few thousand lines; :class:`ReadingProgress` listens while a command runs and,
once the reading has lasted a second, shows one bar per file on stderr, removed when
the command ends. Nothing is drawn unless stderr is a terminal, and the command's own
output stays where it goes (a pipe, a file).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, Optional

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from ..core.tracefile import READING

__all__ = ["ReadingProgress"]


class ReadingProgress:
    """``with ReadingProgress(console):`` shows ``reading trace.jsonl ━━━━ 210/1,024 MB`` bars.

    Args:
        console: where to draw; nothing is drawn unless it is a terminal.
        after: seconds of reading before the bars appear (a quick command shows none).
    """

    def __init__(self, console: Console, *, after: float = 1.0) -> None:
        self.console, self.after = console, after
        self._began: Optional[float] = None
        self._progress: Optional[Progress] = None
        self._tasks: Dict[str, int] = {}
        self.reports = 0  # how often the reader said how far it had got

    def __enter__(self) -> "ReadingProgress":
        READING.append(self)
        return self

    def __exit__(self, *exc_info) -> None:
        if self in READING:
            READING.remove(self)
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, path: str, done: int, size: int) -> None:
        """The reader of ``path`` has read ``done`` of its ``size`` bytes."""
        self.reports += 1
        now = time.perf_counter()
        if self._began is None:
            self._began = now
        if not self.console.is_terminal or now - self._began < self.after:
            return
        if self._progress is None:
            # The command's prints go above the bars when they share its terminal; when its
            # stdout is a file or a pipe they must stay there, not move to the screen.
            self._progress = Progress(TextColumn("reading {task.description}"), BarColumn(),
                                      DownloadColumn(), TimeRemainingColumn(), console=self.console,
                                      transient=True, redirect_stdout=sys.stdout.isatty(),
                                      redirect_stderr=False)
            self._progress.start()
        task = self._tasks.get(path)
        if task is None:
            task = self._tasks[path] = self._progress.add_task(Path(path).name, total=size or None)
        self._progress.update(task, completed=done)

"""JSON Lines: a header line, then one event per line (the format is :mod:`autodiff_trace.core.tracefile`).

The file is flushed at the end of every backward pass and on close, so a script
that crashes leaves a valid prefix of its trace (at worst a cut last line, which
the reader tolerates with a warning).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Optional, Union

from ..core.events import Event, to_dict
from ..core.tracefile import encode_line, header_line
from ._errors import cannot_write

__all__ = ["JsonlSink"]


class JsonlSink:
    """Write events to ``path`` (or an open text file) as JSON Lines.

    Args:
        target: a path (its folder is created) or a writable text file.
        metadata: extra keys for the header line (script name, argv, ...).
    """

    def __init__(self, target: Union[str, os.PathLike, IO[str]], *, metadata: Optional[dict] = None):
        if isinstance(target, (str, os.PathLike)):
            path = Path(target)
            self.where = path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "wb")
            except OSError as exc:
                raise cannot_write(f"the trace to {path}", exc) from None
            self._owns_file = True
            self._write = self._file.write
        else:  # an open text file, such as io.StringIO in tests
            self.where = getattr(target, "name", None) or type(target).__name__
            self._file = target
            self._owns_file = False
            self._write = lambda line: target.write(line.decode())
        header = header_line(metadata or {})
        self.closed = False
        try:
            self._write(encode_line(header))
            self._file.flush()
        except OSError as exc:
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

    def handle(self, event: Event) -> None:
        try:
            self._write(encode_line(to_dict(event)))
            if event.kind == "backward_finished":
                self._file.flush()
        except OSError as exc:  # a full disk: say so once; the tracer detaches this sink
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

    def flush(self) -> None:
        """Write out what is buffered (the tracer calls it before the process forks)."""
        if not self.closed:
            self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._file.flush()
        except OSError as exc:
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None
        if self._owns_file:
            self._file.close()

    def _give_up(self) -> None:
        """After a failed write: close our file without trying to write it again."""
        self.closed = True
        if self._owns_file:
            try:
                self._file.close()
            except OSError:
                pass  # the same failure again, while flushing what could not be written

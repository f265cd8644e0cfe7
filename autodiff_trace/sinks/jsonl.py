"""JSON Lines: a header line, then one event per line; readable back with load_events.

The file is flushed at the end of every backward pass and on close, so a script
that crashes leaves a valid prefix of its trace (at worst a cut last line, which
the reader tolerates with a warning).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import IO, Iterator, List, Optional, Union

from ..events import SCHEMA, SCHEMA_VERSION, Event, from_dict, to_dict
from ._errors import cannot_write

__all__ = ["JsonlSink", "TraceFileError", "load_events", "iter_events", "read_header"]


def _json_line(obj: dict) -> bytes:
    """The standard library's encoding: ASCII, so a lone surrogate in a name travels as
    ``\\ud800`` and reads back exactly."""
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


try:  # several times faster than json for the small dicts we write (benchmarks/bench_mlp.py)
    import orjson

    def _line(obj: dict) -> bytes:
        try:
            return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # orjson refuses lone surrogates (a name like "x\ud800")
            return _json_line(obj)
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a broken install working
    _line = _json_line


class TraceFileError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


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
        header = {
            "kind": "header",
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "argv": list(sys.argv),
            **(metadata or {}),
        }
        self.closed = False
        try:
            self._write(_line(header))
            self._file.flush()
        except OSError as exc:
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

    def handle(self, event: Event) -> None:
        try:
            self._write(_line(to_dict(event)))
            if event.kind == "backward_finished":
                self._file.flush()
        except OSError as exc:  # a full disk: say so once; the tracer detaches this sink
            self._give_up()
            raise cannot_write(f"the trace to {self.where}", exc) from None

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


def _lines(path: Union[str, os.PathLike]) -> Iterator:
    try:
        with open(path, encoding="utf-8") as file:
            yield from enumerate(file, start=1)
    except FileNotFoundError:
        raise TraceFileError(f"{path}: no such trace file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(f"{path}: cannot read it ({exc})") from None


def _check_header(path, line: str) -> dict:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != "header":
        raise TraceFileError(f"{path}:1: not an autodiff_trace trace (the first line must be its header)")
    if header.get("schema") != SCHEMA:
        raise TraceFileError(f"{path}:1: schema {header.get('schema')!r} is not {SCHEMA!r}")
    if header.get("version") != SCHEMA_VERSION:
        raise TraceFileError(f"{path}:1: schema version {header.get('version')!r} is not supported "
                             f"(this autodiff_trace reads version {SCHEMA_VERSION}); "
                             f"re-record the trace or use the matching autodiff_trace")
    return header


def read_header(path: Union[str, os.PathLike]) -> dict:
    """The header line of a trace file: schema, version and run metadata."""
    for _, line in _lines(path):
        return _check_header(path, line)
    raise TraceFileError(f"{path}: the file is empty; it holds no trace")


def iter_events(path: Union[str, os.PathLike]) -> Iterator[Event]:
    """Yield the events of a trace file one at a time (bounded memory).

    A malformed line raises :class:`TraceFileError` naming its line number; a last
    line cut short without its newline (a crash mid-write) is dropped with a warning.
    """
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise TraceFileError(f"{path}: the file is empty; it holds no trace")
    _check_header(path, first[1])
    for number, line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if not line.endswith("\n"):
                warnings.warn(f"{path}:{number}: the last line is cut short (the traced program "
                              f"stopped mid-write); the events before it are kept", RuntimeWarning)
                return
            raise TraceFileError(f"{path}:{number}: not valid JSON ({exc.msg[0].lower()}{exc.msg[1:]} "
                                 f"at column {exc.colno}); the line is damaged or cut short") from None
        try:
            event = from_dict(data)
        except (ValueError, TypeError) as exc:
            raise TraceFileError(f"{path}:{number}: {exc}") from None
        yield event


def load_events(path: Union[str, os.PathLike]) -> List[Event]:
    """All the events of a trace file written by :class:`JsonlSink`, validated."""
    return list(iter_events(path))

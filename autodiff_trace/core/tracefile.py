"""The trace file format, both halves: one JSON object per line, a header line first.

``encode_line`` is what :class:`~autodiff_trace.sinks.jsonl.JsonlSink` writes;
``iter_events``, ``load_events`` and ``read_header`` read it back and check it.
The fields of every line are documented in docs/events.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from typing import Iterator, List, Union

from .events import SCHEMA, SCHEMA_VERSION, Event, from_dict

__all__ = ["TraceFileError", "encode_line", "header_line", "load_events", "iter_events", "read_header"]


def _json_line(obj: dict) -> bytes:
    """The standard library's encoding: ASCII, so a lone surrogate in a name travels as
    ``\\ud800`` and reads back exactly."""
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


try:  # several times faster than json for the small dicts we write (benchmarks/bench_mlp.py)
    import orjson

    def encode_line(obj: dict) -> bytes:
        try:
            return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # orjson refuses lone surrogates (a name like "x\ud800")
            return _json_line(obj)
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a broken install working
    encode_line = _json_line


def header_line(metadata: dict) -> dict:
    """The header that opens every trace: schema, version, when, which Python, the argv."""
    return {
        "kind": "header",
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "argv": list(sys.argv),
        **metadata,
    }


class TraceFileError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


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

"""The trace file format, both halves: one JSON value per line, a header line first.

Each line is an event's object, or (the hot events, from version 3) a compact array
(:mod:`.compact`).

``encode_line`` is what :class:`~autodiff_trace.sinks.jsonl.JsonlSink` writes;
``iter_events``, ``load_events`` and ``read_header`` read it back and check it.
The fields of every line are documented in docs/events.md.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import sys
import time
import warnings
from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple, Union

from .compact import _READERS, COLUMNS, TAGS, read_compact, read_site_line
from .compact_runs import plain_run, stretches
from .events import EVENT_TYPES, READABLE_VERSIONS, SCHEMA, SCHEMA_VERSION, Event, from_dict, to_dict
from .fields import NUMBER_FIELDS, LimitError, shown
from .long_lists import LISTS, Continued, split

__all__ = ["TraceFileError", "MAX_LINE_BYTES", "encode_line", "encode_event", "header_line", "load_events", "iter_events",
           "read_header"]


def _json_line(obj: dict) -> bytes:
    """The standard library's encoding: ASCII, so a lone surrogate in a name travels as
    ``\\ud800`` and reads back exactly."""
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


try:  # several times faster than json for the small dicts we write (benchmarks/bench_mlp.py)
    import orjson

    _loads, _LoadError = orjson.loads, orjson.JSONDecodeError

    def encode_line(obj: dict) -> bytes:
        try:
            return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # orjson refuses lone surrogates (a name like "x\ud800")
            return _json_line(obj)
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a broken install working
    orjson = _loads = None
    _LoadError = ValueError
    encode_line = _json_line


def _event_encoder(cls: type) -> Callable[[Event], bytes]:
    """The line of one event class, written without :func:`to_dict` when it can be.

    The common event holds only finite floats: their sum is then a finite float, and
    the line is one ``orjson.dumps`` of a dict display. Anything else (NaN, ±inf, a
    complex, an int, a lone surrogate, an optional field that is set) takes
    :func:`to_dict`'s careful path, which writes exactly the same line for the common
    event. One generated function per class, so the common case costs one call.
    """
    names = cls._fields
    scalars = [f for f in names if f in NUMBER_FIELDS and f != "t" and f != "grads_before"]
    lists = [f for f in names if f == "grads_before"]
    checked = " + ".join([f"(0.0 if {f} is None else {f})" for f in scalars] + [f"sum({f})" for f in lists])
    optional = [f for f in names if f in cls._field_defaults]  # written only when not None
    shown = ", ".join(f"{f!r}: {f}" for f in names if f not in optional)
    source = (f"def encode(event):\n"
              f"    {', '.join(names)}, = event\n"
              f"    try:\n"
              f"        total = {checked or '0.0'}\n"
              f"        if total.__class__ is float and total - total == 0.0"
              f"{''.join(f' and {f} is None' for f in optional)}:\n"
              f"            return dumps({{'kind': {cls.kind!r}, {shown}}}, option=NEWLINE)\n"
              f"    except TypeError:  # a lone surrogate, or a number JSON has no form for\n"
              f"        pass\n"
              f"    return careful(event)\n")
    scope: dict = {"dumps": orjson.dumps, "NEWLINE": orjson.OPT_APPEND_NEWLINE, "careful": _careful}
    exec(compile(source, f"<encoder of {cls.kind}>", "exec"), scope)
    encode = scope["encode"]
    encode.__doc__ = f"The JSON line of a ``{cls.kind}`` event."
    return encode


def _careful(event: Event) -> bytes:
    return encode_line(to_dict(event))


ENCODERS: Dict[type, Callable[[Event], bytes]] = {
    cls: (_event_encoder(cls) if orjson is not None and cls.kind != "diagnostic" else _careful)
    for cls in EVENT_TYPES.values()}
ENCODERS.update({cls: split(ENCODERS[cls], encode_line) for cls in LISTS})  # long lists: several lines


def encode_event(event: Event) -> bytes:
    """The event's line in a trace file: ``encode_line(to_dict(event))``, faster.

    >>> from autodiff_trace.core.events import GradsZeroed
    >>> encode_event(GradsZeroed(3, 0.5, (1, 2), (2.0, float("nan"))))
    b'{"kind":"grads_zeroed","seq":3,"t":0.5,"nodes":[1,2],"grads_before":[2.0,"NaN"]}\\n'
    """
    return ENCODERS[event.__class__](event)


def header_line(metadata: dict) -> dict:
    """The header that opens every trace: schema, version, when, which Python, the argv."""
    return {
        "kind": "header",
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "argv": list(sys.argv),
        "compact": COLUMNS,  # what each compact line's array holds, after its tag
        **metadata,
    }


class TraceFileError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line is refused, never held whole
_QUICK_LINE = 2 << 20  # lines up to this long are read by orjson (a long list's line is ~1.1 MB)
_BOM = b"\xef\xbb\xbf"
_DAMAGED = "the file is damaged or was not written by autodiff_trace; re-record the trace"


READING: List[Callable[[str, int, int], None]] = []  # told (path, bytes read, file size) now and then
_CHUNK = 1 << 18  # bytes read at a time


def _pieces(path: Union[str, os.PathLike]) -> Iterator[Tuple[int, List[bytes], bool]]:
    """The file's lines without their newlines, a chunk at a time: ``(number of the first
    line, lines, whether the file ends inside the last of them)``.

    A line longer than :data:`MAX_LINE_BYTES` (say ``/dev/zero``) is refused once that
    many bytes are read; a UTF-8 byte-order mark at the start is dropped. After each
    chunk, each callable in :data:`READING` hears how far the read has got (a command's
    progress bar).
    """
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise TraceFileError(f"{path}: no such trace file") from None
    except OSError as exc:
        raise TraceFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with file:
        number = 1  # of the next line
        size = os.fstat(file.fileno()).st_size if READING else 0
        begun: List[bytes] = []  # the start of a line that goes on in the next chunk
        begun_bytes = 0
        while True:
            try:
                chunk = file.read(_CHUNK)
            except OSError as exc:
                raise TraceFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
            if not chunk:
                break
            lines = chunk.split(b"\n")
            rest = lines.pop()
            if begun and lines:  # the line begun in earlier chunks ends here
                if begun_bytes + len(lines[0]) > MAX_LINE_BYTES:
                    raise _too_long(path, number)
                begun.append(lines[0])
                lines[0] = b"".join(begun)
                begun.clear()
                begun_bytes = 0
            if begun_bytes + len(rest) > MAX_LINE_BYTES:
                raise _too_long(path, number + len(lines))
            if rest:
                begun.append(rest)
                begun_bytes += len(rest)
            if lines:
                if number == 1 and lines[0].startswith(_BOM):
                    lines[0] = lines[0][3:]
                yield number, lines, False
                number += len(lines)
            if READING:
                for tell in READING:
                    tell(str(path), file.tell(), size)
        if begun:
            last = b"".join(begun)
            begun.clear()
            yield number, [last[3:] if number == 1 and last.startswith(_BOM) else last], True


def _too_long(path, number: int) -> TraceFileError:
    return TraceFileError(f"{path}:{number}: the line is longer than {MAX_LINE_BYTES:,} bytes, "
                          f"the most a trace line may hold; {_DAMAGED}")


def _parse(line: bytes) -> Any:
    """One line's JSON value; a line that is not JSON raises ValueError saying why.

    orjson reads the common line; whatever it refuses (a lone surrogate, a NaN token,
    a huge integer, damage) is read again by :mod:`json`, which reads those as before
    and words the error. A line over :data:`_QUICK_LINE` (a damaged file's, say: a long
    list's lines are ~1.1 MB) goes to :mod:`json` directly: orjson holds several times a
    line's size while it reads."""
    if _loads is not None and len(line) <= _QUICK_LINE:
        try:
            return _loads(line)
        except _LoadError:
            pass
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start + 1} is {line[exc.start]:#04x}); {_DAMAGED}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg[0].lower()}{exc.msg[1:]} at column {exc.colno}); "
                         f"the line is damaged or cut short") from None
    except RecursionError:
        raise ValueError(f"its JSON is nested too deeply for a trace line; {_DAMAGED}") from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ValueError(f"a number in it is too long to read; {_DAMAGED}") from None


_HEADER_TEXTS = ("created", "python", "script", "cell")
_HEADER_LISTS = ("argv", "script_args")


def _check_header(path, line: bytes) -> dict:
    try:
        header = _parse(line)
    except ValueError:
        header = None
    if header.__class__ is not dict or header.get("kind") != "header":
        raise TraceFileError(f"{path}:1: not an autodiff_trace trace (the first line must be its header)")
    if header.get("schema") != SCHEMA:
        raise TraceFileError(f"{path}:1: schema {shown(header.get('schema'))} is not {SCHEMA!r}")
    version = header.get("version")
    if version.__class__ is not int or version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise TraceFileError(f"{path}:1: schema version {shown(version)} is not supported "
                             f"(this autodiff_trace reads versions {readable}); "
                             f"re-record the trace or use the matching autodiff_trace")
    for key in _HEADER_TEXTS:
        if header.get(key) is not None and header[key].__class__ is not str:
            raise TraceFileError(f"{path}:1: header.{key} must be a string, got {shown(header[key])}; {_DAMAGED}")
    for key in _HEADER_LISTS:
        if key in header and (header[key].__class__ is not list
                              or any(item.__class__ is not str for item in header[key])):
            raise TraceFileError(f"{path}:1: header.{key} must be a list of strings; {_DAMAGED}")
    return header


def read_header(path: Union[str, os.PathLike]) -> dict:
    """The header line of a trace file: schema, version and run metadata."""
    for _, lines, _ in _pieces(path):
        return _check_header(path, lines[0])
    raise TraceFileError(f"{path}: the file is empty; it holds no trace")


def iter_events(path: Union[str, os.PathLike], *, runs: bool = False) -> Iterator[Event]:
    """Yield the events of a trace file one at a time (bounded memory).

    With ``runs``, a block of compact lines (version 4) that is plainly valid comes as one
    :class:`~.compact_runs.CompactRun` instead of its events, for a reader that works a
    column at a time (it may still ask the run for its events).

    Every line and every field is checked: anything wrong raises :class:`TraceFileError`
    naming the file, the line and the field; a last line cut short without its newline
    (a crash mid-write) is dropped with a warning. Short lines are parsed a block at a
    time (one ``orjson.loads`` for up to :data:`_BLOCK` of them); a block orjson refuses
    is read again line by line, which words the error.
    """
    pieces = _pieces(path)
    first = next(pieces, None)
    if first is None:
        raise TraceFileError(f"{path}: the file is empty; it holds no trace")
    number, lines, cut = first
    version = _check_header(path, lines[0])["version"]
    compact = version >= 3  # only version 3 on writes arrays and site lines
    seq = 0 if version >= 4 else None  # from version 4 a compact line's seq: one more than the event before it
    t = 0.0  # the time of a compact line: that of the line before it
    sites: Dict[int, tuple] = {}  # the sites its site lines have defined
    continued = Continued()  # an event whose long lists go on over the next lines
    blocks = _parsed(path, itertools.chain([(number + 1, lines[1:], cut)], pieces))
    quick = {tag: _READERS[(tag, 1 if seq is not None else 2)] for tag in TAGS} if compact else {}
    values: list = []
    data, first_number = None, number + 1
    try:
        for first_number, values in blocks:
            for is_run, part in (stretches(values) if runs and seq is not None else ((False, values),)):
                if is_run and continued.pending is None:
                    run = plain_run(part, sites, t, seq)
                    if run is not None:
                        seq += run.count
                        yield run
                        continue
                for data in part:
                    if data.__class__ is list and compact:  # the common line: its kind's reader, at once
                        tag = data[0] if data else None
                        read = quick.get(tag) if tag.__class__ is str else None
                        event = read(data, seq, t, sites) if read is not None else None
                        if event is None:  # anything not plainly valid: the careful path reads or words it
                            event = read_compact(data, t, sites, seq)
                        if seq is not None:
                            seq += 1
                        yield event
                        continue
                    if data is None:
                        continue
                    if compact and data.__class__ is dict and "site_no" in data:
                        read_site_line(data, sites)
                        continue
                    if compact and data.__class__ is dict and ("more" in data or "more_of" in data) \
                            or continued.pending is not None:
                        event = continued.take(data if data.__class__ is dict else {})
                        if event is None:
                            continue
                    else:
                        event = from_dict(data)
                    t = event.t
                    if seq is not None:
                        seq = event.seq + 1
                    yield event
    except TraceFileError:
        raise
    except LimitError as exc:
        raise TraceFileError(f"{path}:{_line_of(values, data, first_number)}: {exc}") from None
    except ValueError as exc:
        raise TraceFileError(f"{path}:{_line_of(values, data, first_number)}: {exc}; {_DAMAGED}") from None
    if continued.pending is not None:  # a crash while the long lists were written
        warnings.warn(f"{path}: the last event's list lines are cut short (the traced program stopped "
                      f"mid-write); the events before it are kept", RuntimeWarning)


def _line_of(values: list, data, first: int) -> int:
    """The number of the line whose value is ``data`` (that very object) in a block whose
    first line is numbered ``first``: found only when an error names it."""
    return first + next((i for i, value in enumerate(values) if value is data), 0)


_BLOCK = 2048  # short lines parsed in one call


def _parsed(path, pieces: Iterable[Tuple[int, List[bytes], bool]]) -> Iterator[Tuple[int, list]]:
    """``(number of the first line, the lines' JSON values)`` for consecutive lines: short
    lines a block at a time, a long one alone. A blank line's value is None."""
    for number, lines, cut in pieces:
        start, end = 0, len(lines)
        while start < end:
            stop = min(start + _BLOCK, end)
            block = lines[start:stop]
            if _loads is None or max(map(len, block)) > _QUICK_LINE:
                long = next(i for i, line in enumerate(block) if _loads is None or len(line) > _QUICK_LINE)
                stop = start + (long or 1)  # the short lines before it, or the long line alone
                block = lines[start:stop]
            yield number + start, _values(path, number + start, block, cut and stop == end)
            start = stop


def _values(path, first: int, block: List[bytes], cut: bool) -> list:
    """The JSON values of some consecutive lines, the first numbered ``first``; ``cut``: the
    file ends inside the last of them."""
    if len(block) > 1:
        try:
            values = _loads(b"[" + b",".join(block) + b"]")
            if len(values) == len(block):
                return values
        except _LoadError:
            pass
    values = []  # line by line: the error names its line
    for number, line in enumerate(block, first):
        if not line.strip():
            values.append(None)
            continue
        try:
            values.append(_parse(line))
        except ValueError as exc:
            if cut and number == first + len(block) - 1:
                warnings.warn(f"{path}:{number}: the last line is cut short (the traced program "
                              f"stopped mid-write); the events before it are kept", RuntimeWarning)
                break
            raise TraceFileError(f"{path}:{number}: {exc}") from None
    return values


def load_events(path: Union[str, os.PathLike]) -> List[Event]:
    """All the events of a trace file written by :class:`JsonlSink`, validated."""
    return list(iter_events(path))

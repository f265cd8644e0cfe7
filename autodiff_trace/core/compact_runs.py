"""Runs of compact lines checked a column at a time, for readers that need no event per line.

A command that counts (``autodiff-trace stats``), compares (``diff``) or converts
(``export``) reads the compact lines between two object lines as one :class:`CompactRun`:
their arrays grouped by kind and length, each field's column checked with the same
``plain`` conditions the quick readers test one line at a time (:mod:`.compact`), by
C-level calls over the whole column. A run that is not plainly valid is refused (None),
and its lines are read one by one as events, so an error still names its line and field,
and nothing is counted that would not read.
"""

from __future__ import annotations

from itertools import chain, compress, repeat
from operator import eq, itemgetter
from typing import Dict, Iterator, List, Optional, Tuple

from .compact import _READERS, DEFAULT_NAME, read_compact
from .fields import _ID_END, MAX_LIST_ITEMS

__all__ = ["CompactRun", "plain_run", "stretches", "default_name"]

_INT, _FLOAT, _STR, _BOOL, _NONE = {int}, {float}, {str}, {bool}, type(None)
default_name = eval(f"lambda op, node: {DEFAULT_NAME}")
default_name.__doc__ = "The name of a node line's node whose name is null: what its event is named."


class CompactRun:
    """Consecutive compact lines (version 4), plainly valid: their arrays in order, and by tag.

    Attributes:
        arrays: the lines' arrays, in their order.
        t: the time of every line of the run (that of the line before it).
        count: how many events the run holds.
        seq: the number of its first event (each next one is one more).
        sites: site number -> (site, function), as defined when the run was read.
    """

    __slots__ = ("arrays", "t", "count", "seq", "sites", "_tags", "_rows")

    def __init__(self, arrays: List[list], t: float, seq: int = 0, sites: Optional[dict] = None,
                 tags: Optional[list] = None) -> None:
        self.arrays, self.t, self.count, self.seq = arrays, t, len(arrays), seq
        self.sites = {} if sites is None else sites
        self._tags, self._rows = tags, None

    @property
    def rows(self) -> Dict[str, List[list]]:
        """tag (``"n"``, ``"f"``, ``"g"``) -> the arrays of that kind, in their order; the tags
        in the order they first come."""
        if self._rows is None:
            arrays, tags = self.arrays, self._tags if self._tags is not None else list(map(_TAG, self.arrays))
            kinds = dict.fromkeys(tags)
            self._rows = {tags[0]: arrays} if len(kinds) == 1 else {
                tag: list(compress(arrays, map(eq, tags, repeat(tag)))) for tag in kinds}
        return self._rows

    def events(self) -> Iterator[object]:
        """The run's events, each read from its array as :func:`~.tracefile.iter_events` reads it."""
        return map(self.event, range(self.count))

    def event(self, index: int) -> object:
        """The event of the run's array at ``index``."""
        items, seq = self.arrays[index], self.seq + index
        return _READERS[(items[0], 1)](items, seq, self.t, self.sites) or read_compact(items, self.t, self.sites, seq)


def _ids(column, nullable: bool = False) -> bool:
    kinds = set(map(type, column))
    if nullable and _NONE in kinds:
        kinds.discard(_NONE)
        column = [v for v in column if v is not None]
    return not column or kinds == _INT and min(column) >= 0 and max(column) < _ID_END


def _floats(column, nullable: bool = False) -> bool:
    kinds = set(map(type, column))
    if nullable:
        kinds.discard(_NONE)
    return not kinds or kinds == _FLOAT


def _texts(column) -> bool:
    kinds = set(map(type, column))
    kinds.discard(_NONE)
    return not kinds or kinds == _STR


def _node_columns(columns: list, sites: dict) -> bool:
    """``["n", node, op, value, parents, name, site number]``."""
    _, node, op, value, parents, name, site = columns
    if not (_ids(node) and set(map(type, op)) == _STR and _floats(value) and _texts(name)):
        return False
    if set(map(type, parents)) != {list} or max(map(len, parents)) > MAX_LIST_ITEMS:
        return False
    return _ids(list(chain.from_iterable(parents))) and set(map(type, site)) == _INT \
        and set(site) <= sites.keys()


def _fired_columns(columns: list, sites: dict) -> bool:
    """``["f", pass_no, node, grad(, upstream)]``."""
    return _ids(columns[1]) and _ids(columns[2]) and all(_floats(c) for c in columns[3:])


def _write_columns(columns: list, sites: dict) -> bool:
    """``["g", pass_no, target, fired_by, local_grad, contribution, grad_before(, grad_after,
    replaced, site)]``."""
    n = len(columns)
    return _ids(columns[1]) and _ids(columns[2]) and _ids(columns[3], nullable=True) \
        and _floats(columns[4], nullable=True) and all(_floats(c) for c in columns[5:min(n, 8)]) \
        and (n < 9 or set(map(type, columns[8])) == _BOOL) and (n < 10 or _texts(columns[9]))


_SHAPES = {("n", 7): _node_columns, ("f", 4): _fired_columns, ("f", 5): _fired_columns,
           **{("g", n): _write_columns for n in range(7, 11)}}
_TAG = itemgetter(0)


def plain_run(rows: List[list], sites: dict, t: float, seq: int = 0) -> Optional[CompactRun]:
    """The run of these arrays (version 4 compact lines, ``sites`` defined so far, the first
    one's event numbered ``seq``) when every field of every one is plainly valid, else None:
    read them one by one instead."""
    try:
        tags = list(map(_TAG, rows))
        kinds = set(tags)
    except (IndexError, TypeError):  # an empty array, or a tag that is a list
        return None
    lengths = list(map(len, rows))
    for tag in kinds:
        if len(kinds) == 1:
            group, sizes = rows, lengths
        else:
            same = list(map(eq, tags, repeat(tag)))
            group, sizes = list(compress(rows, same)), list(compress(lengths, same))
        shapes = set(sizes)
        for size in shapes:
            check = _SHAPES.get((tag, size))
            if check is None:
                return None
            part = group if len(shapes) == 1 else list(compress(group, map(eq, sizes, repeat(size))))
            if not check(list(zip(*part)), sites):
                return None
    return CompactRun(rows, t, seq, sites, tags)


_RUN_LEAST = 64  # consecutive arrays worth checking as one run


def stretches(values: list) -> Iterator[Tuple[bool, list]]:
    """A block's values as ``(is_run, values)``: stretches of at least :data:`_RUN_LEAST`
    consecutive arrays (``True``), and what lies between them."""
    kinds = list(map(type, values))
    if kinds.count(list) == len(kinds):
        yield True, values
        return
    start = begun = 0  # the start of what is not yielded yet; of the arrays under way
    for i, kind in enumerate(kinds):
        if kind is list:
            continue
        if i - begun >= _RUN_LEAST:
            if begun > start:
                yield False, values[start:begun]
            yield True, values[begun:i]
            start = i
        begun = i + 1
    if len(values) - begun >= _RUN_LEAST:
        if begun > start:
            yield False, values[start:begun]
        yield True, values[begun:]
    elif start < len(values):
        yield False, values[start:]

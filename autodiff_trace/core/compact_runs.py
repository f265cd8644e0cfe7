"""Runs of compact lines checked a column at a time, for a reader that needs no event.

A command that only counts (``autodiff-trace stats``) reads the compact lines between
two object lines as one :class:`CompactRun`: their arrays grouped by kind and length,
each field's column checked with the same ``plain`` conditions the quick readers test
one line at a time (:mod:`.compact`), by C-level calls over the whole column. A run that
is not plainly valid is refused (None), and its lines are read one by one as events, so
an error still names its line and field, and nothing is counted that would not read.
"""

from __future__ import annotations

from itertools import chain, compress, repeat
from operator import eq, itemgetter
from typing import Dict, Iterator, List, Optional, Tuple

from .fields import _ID_END, MAX_LIST_ITEMS

__all__ = ["CompactRun", "plain_run", "stretches"]

_INT, _FLOAT, _STR, _BOOL, _NONE = {int}, {float}, {str}, {bool}, type(None)


class CompactRun:
    """Consecutive compact lines (version 4), plainly valid, as their arrays by tag.

    Attributes:
        rows: tag (``"n"``, ``"f"``, ``"g"``) -> the arrays of that kind, in their order; the
            tags in the order they first come.
        t: the time of every line of the run (that of the line before it).
        count: how many events the run holds.
    """

    __slots__ = ("rows", "t", "count")

    def __init__(self, rows: Dict[str, List[list]], t: float, count: int) -> None:
        self.rows, self.t, self.count = rows, t, count


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


def plain_run(rows: List[list], sites: dict, t: float) -> Optional[CompactRun]:
    """The run of these arrays (version 4 compact lines, ``sites`` defined so far) when every
    field of every one is plainly valid, else None: read them one by one instead."""
    try:
        tags = list(map(_TAG, rows))
        shapes = list(zip(tags, map(len, rows)))
        kinds = set(shapes)
    except (IndexError, TypeError):  # an empty array, or a tag that is a list
        return None
    for shape in kinds:
        check = _SHAPES.get(shape)
        group = rows if len(kinds) == 1 else list(compress(rows, map(eq, shapes, repeat(shape))))
        if check is None or not check(list(zip(*group)), sites):
            return None
    if len(kinds) == 1:
        return CompactRun({tags[0]: rows}, t, len(rows))
    return CompactRun({tag: list(compress(rows, map(eq, tags, repeat(tag)))) for tag in dict.fromkeys(tags)}, t,
                      len(rows))


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

"""A captured batch read column-wise: the model and the analyzers fold a run of it in one call.

A tracer that captures the hot events (:mod:`.captured`) hands each batch to the model
and to the analyzers before its sinks. An analyzer that reads runs (:class:`ReadsRuns`)
names the events of the batch it must read one by one (:meth:`ReadsRuns.singles`: one
that may complete a finding, or that needs the engine's call stack); the stretches
between them are :class:`Run` s, read as columns with no event object per event.
:func:`fold_run` folds a run into a :class:`~.model.TraceModel` exactly as its events
one by one would, and falls back to that wherever a column cannot hold a value unchanged.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections import _count_elements
from itertools import accumulate, chain, compress, repeat
from math import isfinite
from operator import add, eq, getitem, itemgetter, not_, sub
from typing import TYPE_CHECKING, Iterable, List, Optional, Protocol, runtime_checkable

from .captured import CAPTURED, FIRED, NODE, WRITE
from .columns import DEFAULT_NAME, LEAF_OR
from .write_log import packed, plain_floats, put_all

if TYPE_CHECKING:
    from .events import Event
    from .model import TraceModel

__all__ = ["Run", "ReadsRuns", "fold_run", "finite_floats"]

_new = tuple.__new__
_kind, _second = itemgetter(0), itemgetter(1)
_FLOAT = float
_MASKS = [bytes(int(code == kind) for code in range(256)) for kind in range(len(CAPTURED))]  # kind -> its translate table
_PLACES: List[int] = []  # 0, 1, 2, ...: places picked from a list, so no int is made per event


def _positions(count: int) -> List[int]:
    """``list(range(count))``, its ints shared from one list kept for every run."""
    if len(_PLACES) < count:
        _PLACES.extend(range(len(_PLACES), count))
    return _PLACES[:count]


def finite_floats(values) -> bool:
    """Are all ``values`` finite floats?

    >>> finite_floats([1.0, -2.0]), finite_floats([float("inf")]), finite_floats([1])
    (True, False, False)
    """
    return {*map(type, values)} <= {_FLOAT} and all(map(isfinite, values))


class Run:
    """Events ``start`` to ``stop`` of a captured batch, numbered from ``first_seq``, timed
    ``t``. Its columns are made on first use, each once: ``column(kind, field)`` is item
    ``field`` of every tuple of ``kind`` (``node_at``, ``fire_at``, ``write_at``: their
    places in the run). A column is one list made by a built-in map: no iterator or tuple
    per event (a ``zip`` of the tuples makes an iterator per tuple), so reading a run does
    not set the garbage collector off."""

    def __init__(self, batch: list, start: int, stop: int, first_seq: int, t: float) -> None:
        self.raws = batch if start == 0 and stop == len(batch) else batch[start:stop]
        self.start, self.first_seq, self.t = start, first_seq, t
        self.kinds = bytes(map(_kind, self.raws))  # a kind's mask is one translate of these bytes
        self._places: dict = {}
        self._columns: dict = {}

    def __len__(self) -> int:
        return len(self.raws)

    def mask(self, kind: int) -> bytes:
        """A byte per event of the run: 1 where it is of ``kind``, else 0 (one C call)."""
        return self.kinds.translate(_MASKS[kind])

    def _of(self, kind: int) -> tuple:
        """(places, tuples) of the events of ``kind``, picked by one mask of the kinds."""
        found = self._places.get(kind)
        if found is None:
            kinds, raws = self.kinds, self.raws
            count = kinds.count(kind)
            if count == len(kinds):
                found = (_positions(count), raws)
            elif not count:
                found = ([], [])
            else:
                mask = kinds.translate(_MASKS[kind])
                found = (list(compress(_positions(len(kinds)), mask)), list(compress(raws, mask)))
            self._places[kind] = found
        return found

    def column(self, kind: int, field: int) -> list:
        """Item ``field`` of each tuple of ``kind`` (:data:`~.captured.NODE`, ...), in order."""
        key = (kind, field)
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = list(map(itemgetter(field), self._of(kind)[1]))
        return found

    def types(self, kind: int, field: int) -> set:
        """The types found in a column (made once)."""
        key = (kind, field, "types")
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = {*map(type, self.column(kind, field))}
        return found

    def distinct(self, kind: int, field: int) -> bool:
        """Is every item of a column a different one (made once)?"""
        key = (kind, field, "distinct")
        found = self._columns.get(key)
        if found is None:
            column = self.column(kind, field)
            found = self._columns[key] = len({*column}) == len(column)
        return found

    def finite(self, kind: int, field: int) -> bool:
        """Is every number of a column a finite float (made once)?"""
        key = (kind, field, "finite")
        found = self._columns.get(key)
        if found is None:
            column = self.column(kind, field)
            # a sum of floats is finite only if every one is (one C loop; a sum that overflows
            # is checked item by item)
            found = self._columns[key] = self.types(kind, field) <= {_FLOAT} and (
                isfinite(sum(column)) or all(map(isfinite, column)))
        return found

    def plain(self, kind: int, field: int) -> bool:
        """Is every number of a column a float that is not NaN (what a float column holds unchanged)?"""
        return self.finite(kind, field) or plain_floats(self.column(kind, field))

    def offsets(self, kind: int, field: int, base: int) -> list:
        """``id - base`` for each id of a column of ints (made once per base)."""
        key = (kind, field, base)
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = list(map(sub, self.column(kind, field), repeat(base)))
        return found

    node_at = property(lambda self: self._of(NODE)[0])
    fire_at = property(lambda self: self._of(FIRED)[0])
    write_at = property(lambda self: self._of(WRITE)[0])

    @property
    def pass_no(self) -> Optional[int]:
        """The one pass the run's firings and writes belong to (None: none, or several; made once)."""
        found = self._columns.get("pass_no", self)
        if found is self:
            found = self._columns["pass_no"] = self._one_pass()
        return found

    def _one_pass(self) -> Optional[int]:
        if NODE not in self.kinds:  # firings and writes only: item 1 of every tuple
            if not self.raws:
                return None
            column = list(map(_second, self.raws))
            return column[0] if column.count(column[0]) == len(column) else None
        found = None
        for column in (self.column(FIRED, 1), self.column(WRITE, 1)):
            if column:
                if column.count(column[0]) != len(column) or found not in (None, column[0]):
                    return None
                found = column[0]
        return found

    def writes_before(self) -> List[int]:
        """For each place of the run, how many writes come before it in the run."""
        return list(accumulate(self.mask(WRITE), initial=0))

    def event(self, index: int) -> "Event":
        """Event ``index`` of the run, as an event object."""
        raw = self.raws[index]
        return _new(CAPTURED[raw[0]], (self.first_seq + index, self.t) + raw[1:])

    def events(self) -> Iterable["Event"]:
        classes, t = CAPTURED, self.t
        return (_new(classes[raw[0]], (seq, t) + raw[1:]) for seq, raw in enumerate(self.raws, self.first_seq))


@runtime_checkable
class ReadsRuns(Protocol):
    """An analyzer that reads a captured batch a run at a time: ``singles(run)`` gives
    the places of the batch (``run`` is all of it) to read one by one, each with
    ``read_captured(raw, event)`` (its findings, as ``handle`` gives them), after the
    model has folded it; the runs between them go to ``read_run(run)``, after the model
    has folded them. ``watch``, when not None, is called with each tuple as it is captured
    (while the engine's call stack is there)."""

    watch: Optional[object]

    def singles(self, run: Run) -> Iterable[int]: ...

    def read_run(self, run: Run) -> None: ...

    def read_captured(self, raw: tuple, event: "Event") -> Optional[Iterable]: ...


def fold_run(model: "TraceModel", run: Run) -> None:
    """Fold ``run`` into ``model``: column by column when every value fits its column (a
    forward's nodes, or one pass's firings and writes), else event by event."""
    kinds = run.kinds
    if NODE not in kinds:
        if _fold_pass(model, run):
            return
    elif FIRED not in kinds and WRITE not in kinds and _fold_nodes(model, run):
        return
    for event in run.events():
        model.handle(event)


def _fold_nodes(model: "TraceModel", run: Run) -> bool:
    """The ``node_created`` events of ``run`` into the node table, as :meth:`NodeTable.add`
    stores the common case (new small ids, float values, no module); False, with nothing
    changed, for anything else."""
    table = model.nodes
    ids, ops, parents, names, sites, functions, modules = (run.column(NODE, field) for field in (1, 2, 4, 5, 6, 7, 8))
    if table._sparse is not None or table.modules is not None or not table.names \
            or modules.count(None) != len(modules) or run.types(NODE, 1) != {int} or not run.plain(NODE, 3):
        return False
    at = run.offsets(NODE, 1, table._base)
    try:
        flat = packed("q", [*chain.from_iterable(parents)])  # not array("q", ...), which parses each id
        counts = list(map(len, parents))
    except (struct.error, TypeError):
        return False
    dense, rows = table._dense, len(table.names)
    low, high = min(at), max(at)
    if low < 0 or high >= 2 * rows + 65536 or len({*at}) != len(at):
        return False  # an id far off: the table's own add decides
    if low < len(dense):  # an id with a row already is made again: the table's own add decides
        known = sorted(at)
        if any(map(getitem, repeat(dense), known[:bisect_left(known, len(dense))])):
            return False
    table.ids.frombytes(packed("q", ids))
    table.data.frombytes(packed("d", run.column(NODE, 3)))
    table.parents.frombytes(flat)
    table.starts.frombytes(packed("q", list(accumulate(counts, initial=table.starts[-1]))[1:]))  # [0]: the last start
    share = table._shared.setdefault
    for column, texts in ((table.ops, ops), (table.sites, sites), (table.functions, functions)):
        first = texts[0]
        if texts.count(first) == len(texts):  # one text for the whole run (a count by identity, mostly)
            column.extend(repeat(share(first, first), len(texts)))
        else:
            column.extend(map(share, texts, texts))
    # a node named op#id holds no string of its own (see NameColumn), nor counts in name_uses
    if _none_named_by_id(names):  # a chain's ``y``s and constants: no op#id to build and compare
        table.names.extend(names)
        _count_elements(model.name_uses, names)
    else:
        _fold_names(model, ops, ids, names)
    table.grads.frombytes(bytes(8 * len(at)))
    if high >= len(dense):
        dense.frombytes(bytes(4 * (high + 1 - len(dense))))
    put_all(dense, at, range(rows + 1, rows + 1 + len(at)))
    model.events += len(run)
    return True


def _fold_names(model: "TraceModel", ops: list, ids: list, names: list) -> None:
    """The names of new nodes into the node table: a node named op#id as DEFAULT_NAME,
    any other name as itself, counted in ``name_uses``."""
    starts = {op: f"{LEAF_OR.get(op, op)}#" for op in {*ops}}  # each op's default name, less the id
    defaults = list(map(add, map(starts.__getitem__, ops), map(str, ids)))
    if defaults == names:  # every node named op#id (most runs): one comparison of the lists
        model.nodes.names.extend(repeat(DEFAULT_NAME, len(names)))
    else:
        default = list(map(eq, names, defaults))
        model.nodes.names.extend(map(getitem, zip(names, repeat(DEFAULT_NAME)), default))
        _count_elements(model.name_uses, compress(names, map(not_, default)))


def _none_named_by_id(names: list) -> bool:
    """Can no name of ``names`` be a default ``op#id``? True when they are all strings and
    none holds a ``#`` (one join and one search, in C), so nothing need be built to compare.

    >>> _none_named_by_id(["y", "1", "w[0]"]), _none_named_by_id(["y", "mul#3"]), _none_named_by_id(["y", 2])
    (True, False, False)
    """
    try:
        return "#" not in "".join(names)
    except TypeError:  # a name of the user's own type
        return False


def _fold_pass(model: "TraceModel", run: Run) -> bool:
    """The firings and writes of one pass into its columns and the nodes' grads, as
    :meth:`TraceModel.handle` folds them one by one; False, with nothing changed, when a
    value would not fit a column (a NaN, an int grad, an unknown target) or the pass keeps
    maps that are updated write by write."""
    pass_no = run.pass_no
    if pass_no is None:
        return False
    p = model._pass_for(pass_no)
    table = model.nodes
    fires, writes = bool(run.fire_at), bool(run.write_at)
    if p is not None and fires and (p._fire_number is not None or p._upstream is not None):
        return False
    if writes:
        if table._sparse is not None or table.odd_grads or run.types(WRITE, 2) != {int} or not run.plain(WRITE, 7):
            return False
        at = run.offsets(WRITE, 2, table._base)
        dense = table._dense
        if min(at) < 0 or max(at) >= len(dense):
            return False
        rows = list(map(getitem, repeat(dense), at))  # row + 1; 0: a node the table lacks
        if 0 in rows:
            return False
        if p is not None:
            if p.writes_to.indexed or not p.writes.extend_run(run, model._shared):
                return False
        put_all(table.grads, map(sub, rows, repeat(1)), run.column(WRITE, 7))
    if fires and p is not None:
        p.fire_all(run.column(FIRED, 2), run.column(FIRED, 4), run.types(FIRED, 2) == {int},
                   run.types(FIRED, 4) <= {_FLOAT})
    model.events += len(run)
    return True

"""A pass's grad writes held as columns: one ``array`` slot (or one shared-string
reference) per field, a ``GradAccumulated`` handed out when asked.

A write whose values do not fit a column exactly (an int where a float is expected, a
NaN, an id beyond 64 bits) is kept whole beside the columns, so what comes out is always
equal to what went in.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from collections import deque
from itertools import compress, repeat
from math import copysign
from operator import add, ne, setitem
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from .captured import WRITE
from .events import GradAccumulated

__all__ = ["WriteLog", "NONE", "packed", "plain_floats", "put_all"]

NONE = -(2 ** 63)  # fired_by None, in an int64 column
_NONE = NONE
_FLOAT, _NONETYPE = float, type(None)


def packed(code: str, values: Sequence) -> bytes:
    """``values`` as the bytes of an array of ``code`` (``"d"``, ``"q"``): quicker than
    ``array(code, values)``, which parses each item on its own.

    >>> array("d", packed("d", [1.5, 2.0]))
    array('d', [1.5, 2.0])
    """
    return struct.pack(f"{len(values)}{code}", *values)


def put_all(column: array, places: Iterable[int], values: Iterable) -> None:
    """``column[place] = value`` for each pair, through a memoryview: an array's own item
    assignment parses each value as a call's arguments, about a third of its cost.

    >>> column = array("d", [0.0, 0.0, 0.0]); put_all(column, [2, 0], [1.5, 2.5]); column
    array('d', [2.5, 0.0, 1.5])
    """
    with memoryview(column) as view:
        deque(map(setitem, repeat(view), places, values), 0)


def _same(a: float, b: float) -> bool:
    """Are two floats (not NaN) the same number, sign of zero included?"""
    return a == b and (a != 0.0 or copysign(1.0, a) == copysign(1.0, b))


def plain_floats(values: Sequence) -> bool:
    """Are all ``values`` floats that are not NaN (what a float column holds unchanged)?

    >>> plain_floats([1.0, 2.5]), plain_floats([1.0, float("nan")]), plain_floats([1, 2.0])
    (True, False, False)
    """
    return {*map(type, values)} <= {_FLOAT} and True not in map(ne, values, values)


class WriteLog:
    """A pass's grad writes, in order, as columns; ``log[i]`` is the i-th ``GradAccumulated``."""

    def __init__(self, pass_no: int) -> None:
        self.pass_no = pass_no
        self.seqs = array("q")
        # the times, run-length: row _time_rows[i] onwards has _time_values[i] (a batch shares one)
        self._time_rows = array("q")
        self._time_values = array("d")
        self.targets = array("q")
        self.writers = array("q")  # fired_by; _NONE for a write outside any backward function
        self.locals = array("d")
        self.contributions = array("d")
        self.befores = array("d")
        # None while every grad_after is grad_before + contribution (the contribution, for a
        # write that replaced the grad), bit for bit: each is then worked out when read
        self.afters: Optional[array] = None
        self.flags = bytearray()  # 1: replaced, 2: local_grad is None
        self.site_ids = array("i")  # each write's site, as its place in ``site_texts``
        self.site_texts: List[Optional[str]] = [None]
        self._site_id: Dict[Optional[str], int] = {None: 0}
        self.odd: Dict[int, GradAccumulated] = {}  # row -> the whole event, when columns cannot hold it

    def append(self, w: GradAccumulated, shared: Dict[str, str]) -> None:
        row = len(self.targets)
        local, fired_by = w.local_grad, w.fired_by
        contribution, before, after = w.contribution, w.grad_before, w.grad_after
        whole = not (contribution.__class__ is _FLOAT and before.__class__ is _FLOAT
                     and after.__class__ is _FLOAT and contribution == contribution and before == before
                     and after == after and (local is None or (local.__class__ is _FLOAT and local == local))
                     and w.t.__class__ is _FLOAT and w.replaced.__class__ is bool
                     and w.pass_no == self.pass_no and w.target.__class__ is int
                     and (fired_by is None or fired_by.__class__ is int))
        if not whole:
            try:
                self.targets.append(w.target)
                self.writers.append(_NONE if fired_by is None else fired_by)
                self.seqs.append(w.seq)
            except (OverflowError, TypeError):
                whole = True
                for column in (self.targets, self.writers, self.seqs):
                    del column[row:]
        if whole:
            self.odd[row] = w
            for column, blank in ((self.targets, 0), (self.writers, _NONE), (self.seqs, 0), (self.locals, 0.0),
                                  (self.contributions, 0.0), (self.befores, 0.0), (self.flags, 0),
                                  (self.site_ids, 0)):
                column.append(blank)
            if self.afters is not None:
                self.afters.append(0.0)
            return
        self._timed(row, w.t)
        if self.afters is None and not _same(after, contribution if w.replaced else before + contribution):
            self._keep_afters()
        self.locals.append(0.0 if local is None else local)
        self.contributions.append(contribution)
        self.befores.append(before)
        if self.afters is not None:
            self.afters.append(after)
        self.flags.append((1 if w.replaced else 0) | (2 if local is None else 0))
        self.site_ids.append(self._site_of(w.site, shared))

    def _timed(self, row: int, t: float) -> None:
        """Rows from ``row`` on were written at ``t`` (until another time is given)."""
        values = self._time_values
        if not values or values[-1] != t:
            self._time_rows.append(row)
            values.append(t)

    def _site_of(self, site: Optional[str], shared: Dict[str, str]) -> int:
        """The place of ``site`` in ``site_texts`` (added there on first use)."""
        found = self._site_id.get(site)
        if found is None:
            found = self._site_id[site] = len(self.site_texts)
            self.site_texts.append(shared.setdefault(site, site))
        return found

    def extend_run(self, run, shared: Dict[str, str]) -> bool:
        """:meth:`append` the writes of a captured run (:class:`~.runs.Run`, of this pass)
        column by column; False, with nothing appended, when one would not fit the columns."""
        t, write = run.t, WRITE
        types = run.types
        if t.__class__ is not _FLOAT or types(write, 2) != {int} or not types(write, 3) <= {int, _NONETYPE} \
                or types(write, 8) != {bool} or not run.plain(write, 5) or not run.plain(write, 6) \
                or not run.plain(write, 7):
            return False
        writers, locals_, replaced = run.column(write, 3), run.column(write, 4), run.column(write, 8)
        no_local = _NONETYPE in types(write, 4)
        if not (plain_floats([x for x in locals_ if x is not None]) if no_local else run.plain(write, 4)):
            return False
        seqs = list(compress(range(run.first_seq, run.first_seq + len(run)), run.mask(write)))
        try:
            ids = [packed("q", seqs), packed("q", run.column(write, 2)),
                   packed("q", [_NONE if w is None else w for w in writers] if None in writers else writers)]
        except struct.error:  # an id beyond 64 bits
            return False
        row = len(self.targets)
        for column, data in zip((self.seqs, self.targets, self.writers), ids):
            column.frombytes(data)
        self._timed(row, t)
        self.locals.frombytes(packed("d", [0.0 if x is None else x for x in locals_] if no_local else locals_))
        contributions, befores, afters = (run.column(write, field) for field in (5, 6, 7))
        if self.afters is None:
            derived = [c if r else b + c for b, c, r in zip(befores, contributions, replaced)] if True in replaced \
                else list(map(add, befores, contributions))
            if packed("d", derived) != packed("d", afters):
                self._keep_afters()
        self.contributions.frombytes(packed("d", contributions))
        self.befores.frombytes(packed("d", befores))
        if self.afters is not None:
            self.afters.frombytes(packed("d", afters))
        if no_local or True in replaced:
            self.flags.extend(bytes((1 if r else 0) | (2 if x is None else 0) for r, x in zip(replaced, locals_)))
        else:
            self.flags.extend(bytes(len(seqs)))
        sites = run.column(write, 9)
        if sites.count(sites[0]) == len(sites):  # one site for the whole run (None: this package's engine)
            self.site_ids.frombytes(packed("i", [self._site_of(sites[0], shared)]) * len(sites))
        else:
            self.site_ids.frombytes(packed("i", [self._site_of(site, shared) for site in sites]))
        return True

    def __len__(self) -> int:
        return len(self.targets)

    def __bool__(self) -> bool:
        return bool(self.targets)

    def after(self, row: int) -> float:
        """The grad write ``row`` left (a row the columns hold)."""
        if self.afters is not None:
            return self.afters[row]
        return self.contributions[row] if self.flags[row] & 1 else self.befores[row] + self.contributions[row]

    def _keep_afters(self) -> None:
        """Hold grad_after as a column from now on: a write's is not its sum."""
        self.afters = array("d", map(self.after, range(len(self.contributions))))

    def time(self, row: int) -> float:
        """When write ``row`` was made (the time of its batch)."""
        return self._time_values[bisect_right(self._time_rows, row) - 1]

    def site(self, row: int) -> Optional[str]:
        return self.site_texts[self.site_ids[row]]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if self.odd and index in self.odd:
            return self.odd[index]
        flags, writer = self.flags[index], self.writers[index]
        return GradAccumulated(self.seqs[index], self.time(index), self.pass_no, self.targets[index],
                               None if writer == _NONE else writer,
                               None if flags & 2 else self.locals[index], self.contributions[index],
                               self.befores[index], self.after(index), bool(flags & 1),
                               self.site_texts[self.site_ids[index]])

    def __iter__(self) -> Iterator[GradAccumulated]:
        for row in range(len(self.targets)):
            yield self[row]

    def target(self, row: int):
        return self.odd[row].target if self.odd and row in self.odd else self.targets[row]

    def writer(self, row: int):
        if self.odd and row in self.odd:
            return self.odd[row].fired_by
        writer = self.writers[row]
        return None if writer == _NONE else writer

    def rows_to(self, wanted) -> Dict[int, List[int]]:
        """Target -> its write rows in order, for the targets in ``wanted`` only (one scan)."""
        found: Dict[int, List[int]] = {}
        targets = self.targets
        for row in range(len(targets)):
            target = targets[row] if not (self.odd and row in self.odd) else self.odd[row].target
            if target in wanted:
                found.setdefault(target, []).append(row)
        return found

    def seq(self, row: int) -> int:
        return self.odd[row].seq if self.odd and row in self.odd else self.seqs[row]

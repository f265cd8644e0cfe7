"""Node ids that cost no memory: ``id = block + offset``, two ints every node shares.

A block is one int shared by the :data:`BLOCK` nodes numbered in a row, and an offset
is one of CPython's cached small ints, so numbering a node allocates nothing (an int
of its own above 256 would be 28 bytes per node). The topological order files nodes by
block and offset instead of sorting them.
"""

from __future__ import annotations

from itertools import chain, count, cycle, islice, repeat
from typing import Iterator, Tuple

__all__ = ["BLOCK", "ids_from"]

BLOCK = 64  # nodes per block: offsets run 0 .. BLOCK - 1


def ids_from(first: int) -> Iterator[Tuple[int, int]]:
    """Node ids ``first``, ``first + 1``, ... as (block, offset) pairs.

    Only C iterators take part, so taking the next pair is atomic across threads.

    >>> [block + offset for block, offset in islice(ids_from(62), 4)]
    [62, 63, 64, 65]
    """
    start = first - first % BLOCK
    pairs = zip(chain.from_iterable(map(repeat, count(start, BLOCK), repeat(BLOCK))),
                cycle(range(BLOCK)))
    next(islice(pairs, first - start, first - start), None)  # skip to ``first``
    return pairs

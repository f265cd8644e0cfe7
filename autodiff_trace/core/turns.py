"""Threads take turns in one trace: each backward pass is one unbroken block of events.

Nested tracers share one ``Turns``: the sequence numbers, the count of passes, the lock
that keeps them whole across threads, and the events of threads waiting for their turn.
While one thread's pass is under way, events from other threads wait, in order, and go
out when that pass ends; so ``seq`` always increases and no pass interleaves another.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional

__all__ = ["Turns", "PassCounts", "ThreadState"]


class PassCounts:
    """The counts of one thread's backward pass under way."""

    __slots__ = ("pass_no", "root", "start", "fired", "accumulated")

    def __init__(self, pass_no: int, root: int) -> None:
        self.pass_no, self.root, self.start = pass_no, root, time.perf_counter()
        self.fired = self.accumulated = 0


class ThreadState:
    """What one thread has under way in one tracer: its pass, and the line it is naming."""

    __slots__ = ("pass_", "held")

    def __init__(self) -> None:
        self.pass_: Optional[PassCounts] = None
        self.held = None  # a HeldLine


class Turns:
    """The clock, the lock and the queue that nested tracers and threads share."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.seq = 0
        self.last_t = 0.0  # the time of the event stamped last (captured batches are given it)
        self.passes = 0
        self.lock = threading.RLock()
        self.streaming: Optional[int] = None  # the thread whose pass is going out now
        self.waiting: Dict[int, List[tuple]] = {}  # thread -> its events, held back in order

    def must_wait(self, thread: int) -> bool:
        """Does ``thread`` have to hold its events back (another thread's pass is out)?"""
        return (self.streaming is not None and self.streaming != thread) or thread in self.waiting

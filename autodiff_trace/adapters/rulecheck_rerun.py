"""Re-run a user's forward op on nudged inputs, in a forked child, and judge a rule by it.

The child is a copy of the process: it sets the parents' values, calls the op, reads
the output's value and sends the numbers back through a pipe, then ``os._exit``s. The
user's objects in this process are never touched, whatever the op does (a global
tape, an id counter, a list of every node).
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import sys
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

from ..core import active

__all__ = ["Candidate", "Job", "Slope", "why_no_fork", "rerun_in_child", "step_for", "judge"]

TIMEOUT = 5.0  # seconds a batch of re-runs may take before the child is stopped
RTOL = 1e-4  # relative disagreement a rule may show against the central difference
KINK = 1e-2  # relative disagreement of the one-sided differences that marks a kink


class Candidate(NamedTuple):
    """A way to make the node again: ``fn(*args, **kwargs)``, named for the findings."""

    name: str
    fn: Callable
    args: tuple
    kwargs: dict
    slots: Tuple[Tuple[str, ...], ...]  # per parent, the argument names holding it
    code: Optional[object] = None  # the op function's code, for a function or method
    made_at: Optional[int] = None  # the line of that code that made the node


class Job:
    """One firing to check: the op's candidates, the parents and their values at firing."""

    __slots__ = ("candidates", "parents", "values", "node_value", "value_attr", "read_value", "node", "asked")

    def __init__(self, candidates: Sequence[Candidate], parents: list, values: list,
                 node_value: float, value_attr: str, read_value: Callable,
                 node=None, asked: Sequence[Callable] = ()) -> None:
        self.candidates, self.parents, self.values = list(candidates), parents, values
        self.node_value, self.value_attr, self.read_value = node_value, value_attr, read_value
        self.node, self.asked = node, list(asked)  # methods the node's rule asks for its local derivatives


class Slope(NamedTuple):
    """What the forward op did around one parent's value ``at``, with step ``h``."""

    at: float
    h: float
    f0: float
    plus: float
    minus: float
    eps: float  # the precision of the numbers involved

    @property
    def central(self) -> float:
        return (self.plus - self.minus) / (2 * self.h)

    @property
    def left(self) -> float:
        return (self.f0 - self.minus) / self.h

    @property
    def right(self) -> float:
        return (self.plus - self.f0) / self.h

    @property
    def noise(self) -> float:
        """How far rounding alone can move a difference quotient of these values."""
        return 16 * self.eps * max(abs(self.f0), abs(self.plus), abs(self.minus)) / self.h


def why_no_fork() -> Optional[str]:
    """Why re-running in a child is impossible here, or None when it is possible."""
    if not hasattr(os, "fork"):
        return "this platform cannot fork a process to re-run forward ops in"
    if threading.active_count() > 1:
        return "the process runs other threads, and a forked copy of it could hang on their locks"
    return None


def _eps(value) -> float:
    """Machine epsilon of a number's type (float64 unless it says otherwise: numpy scalars)."""
    dtype = getattr(value, "dtype", None)
    size = getattr(dtype, "itemsize", 8)
    return {2: 2.0 ** -10, 4: 2.0 ** -23}.get(size, 2.0 ** -52)


def step_for(value) -> float:
    """The central-difference step at ``value``: 1e-6 of its size (at least 1e-6) for
    float64, the cube root of epsilon of its size for narrower floats.

    >>> step_for(1.5), step_for(0.0), step_for(1e8)
    (1.5e-06, 1e-06, 100.0)
    """
    eps = _eps(value)
    scale = max(1.0, abs(float(value)))
    return (1e-6 if eps <= 2.0 ** -52 else eps ** (1 / 3)) * scale


def judge(applied: float, slack: float, slope: Slope) -> Optional[bool]:
    """Does the applied derivative agree with the op's own slope? None when it cannot be
    told: a kink (one-sided differences disagree), numbers that are not finite, or a write
    whose rounding (``slack``) is a sizeable part of the slope.

    >>> judge(1.0, 0.0, Slope(0.0, 1e-6, 0.0, 1e-6, 0.0, 2.0 ** -52)) is None  # relu at 0
    True
    >>> judge(-1.25, 0.0, Slope(1.5, 1.5e-6, 0.905148, 0.905148 + 2.7e-7, 0.905148 - 2.7e-7, 2.0 ** -52))
    False
    """
    numbers = (applied, slope.f0, slope.plus, slope.minus)
    if not all(math.isfinite(n) for n in numbers):
        return None
    left, right, noise = slope.left, slope.right, slope.noise
    if abs(left - right) > KINK * max(abs(left), abs(right)) + noise:
        return None
    central = slope.central
    if slack > KINK * abs(central) + noise:
        return None  # the write was lost in rounding (a tiny amount added to a large grad)
    allowed = RTOL * max(abs(applied), abs(central)) + abs(left - right) + noise + slack
    return abs(applied - central) <= allowed


# -- the child ------------------------------------------------------------------------
def _run(candidate: Candidate, read_value: Callable) -> Optional[float]:
    try:
        return read_value(candidate.fn(*candidate.args, **candidate.kwargs))
    except Exception:
        return None


def _slopes_in_child(job: Job) -> Tuple[Optional[int], list]:
    """(index of the candidate that remade the node, one Slope per parent), or (None, [])."""
    attr, read = job.value_attr, job.read_value
    for parent, value in zip(job.parents, job.values):
        setattr(parent, attr, value)
    for index, candidate in enumerate(job.candidates):
        f0 = _run(candidate, read)
        if f0 is None or not abs(f0 - job.node_value) <= 1e-12 * max(1.0, abs(job.node_value)):
            continue  # not this op, or not a deterministic one
        slopes = []
        for parent, value in zip(job.parents, job.values):
            h = step_for(value)
            setattr(parent, attr, value + h)
            plus = _run(candidate, read)
            setattr(parent, attr, value - h)
            minus = _run(candidate, read)
            setattr(parent, attr, value)
            if plus is None or minus is None:
                slopes.append(None)
                continue
            slopes.append(Slope(float(value), h, f0, plus, minus, max(_eps(value), _eps(f0))))
        moved = any(s is not None and (s.plus != s.f0 or s.minus != s.f0) for s in slopes)
        if not moved and index + 1 < len(job.candidates):
            continue  # its output ignores its arguments: a helper handed the value, not the op
        return index, slopes
    return None, []


def _answers_in_child(job: Job) -> list:
    """(index, line of the ``return`` it ran, the numbers it returned) for each method the
    rule asks (``self.local_grads()``), called on the node as it was when the rule ran."""
    if not job.asked:
        return []
    setattr(job.node, job.value_attr, job.node_value)
    found = []
    for index, method in enumerate(job.asked):
        code, lines = method.__code__, []

        def watch(frame, event, arg):
            if frame.f_code is not code:
                return None
            if event == "return":
                lines.append(frame.f_lineno)
            return watch

        sys.settrace(watch)
        try:
            answer = method(job.node)
        except Exception:
            answer = None
        finally:
            sys.settrace(None)
        items = answer if isinstance(answer, (tuple, list)) else (answer,)
        numbers = [float(n) for n in items if isinstance(n, (int, float)) and not isinstance(n, bool)]
        if lines and numbers:
            found.append((index, lines[-1], numbers))
    return found


def _child(jobs: List[Job], write_end: int, prepare: Optional[Callable]) -> None:
    try:
        active._stack.clear()  # no tracer listens: re-run ops report nothing
        if prepare is not None:
            prepare()
        active.announce()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sys.stdout = sys.stderr = open(os.devnull, "w")
        sys.settrace(None)
        results = [(*_slopes_in_child(job), _answers_in_child(job)) for job in jobs]
        data = pickle.dumps(results)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view):]
    finally:
        os._exit(0)


def rerun_in_child(jobs: List[Job], prepare: Optional[Callable] = None) -> Optional[list]:
    """Each job's (candidate index, slopes, answers), computed in a forked child with tracing off
    (``prepare()`` runs first, in the child); None when the child failed or took longer
    than ``TIMEOUT`` seconds."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(jobs, write_end, prepare)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                return None
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:
        return None

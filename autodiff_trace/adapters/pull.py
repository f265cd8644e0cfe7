"""Pull engines: a node method that computes the node's gradient on demand from its
consumers' gradients (``grad()`` summing ``weight * child.grad()``) and keeps it in the
grad attribute.

Such an engine writes each grad once, as a whole, so the pass is told from the calls:
the first call from outside any pull confirms the seed written just before (the pass
begins there, even when every grad is already cached), and each consumer's gradient
returned into a node's pull is that consumer's contribution to the node, reported as
it happens, at the line that adds it in (``weight`` read from the node's own list of
``(weight, consumer)`` pairs). The node's final write of the sum is then no new event.
"""

from __future__ import annotations

import dis
import sys
from types import CodeType, FunctionType
from typing import Dict, List, Optional, Tuple

from ..core.sites import format_site
from ..core.tracer import active_tracer
from .detect import Vocabulary, self_stores
from .nodeids import as_float
from .roles import instance_items

__all__ = ["pull_method", "PullHook", "PullWatch"]

_REPORT_FRAMES = 200  # room lent to report one call, as for firings
_CALL_DEPTH = 2  # recursion depth each traced pull adds: PullCall.__call__ and PullWatch.call
_ADDS = frozenset({"+", "+="})
_ENDS = frozenset({"STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL", "STORE_ATTR",
                   "STORE_SUBSCR", "RETURN_VALUE", "YIELD_VALUE", "POP_TOP"})


def pull_method(cls: type, vocab: Vocabulary) -> Optional[str]:
    """The name of the class's method that pulls its gradient: it stores the grad on its
    own instance, calls the same method on other nodes, and returns a value; else None."""
    for name, value in cls.__dict__.items():
        if not isinstance(value, FunctionType) or name in ("__init__", vocab.backward):
            continue
        code = value.__code__
        if vocab.grad not in self_stores(code):
            continue
        instructions = list(dis.get_instructions(code))
        calls_itself = any(i.opname in ("LOAD_METHOD", "LOAD_ATTR") and i.argval == name for i in instructions)
        returns = [i for i in instructions if i.opname in ("RETURN_VALUE", "RETURN_CONST")]
        if calls_itself and returns and not all(_returns_none(instructions, r) for r in returns):
            return name
    return None


def _returns_none(instructions: List[dis.Instruction], ret: dis.Instruction) -> bool:
    if ret.opname == "RETURN_CONST":
        return ret.argval is None
    i = instructions.index(ret)
    return i > 0 and instructions[i - 1].opname == "LOAD_CONST" and instructions[i - 1].argval is None


class PullHook:
    """Stands at the pull method: a node's method read from it reports its calls."""

    __slots__ = ("original", "watch")

    def __init__(self, original, watch: "PullWatch") -> None:
        self.original, self.watch = original, watch

    def __get__(self, obj, objtype=None):
        method = self.original.__get__(obj, objtype)
        if obj is None or self.watch.reporter.broken or active_tracer() is None:
            return method
        return PullCall(method, obj, self.watch)


class PullCall:
    """A node's pull method as read from the node: calling it reports the call."""

    __slots__ = ("fn", "node", "watch")

    def __init__(self, fn, node, watch: "PullWatch") -> None:
        self.fn, self.node, self.watch = fn, node, watch

    def __call__(self, *args, **kwargs):
        return self.watch.call(self, args, kwargs)

    def __getattr__(self, name):  # __name__, __self__, ... of the user's method
        return getattr(self.fn, name)

    def __repr__(self) -> str:
        return repr(self.fn)


class _Pull:
    """One pull under way: its node, the sum reported so far, and the consumers seen."""

    __slots__ = ("node", "total", "reported", "seen")

    def __init__(self, node) -> None:
        self.node, self.total, self.reported = node, 0.0, False
        self.seen: Dict[int, int] = {}  # id(consumer) -> how many of its terms were reported


class PullWatch:
    """The pulls under way, for one reporter."""

    def __init__(self, reporter) -> None:
        self.reporter = reporter
        self.stack: List[_Pull] = []

    def call(self, call: PullCall, args, kwargs):
        reporter = self.reporter
        if active_tracer() is None or reporter.broken:
            return call.fn(*args, **kwargs)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + _REPORT_FRAMES)
        try:
            tracer = active_tracer()
            if not self.stack and reporter._seed is not None and tracer is not None:
                reporter._confirm(tracer)  # the seed written just before starts the pass
        except Exception as exc:  # never into the user's script
            reporter.failed(exc)
        finally:
            sys.setrecursionlimit(limit + _CALL_DEPTH)
        self.stack.append(_Pull(call.node))
        try:  # the limit stays raised by what this call adds: the script keeps its depth
            result = call.fn(*args, **kwargs)
        finally:
            if sys.getrecursionlimit() == limit + _CALL_DEPTH:
                sys.setrecursionlimit(limit)
            self.stack.pop()
        if self.stack:
            sys.setrecursionlimit(limit + _REPORT_FRAMES)
            try:
                self._returned(call.node, result, sys._getframe(2))
            except Exception as exc:  # never into the user's script
                reporter.failed(exc)
            finally:
                if sys.getrecursionlimit() == limit + _REPORT_FRAMES:
                    sys.setrecursionlimit(limit)
        return result

    def _returned(self, consumer, result, frame) -> None:
        """``consumer``'s gradient came back into the pull of the node below it."""
        reporter = self.reporter
        tracer = active_tracer()
        pull = self.stack[-1]
        if tracer is None or not tracer.in_pass or reporter._pass is None:
            return
        weights = _weights(pull.node, consumer)
        if not weights:
            return
        k = pull.seen.get(id(consumer), 0)
        pull.seen[id(consumer)] = k + 1
        contribution = weights[k % len(weights)] * as_float(result)
        site = format_site(frame)[0]
        replaced = _assigns(frame.f_code, frame.f_lasti)
        before = pull.total
        pull.total = contribution if replaced else before + contribution
        pull.reported = True
        fired_by = reporter._credit(tracer, consumer)
        tracer.grad_accumulated(reporter.ids.of(pull.node), fired_by, None, pull.total - before,
                                before, pull.total, replaced, site)
        reporter.rulecheck.wrote(fired_by, pull.node, before, pull.total, replaced, site, frame)

    def wrote_sum(self, node, after: float) -> bool:
        """True when ``node``'s pull stores the very sum its consumers were reported to
        add up to: the write is no new event."""
        pull = self.stack[-1] if self.stack else None
        return pull is not None and pull.node is node and pull.reported \
            and abs(pull.total - after) <= 1e-9 * max(1.0, abs(after))


def _weights(node, consumer) -> List[float]:
    """The local derivatives ``node`` keeps for ``consumer``: the numbers paired with it in
    the node's lists (``[(weight, consumer), ...]``) or dicts (``{consumer: weight}``)."""
    found: List[float] = []
    for _, value in instance_items(node):
        if isinstance(value, dict):
            for key, item in list(value.items()):
                if key is consumer and isinstance(item, (int, float)):
                    found.append(float(item))
        elif isinstance(value, (list, tuple)):
            for item in list(value):
                if type(item) is tuple and len(item) == 2 and any(x is consumer for x in item):
                    other = item[1] if item[0] is consumer else item[0]
                    if isinstance(other, (int, float)) and not isinstance(other, bool):
                        found.append(float(other))
    return found


_assigning: Dict[Tuple[int, int], Tuple[CodeType, bool]] = {}


def _assigns(code: CodeType, offset: int) -> bool:
    """True when what the call at ``offset`` returns is stored into a plain name without
    being added to anything (``total = weight * child.grad()``, where ``+=`` belongs).

    >>> def pull(children):
    ...     total = 0.0
    ...     for w, c in children:
    ...         total += w * c.grad()
    ...         total = w * c.grad()
    >>> calls = [i.offset for i in dis.get_instructions(pull) if i.opname == "CALL"]
    >>> [_assigns(pull.__code__, offset) for offset in calls]
    [False, True]
    """
    key = (id(code), offset)
    hit = _assigning.get(key)
    if hit is None:
        instructions = list(dis.get_instructions(code))
        after = [i for i in instructions if i.offset > offset]
        assigns = False
        for ins in after:
            if ins.opname == "BINARY_OP" and ins.argrepr in _ADDS or ins.opname in ("BINARY_ADD", "INPLACE_ADD"):
                break
            if ins.opname in _ENDS:
                assigns = ins.opname in ("STORE_FAST", "STORE_NAME", "STORE_DEREF")
                break
        hit = _assigning[key] = (code, assigns)
    return hit[1]

"""Turns what instrumented user nodes do into the tracer's events, finding passes as it goes.

A user's engine has no fixed name for its backward pass, so passes are recognised
from what happens: a non-zero write to a node's grad from outside any firing
backward function seeds a pass (it is confirmed when a backward function fires, or
when the same code goes on to write the grads of the nodes under the root); the pass
ends at the next seed, at a node made outside any backward function, at a reset to
zero, or when tracing stops. A seed that is never confirmed is reported as a plain
write between passes (an optimiser scaling a grad, say).
"""

from __future__ import annotations

import math
import sys
import weakref
from types import FrameType
from typing import Dict, List, Optional, Set, Tuple

from ..core.tracer import active_tracer
from .bytecode import builds_rules, is_noop, returns_what_it_makes, write_site
from .detect import Vocabulary

__all__ = ["NodeIds", "EngineReporter", "FiringCall", "as_float"]


def as_float(value) -> float:
    """A grad or value as a float for the event stream; NaN when it is not a number.

    >>> as_float(2), as_float(None), as_float("x")
    (2.0, 0.0, nan)
    """
    if value.__class__ is float:
        return value
    if value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


class _Ref(weakref.ref):
    __slots__ = ("key",)


class NodeIds:
    """Small integer ids for user nodes (1, 2, ... in the order they are first seen), by
    identity: user classes may define ``__eq__`` and ``__hash__`` oddly. An entry goes when its node dies; a node that takes no weak
    references (``__slots__`` without ``__weakref__``) is kept alive instead."""

    def __init__(self) -> None:
        self.issued = 0  # how many nodes have been given an id
        self._ids: Dict[int, int] = {}  # id(node) -> node id
        self._keep: Dict[int, object] = {}  # id(node) -> a weak reference (or the node)

    def of(self, node) -> int:
        node_id = self._ids.get(id(node))
        if node_id is None:
            node_id = self._add(node)
        return node_id

    def _add(self, node) -> int:
        key = id(node)
        self.issued += 1
        node_id = self._ids[key] = self.issued
        try:
            keep = _Ref(node, self._forget)
            keep.key = key
        except TypeError:
            keep = node
        self._keep[key] = keep
        return node_id

    def _forget(self, ref: _Ref) -> None:
        if self._keep.get(ref.key) is ref:
            del self._keep[ref.key], self._ids[ref.key]

    def __len__(self) -> int:
        return len(self._ids)


class FiringCall:
    """A node's backward function as read from the node: calling it reports the firing."""

    __slots__ = ("fn", "node", "vocab", "reporter")

    def __init__(self, fn, node, vocab: Vocabulary, reporter: "EngineReporter") -> None:
        self.fn, self.node, self.vocab, self.reporter = fn, node, vocab, reporter

    def __call__(self, *args, **kwargs):
        return self.reporter.fire(self, args, kwargs)

    def __getattr__(self, name):  # __name__, __code__, ... of the user's function
        return getattr(self.fn, name)

    def __repr__(self) -> str:
        return repr(self.fn)


class _Seed:
    """A non-zero grad write from outside any backward function: maybe a pass's seed."""

    __slots__ = ("node", "vocab", "node_id", "before", "after", "site", "replaced", "order")

    def __init__(self, node, vocab, node_id, before, after, site, replaced) -> None:
        self.node, self.vocab, self.node_id = node, vocab, node_id
        self.before, self.after, self.site, self.replaced = before, after, site, replaced
        self.order: Optional[Tuple[Tuple[int, ...], Tuple[float, ...]]] = None


class EngineReporter:
    """The state of one instrumentation: ids, backward functions firing, the pass."""

    def __init__(self) -> None:
        self.ids = NodeIds()
        self.constructing: Set[int] = set()  # id() of nodes inside their __init__
        self.firing: List[int] = []  # ids of nodes whose backward function is running
        self.skip: Set = set()  # code of op functions: the user's line is their caller's
        self.vocab_of: Dict[type, Vocabulary] = {}
        self.node_types: Tuple[type, ...] = ()
        self._seed: Optional[_Seed] = None
        self._pass: Optional[Tuple[int, frozenset]] = None  # (root id, ids in its order)
        self._zeroed: List[Tuple[int, float]] = []
        # The node whose backward function returned last, and the frame that called it:
        # engines whose backward functions return local grads write them in that frame.
        self._returned: Optional[Tuple[int, FrameType]] = None
        self._method_firing: Optional[Tuple[int, FrameType]] = None  # (node, its rule's frame)

    def add_type(self, cls: type, vocab: Vocabulary) -> None:
        self.vocab_of[cls] = vocab
        self.node_types = tuple(self.vocab_of)

    def vocabulary(self, node) -> Optional[Vocabulary]:
        """The vocabulary of the node's class (a subclass uses its hooked base's)."""
        cls = type(node)
        vocab = self.vocab_of.get(cls)
        if vocab is None:
            for base in cls.__mro__[1:]:
                if base in self.vocab_of:
                    vocab = self.vocab_of[cls] = self.vocab_of[base]
                    break
        return vocab

    # -- reports from the hooks -------------------------------------------------------
    def node_made(self, node, vocab: Vocabulary, creator: FrameType) -> None:
        """A node's ``__init__`` finished; ``creator`` is the frame that called it."""
        tracer = active_tracer()
        if tracer is None:
            return
        if not self.firing:
            self._between_passes(tracer)
        id_of = self.ids.of
        node_id = id_of(node)
        parents = tuple([id_of(p) for p in self.parents(node, vocab)])
        code = creator.f_code
        if parents and code not in self.skip and code.co_name != "<module>" \
                and (builds_rules(code, vocab.grad) or returns_what_it_makes(creator)):
            self.skip.add(code)  # add(a, b): name the node after the caller's line
        tracer.node_created(node_id, self._op(node, vocab, parents, code),
                            as_float(getattr(node, vocab.value, None)), parents, None,
                            skip=self.skip, obj=node)

    def grad_written(self, node, vocab: Vocabulary, before, after, frame: FrameType) -> None:
        """``node``'s grad attribute was just set from ``before`` to ``after`` by ``frame``."""
        tracer = active_tracer()
        if tracer is None:
            return
        node_id = self.ids.of(node)
        before_f, after_f = as_float(before), as_float(after)
        writer = self.firing[-1] if self.firing else \
            self._rule_method_of(node, frame, tracer, (node_id, before_f))
        if writer is not None:
            if self._zeroed:
                self._flush_zeroed(tracer)
            site, replaced = write_site(frame)
            tracer.grad_accumulated(node_id, writer, None, after_f - before_f,
                                    before_f, after_f, replaced, site)
            return
        if after_f == 0.0:
            self._between_passes(tracer)
            self._zeroed.append((node_id, before_f))
            return
        site, replaced = write_site(frame)
        seed, current = self._seed, self._pass
        if seed is not None and node_id != seed.node_id and node_id in self._seed_order_ids(before_f, node_id):
            self._confirm(tracer)  # the engine's own loop is applying the chain rule
            current = self._pass
        if current is not None and node_id != current[0] and node_id in current[1]:
            returned = self._returned
            fired_by = returned[0] if returned is not None and returned[1] is frame else None
            tracer.grad_accumulated(node_id, fired_by, None, after_f - before_f, before_f,
                                    after_f, replaced, site)
            return
        self._between_passes(tracer)
        self._seed = _Seed(node, vocab, node_id, before_f, after_f, site, replaced)

    def _rule_method_of(self, target, frame: FrameType, tracer,
                        writing: Tuple[int, float]) -> Optional[int]:
        """Engines with one class per op run each rule as a method (``Add.backward_step``)
        whatever its name: a write from a method of a node to one of that node's own
        parents is that node's backward rule at work. Reports the node firing when its
        first write comes; returns its id, or None for any other write."""
        code = frame.f_code
        if not code.co_argcount or code.co_varnames[0] != "self" or code.co_name == "__init__":
            return None  # not a method, or a node setting up its own grad
        owner = frame.f_locals.get("self")
        if owner is None or owner is target or not isinstance(owner, self.node_types):
            return None
        vocab = self.vocabulary(owner)
        if vocab is None or not any(p is target for p in self.parents(owner, vocab)):
            return None
        owner_id = self.ids.of(owner)
        if self._method_firing != (owner_id, frame):
            self._method_firing = (owner_id, frame)
            self._fire_now(tracer, owner, vocab, writing)
        return owner_id

    def wrap_backward(self, node, fn, vocab: Vocabulary):
        """What reading the backward attribute returns: the user's function, made to
        report when it is called (unless it is None, not callable, or a no-op)."""
        if fn is None or active_tracer() is None or not callable(fn) or is_noop(fn):
            return fn
        return FiringCall(fn, node, vocab, self)

    def fire(self, call: FiringCall, args, kwargs):
        tracer = active_tracer()
        if tracer is None:
            return call.fn(*args, **kwargs)
        node_id = self._fire_now(tracer, call.node, call.vocab)
        self.firing.append(node_id)
        try:
            return call.fn(*args, **kwargs)
        finally:
            self.firing.pop()
            self._returned = (node_id, sys._getframe(2))  # the engine loop that called it

    def _fire_now(self, tracer, node, vocab: Vocabulary,
                  writing: Optional[Tuple[int, float]] = None) -> int:
        """Report that ``node``'s backward rule runs, starting the pass if it must
        (``writing``: a grad write already under way when the rule is noticed)."""
        if self._zeroed:
            self._flush_zeroed(tracer)
        if self._seed is not None:
            self._confirm(tracer, writing)
        elif self._pass is None and not self.firing:
            self._start_at(tracer, node, vocab)  # a backward function called by hand
        node_id = self.ids.of(node)
        grad = as_float(getattr(node, vocab.grad, None))
        tracer.backward_fn_fired(node_id, grad, grad)
        return node_id

    def finish(self) -> None:
        """Tracing of the user's engine stops: report what is still held back."""
        tracer = active_tracer()
        if tracer is not None:
            self._between_passes(tracer)
            self._flush_zeroed(tracer)
        self._seed = self._pass = None

    # -- passes -----------------------------------------------------------------------
    def _between_passes(self, tracer) -> None:
        """Something happened that belongs to no pass: end the pass, drop the seed."""
        seed, self._seed = self._seed, None
        self._returned = self._method_firing = None
        if seed is not None:
            self._flush_zeroed(tracer)
            tracer.grad_accumulated(seed.node_id, None, None, seed.after - seed.before,
                                    seed.before, seed.after, seed.replaced, seed.site)
        if self._pass is not None:
            self._pass = None
            if tracer.in_pass:
                tracer.backward_finished()

    def _flush_zeroed(self, tracer) -> None:
        if self._zeroed:
            zeroed, self._zeroed = self._zeroed, []
            tracer.grads_zeroed(tuple(n for n, _ in zeroed), tuple(g for _, g in zeroed))

    def _seed_order_ids(self, before: float, written: int) -> frozenset:
        seed = self._seed
        if seed.order is None:
            seed.order = self._order(seed.node, {seed.node_id: seed.before, written: before})
        return frozenset(seed.order[0])

    def _confirm(self, tracer, writing: Optional[Tuple[int, float]] = None) -> None:
        """The seed did start a pass. ``writing`` is a write under way (node id, its grad
        before): the grads before the pass must not include it."""
        seed, self._seed = self._seed, None
        if seed.order is None:
            known = {seed.node_id: seed.before}
            if writing is not None:
                known.setdefault(*writing)
            seed.order = self._order(seed.node, known)
        order, grads_before = seed.order
        seed_value = seed.after if seed.replaced else seed.after - seed.before
        tracer.backward_started(seed.node_id, seed_value, order, grads_before)
        self._pass = (seed.node_id, frozenset(order))
        tracer.grad_accumulated(seed.node_id, None, None, seed.after - seed.before,
                                seed.before, seed.after, seed.replaced, seed.site)

    def _start_at(self, tracer, node, vocab: Vocabulary) -> None:
        order, grads_before = self._order(node, {})
        tracer.backward_started(order[0], grads_before[0], order, grads_before)
        self._pass = (order[0], frozenset(order))

    def _order(self, root, known: Dict[int, float]) -> Tuple[Tuple[int, ...], Tuple[float, ...]]:
        """Ids of the nodes ``root`` depends on, root first, each before its parents, and
        their grads (``known`` gives grads as they were before writes already made)."""
        post, visited, stack = [], set(), [(root, False)]
        vocab_of, id_of = self.vocab_of, self.ids.of
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                post.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            vocab = vocab_of.get(type(node)) or self.vocabulary(node)
            stack.extend([(p, False) for p in self.parents(node, vocab) if id(p) not in visited])
        post.reverse()
        ids = tuple([id_of(n) for n in post])
        grads = []
        for node_id, node in zip(ids, post):
            vocab = vocab_of.get(type(node)) or self.vocabulary(node)
            grads.append(known[node_id] if node_id in known else as_float(getattr(node, vocab.grad, None)))
        return ids, tuple(grads)

    # -- reading user nodes -----------------------------------------------------------
    def parents(self, node, vocab: Vocabulary) -> list:
        """The node's parents that are nodes (constants and other objects are left out);
        a set of parents (micrograd's ``_prev``) comes in creation order, so every run
        of a script reads the same."""
        held = getattr(node, vocab.parents, None) or ()
        try:
            found = [p for p in held if isinstance(p, self.node_types)]
        except TypeError:  # not iterable
            return []
        if isinstance(held, (set, frozenset)):
            found.sort(key=self.ids.of)
        return found

    def _op(self, node, vocab: Vocabulary, parents: tuple, creator) -> str:
        """The op's own label (micrograd's ``_op``), else the op function that made the
        node (``add``; ``__mul__`` gives ``mul``), else the node's class name."""
        if vocab.op:
            op = getattr(node, vocab.op, None)
            if isinstance(op, str) and op:
                return op
        if not parents:
            return ""
        if creator in self.skip:
            return creator.co_name.strip("_") or creator.co_name
        return type(node).__name__

"""Turns what instrumented user nodes do into the tracer's events, finding passes as it goes.

A user's engine has no fixed name for its backward pass, so passes are recognised
from what happens: a non-zero write to a node's grad from outside any firing
backward function seeds a pass (it is confirmed when a backward function fires, or
when the same code goes on to write the grads of the nodes under the root), or an
engine function holding a root writes under it with no seed at all (minitorch's dict
of derivatives); writes an engine loop makes are credited to the node whose rule made
them (see :func:`.roles.rule_owner`). The pass ends at the next seed, at a node made
outside any backward function, at a reset to zero, or when tracing stops. A seed that is never confirmed is reported as a plain
write between passes (an optimiser scaling a grad, say).
"""

from __future__ import annotations

import functools
import sys
from types import BuiltinMethodType, FrameType, FunctionType, MethodType
from typing import Dict, List, Optional, Set, Tuple

from ..core.tracer import active_tracer
from .credit import credited_to
from .firing_call import FiringCall
from .engine_code import register, unregister
from .pull import PullWatch
from .bytecode import WRAPPERS, is_noop, makes_for_its_caller, write_site
from .detect import Vocabulary
from .rulecheck import RuleCheck
from .graph import FrameKey, NodeGraph, called_from, frame_key
from .late import LateNodes
from .nodeids import NodeIds, as_float
from .roles import op_label, rule_owner, static_attr
from ..core.sites import element_name

__all__ = ["NodeIds", "EngineReporter", "FiringCall", "as_float"]


# What a backward attribute may hold that reports its firing: functions, never objects.
_RULES = (FunctionType, MethodType, BuiltinMethodType, functools.partial)
_REPORT_FRAMES = 200  # as hooks.REPORT_FRAMES: room lent to report one firing
_CALL_DEPTH = 3  # recursion depth a reporting call adds: the slot call, __call__ and fire


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
        self._firing_nodes: list = []  # the nodes themselves, in the same order
        self.skip: Set = set(WRAPPERS)  # code of op functions: the user's line is their caller's
        self.vocab_of: Dict[type, Vocabulary] = {}
        self.node_types: Tuple[type, ...] = ()
        self._seed: Optional[_Seed] = None
        self._pass: Optional[Tuple[int, frozenset]] = None  # (root id, ids in its order)
        self._zeroed: List[Tuple[int, float]] = []
        # The node whose backward function returned last, and the frame that called it:
        # engines whose backward functions return local grads write them in that frame.
        # Calls are named by frame_key, never held: a frame keeps its locals' nodes alive.
        self._returned: Optional[Tuple[int, FrameKey]] = None
        self._method_firing: Optional[Tuple[int, FrameKey]] = None  # (node, its rule's call)
        self._root_frame: Optional[FrameKey] = None  # the call running the root's rule
        self._sweep_frame: Optional[tuple] = None  # (id, code) of the engine loop writing this pass:
        # not the frame, which would keep every node its locals hold alive after it returns
        self._pass_call: Optional[FrameKey] = None  # the call that wrote the seed
        self.graph = NodeGraph(self)
        self.ids.on_forget = self.graph.forget
        self._fired: Set[int] = set()  # nodes credited with a write in this pass
        self._engine_frame: Optional[FrameKey] = None  # the call running a pass it found
        self.broken = False
        self.pulls = PullWatch(self)  # pull engines' grad() calls under way
        self.rulecheck = RuleCheck(self)  # derivative rules checked against their forward ops
        self.late = LateNodes(self)  # nodes read once their line is done
        self.held_writes = None  # a sweep's pass taking the grad writes made inside it (see .gradsweep)

    def failed(self, exc: BaseException) -> None:
        """A hook failed: say so once, and report nothing more (the script goes on)."""
        if not self.broken:
            self.broken = True
            print(f"autodiff_trace: stopped tracing the engine after an internal error "
                  f"({type(exc).__name__}: {exc}); the script runs on untouched", file=sys.stderr)

    def is_node(self, value) -> bool:
        return isinstance(value, self.node_types)

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
        if tracer is None or self.broken:
            return
        if not self.firing and not self._idle():
            self._between_passes(tracer)
        node_id = self.ids.of(node)
        parents = self.graph.remember_ids(node, node_id, vocab, creator)
        code = creator.f_code
        if code not in self.skip and makes_for_its_caller(creator, vocab.grad, bool(parents),
                                                          vocab.parents is None, self.skip):
            self.skip.add(code)  # add(a, b): name the node after the caller's line
        value, linked = as_float(static_attr(node, vocab.value)), parents
        if vocab.parents is None:  # an op may link it once made: read when its line is done
            linked = functools.partial(self.late.linked, node, vocab, code, value)
        tracer.node_created(node_id, op_label(node, vocab, parents, code, self.skip), value, linked,
                            element_name(creator, self.skip), skip=self.skip, obj=node)
        self.rulecheck.node_made(node, vocab, creator)

    def node_born(self, node, vocab: Vocabulary, creator: FrameType) -> None:
        """A node of a class reading its callers' frames was allocated (see :mod:`.late`)."""
        tracer = active_tracer()
        if tracer is not None and not self.broken:
            if not self.firing:
                self._between_passes(tracer)
            self.late.born(tracer, node, vocab, creator)

    def grad_written(self, node, vocab: Vocabulary, before, after, frame: FrameType) -> None:
        """``node``'s grad attribute was just set from ``before`` to ``after`` by ``frame``."""
        tracer = active_tracer()
        if tracer is None or self.broken:
            return
        if self.late.waiting:
            self.late.settle()
        if self.held_writes is not None and self.held_writes(node, before, after, frame):
            return
        node_id = self.ids.of(node)
        before_f = before if before.__class__ is float else as_float(before)
        after_f = after if after.__class__ is float else as_float(after)
        firing = self._firing_nodes
        if firing and node is not firing[-1] and not frame.f_code.co_varnames:
            writer = self.firing[-1]  # a rule holding no node of its own (micrograd's closure): its node's write
        else:
            writer = self.firing[-1] if self.firing else \
                self._rule_method_of(node, frame, tracer, (node_id, before_f))
            credited = credited_to(firing, node, frame, self.is_node, self.graph.has_parent)
            if credited is not None:
                writer = self._credit(tracer, credited)
        if writer is not None:
            if self._zeroed:
                self._flush_zeroed(tracer)
            site, replaced = write_site(frame)
            tracer.grad_accumulated(node_id, writer, None, after_f - before_f,
                                    before_f, after_f, replaced, site)
            self.rulecheck.wrote(writer, node, before_f, after_f, replaced, site, frame)
            return
        current, seed = self._pass, self._seed
        in_pass = current is not None and node_id != current[0] and node_id in current[1]
        if not in_pass and seed is not None and node_id != seed.node_id \
                and node_id in self._seed_order_ids(before_f, node_id):
            self._confirm(tracer)  # the engine's own loop is applying the chain rule
            current, in_pass = self._pass, True
        if not in_pass and current is not None and (self._sweep_frame == (id(frame), frame.f_code) or (
                self._pass_call is not None and self.graph.runs_in(frame, self._pass_call))) \
                and rule_owner(frame, node, self.is_node, self.graph.has_parent) is not None:
            in_pass = True  # the pass's own sweep (or call) going on to nodes of other graphs
        if after_f == 0.0:
            if before is None and (in_pass or self.graph.root_in_stack(frame, node) is not None):
                return  # an engine loop making None 0 before it adds: nothing changed
            if before_f != 0.0 or not in_pass:
                self._end_pass(tracer)
                self._zeroed.append((node_id, before_f))
                return
        site, replaced = write_site(frame)
        seed = self._seed
        engine = self._engine_frame
        if in_pass and engine is not None and called_from(frame, engine) != engine[2]:
            in_pass = False  # the engine function that held the root has returned: a new call
        if not in_pass and (seed is None or node_id != seed.node_id):
            root = self.graph.root_in_stack(frame, node)
            if root is not None:  # an engine loop on a root it holds, with no seed written
                found = self.graph.found_in  # and where it was called from: one line's two calls
                self._between_passes(tracer)  # may share a frame's id
                self._start_at(tracer, root, self.vocabulary(root), {node_id: before_f})
                self._engine_frame = found
                in_pass = True
        if in_pass and self.pulls.wrote_sum(node, after_f):
            return
        if in_pass:
            self._report_write(tracer, node_id, node, before_f, after_f, frame, site, replaced)
            return
        self._between_passes(tracer)
        self.graph.learn_container(frame, node)
        self._seed = _Seed(node, vocab, node_id, before_f, after_f, site, replaced)
        self._pass_call = frame_key(frame)  # the call that wrote the seed runs the pass

    def _report_write(self, tracer, node_id: int, node, before_f: float, after_f: float,
                      frame: FrameType, site=None, replaced=None) -> None:
        """A contribution within the pass, credited to the node whose rule made it."""
        if site is None:
            site, replaced = write_site(frame)
        returned, self._sweep_frame = self._returned, frame_key(frame)
        fired_by = returned[0] if returned is not None and returned[1] == self._sweep_frame else None
        if fired_by is None and node is not None:
            owner = rule_owner(frame, node, self.is_node, self.graph.has_parent)
            if owner is not None:
                self._root_again(tracer, owner, frame, node_id, before_f)
                fired_by = self._credit(tracer, owner)
        tracer.grad_accumulated(node_id, fired_by, None, after_f - before_f, before_f,
                                after_f, replaced, site)
        if node is not None:
            self.rulecheck.wrote(fired_by, node, before_f, after_f, replaced, site, frame)

    def _root_again(self, tracer, owner, frame: FrameType, node_id: int, before_f: float) -> None:
        """The root's rule run again by a new call after other nodes fired: the whole
        backward pass was run again (``backprop(gates)`` twice), so a new pass begins."""
        if self._pass is None or self.ids.of(owner) != self._pass[0]:
            return
        if self._pass[0] in self._fired and len(self._fired) > 1 and frame_key(frame) != self._root_frame:
            self._between_passes(tracer)
            self._start_at(tracer, owner, self.vocabulary(owner), {node_id: before_f})
        self._root_frame = frame_key(frame)

    def _credit(self, tracer, owner) -> int:
        """The id of the node a write is credited to, reported firing at its first write
        of the pass (its rule was run by the engine's loop, not called through a hook)."""
        fired_by = self.ids.of(owner)
        if fired_by not in self._fired:
            self._fired.add(fired_by)
            vocab = self.vocabulary(owner)
            grad = as_float(static_attr(owner, vocab.grad)) if vocab else 0.0
            tracer.backward_fn_fired(fired_by, grad, grad)
            self.rulecheck.fired(owner, fired_by, grad, tracer.pass_no)
        return fired_by

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
        if self._method_firing != (owner_id, frame_key(frame)):
            self._method_firing = (owner_id, frame_key(frame))
            self._fire_now(tracer, owner, vocab, writing)
        return owner_id

    def wrap_backward(self, node, fn, vocab: Vocabulary):
        """What reading the backward attribute returns: the user's function, made to
        report when it is called (unless it is None, not callable, or a no-op)."""
        if not isinstance(fn, _RULES) or self.broken or active_tracer() is None or is_noop(fn):
            return fn
        return FiringCall(fn, node, vocab, self)

    def fire(self, call: FiringCall, args, kwargs):
        tracer = active_tracer()
        if tracer is None or self.broken:
            return call.fn(*args, **kwargs)
        if self.late.waiting:
            self.late.settle()
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + _REPORT_FRAMES)  # room to report, however deep the script is
        try:
            node_id = self._fire_now(tracer, call.node, call.vocab)
        except Exception as exc:  # never into the user's script
            self.failed(exc)
            return call.fn(*args, **kwargs)
        finally:
            sys.setrecursionlimit(limit + _CALL_DEPTH)
        self.firing.append(node_id)
        self._firing_nodes.append(call.node)
        try:  # the limit stays raised by what this call adds: the script keeps its depth
            return call.fn(*args, **kwargs)
        finally:
            if sys.getrecursionlimit() == limit + _CALL_DEPTH:
                sys.setrecursionlimit(limit)
            self.firing.pop()
            self._firing_nodes.pop()
            self._returned = (node_id, frame_key(sys._getframe(2)))  # the engine loop that called it
            if not self.firing:
                self.rulecheck.returned()  # the outermost backward function returned

    def _fire_now(self, tracer, node, vocab: Vocabulary,
                  writing: Optional[Tuple[int, float]] = None) -> int:
        """Report that ``node``'s backward rule runs, starting the pass if it must
        (``writing``: a grad write already under way when the rule is noticed)."""
        if self._zeroed:
            self._flush_zeroed(tracer)
        node_id = self.ids.of(node)
        if self._seed is not None:
            self._confirm(tracer, writing)
        elif not self.firing and self._pass is not None and node_id == self._pass[0]:
            self._between_passes(tracer)  # the root's recursive rule called by hand again:
            self._start_at(tracer, node, vocab)  # a new pass
        elif self._pass is None and not self.firing:
            self._start_at(tracer, node, vocab, dict([writing]) if writing else None)  # called by hand
        self._fired.add(node_id)
        grad = as_float(static_attr(node, vocab.grad))
        tracer.backward_fn_fired(node_id, grad, grad)
        self.rulecheck.fired(node, node_id, grad, tracer.pass_no)
        return node_id

    def finish(self) -> None:
        """Tracing of the user's engine stops: report what is still held back."""
        tracer = active_tracer()
        if tracer is not None:
            self._between_passes(tracer)
            self._flush_zeroed(tracer)
            self.rulecheck.finish()
        self._seed = self._pass = None
        unregister(self)

    # -- passes -----------------------------------------------------------------------
    def _idle(self) -> bool:
        """No pass, seed or zeroing held, nothing of a pass remembered: between passes already."""
        return self._seed is None and self._pass is None and not self._zeroed and self._returned is None \
            and self._method_firing is None and self._root_frame is None and self._sweep_frame is None

    def _between_passes(self, tracer) -> None:
        """Something happened that belongs to no pass: end the pass, drop the seed, and
        report the zeroing held back, so it stands between the passes it came between."""
        self._end_pass(tracer)
        self._flush_zeroed(tracer)

    def _end_pass(self, tracer) -> None:
        seed, self._seed = self._seed, None
        self._returned = self._method_firing = self._root_frame = self._sweep_frame = None
        if seed is not None:
            self._flush_zeroed(tracer)
            tracer.grad_accumulated(seed.node_id, None, None, seed.after - seed.before,
                                    seed.before, seed.after, seed.replaced, seed.site)
        if self._pass is not None:
            self._pass = self._engine_frame = self.graph.found_in = self._pass_call = None
            self.graph.pass_ended()
            if tracer.in_pass:
                tracer.backward_finished()

    def _flush_zeroed(self, tracer) -> None:
        if self._zeroed:
            zeroed, self._zeroed = self._zeroed, []
            tracer.grads_zeroed(tuple(n for n, _ in zeroed), tuple(g for _, g in zeroed))

    def _seed_order_ids(self, before: float, written: int) -> frozenset:
        seed = self._seed
        if seed.order is None:
            seed.order = self.graph.order(seed.node, {seed.node_id: seed.before, written: before})
        return frozenset(seed.order[0])

    def _confirm(self, tracer, writing: Optional[Tuple[int, float]] = None) -> None:
        """The seed did start a pass. ``writing`` is a write under way (node id, its grad
        before): the grads before the pass must not include it."""
        seed, self._seed = self._seed, None
        if seed.order is None:
            known = {seed.node_id: seed.before}
            if writing is not None:
                known.setdefault(*writing)
            seed.order = self.graph.order(seed.node, known)
        order, grads_before = seed.order
        seed_value = seed.after if seed.replaced else seed.after - seed.before
        register(self)  # the analysis steps out of this engine's files to the user's call
        tracer.backward_started(seed.node_id, seed_value, order, grads_before)
        self._pass = (seed.node_id, frozenset(order))
        self._fired = set()
        tracer.grad_accumulated(seed.node_id, None, None, seed.after - seed.before,
                                seed.before, seed.after, seed.replaced, seed.site)

    def _start_at(self, tracer, node, vocab: Vocabulary, known: Optional[dict] = None) -> None:
        order, grads_before = self.graph.order(node, known or {})
        register(self)  # the analysis steps out of this engine's files to the user's call
        tracer.backward_started(order[0], grads_before[0], order, grads_before)
        self._pass = (order[0], frozenset(order))
        self._fired = set()

    # -- reading user nodes -----------------------------------------------------------
    def parents(self, node, vocab: Optional[Vocabulary]) -> list:
        """The node's parents that are nodes, as :class:`NodeGraph` knows them."""
        return self.graph.parents(node)

"""The hooks of the common design, written out: a node class whose nodes hold their parents
under a named attribute (micrograd's ``_prev``) and their grad in the instance dict.

For such a class the design is known when it is hooked, so its ``__init__`` hook reads
exactly that design's parents, op and value attributes and reports the node with the
tracer's lean report (:meth:`~autodiff_trace.core.tracer.Tracer.value_made`), and its grad
hook reports a rule's write to a parent straight away. Anything out of the ordinary (a pass
to begin or end, a seed, a write from outside a rule) goes the general way
(:class:`.reporter.EngineReporter`), so the events are the same either way.
"""

from __future__ import annotations

import sys
from types import FunctionType

from ..core.active import _stack
from ..core.user_line import INSIDE, by_code, code_lines
from ..core.sites import element_name
from .bytecode import _noops, _writes, is_noop, makes_for_its_caller, write_site
from .detect import Vocabulary
from .firing_call import FiringCall
from .graph import frame_key
from .hooks import MISSING, REPORT_FRAMES, BackwardHook, GradHook, construction_hook, grad_hook, init_hook
from .nodeids import as_float
from .roles import op_label, static_attr

__all__ = ["lean_init_hook", "death_hook_of", "construction_hook_of", "init_hook_of", "grad_hook_of", "backward_hook_of", "LeanGradHook", "LeanBackwardHook", "LeanFiringCall"]

_recursion_limit, _set_recursion_limit, _getframe = sys.getrecursionlimit, sys.setrecursionlimit, sys._getframe
_new_call = object.__new__
_CALL_DEPTH = 2  # recursion depth a lean firing adds: the slot call and __call__


def _keeps_no_names(node, name: str) -> None:
    """A user's node keeps no name of ours: the trace alone names it."""


def lean_init_hook(cls: type, vocab: Vocabulary, reporter):
    """An ``__init__`` for a class whose nodes name their parents' attribute: it runs the
    original, then reports the node as :meth:`.reporter.EngineReporter.node_made` would,
    in one call (the wrapper is :func:`.hooks.init_hook`'s); None for any other design."""
    if not vocab.parents or not cls.__dictoffset__:
        return None  # no parents' attribute, or nodes without an instance dict
    skip, ids, graph = reporter.skip, reporter.ids, reporter.graph
    ids_by_key, new_id, number, keep = ids.ids_by_key, ids._add, ids.number, ids.keep
    reports_death: dict = {}  # node class -> does its __del__ drop its nodes' ids (death_hook_of)?
    parents_of, rulecheck = graph.parents_made, reporter.rulecheck
    value_name, op_name, grad_name, parents_name = vocab.value, vocab.op, vocab.grad, vocab.parents
    passed: dict = {}  # id(code) -> (code, looked past, in skip, len(skip) then): the entry holds the code

    def verdict_of(code) -> tuple:
        """Is ``code`` the engine's (in ``skip``) or this package's, not the user's line?
        Kept by the code's id; skip only grows, so only a "no" is asked again once it grew."""
        in_skip = code in skip
        verdict = passed[id(code)] = (code, in_skip or (by_code.get(id(code)) or code_lines(code)) is INSIDE,
                                      in_skip, len(skip))
        return verdict

    def report(node, vocab, creator) -> None:
        tracer = _stack[-1] if _stack else None
        if tracer is None:
            if "node_made" in reporter.__dict__:  # a rule check's re-run, in its forked copy, is told
                reporter.node_made(node, vocab, creator)
            return
        if not reporter.firing and not reporter._idle():
            reporter._between_passes(tracer)
        node_id = ids_by_key.get(id(node))
        unkept = False  # numbered without a weak reference, while its parents are read
        if node_id is None:
            kind = node.__class__
            dies_told = reports_death.get(kind)
            if dies_told is None:
                dies_told = reports_death[kind] = getattr(kind, "__del__", None) is ids.death_hook()
            if dies_told and not ids.all_kept:
                node_id, unkept = number(node), True
            else:
                node_id = new_id(node)
        namespace = node.__dict__
        parents = parents_of(node, node_id, namespace.get(parents_name, namespace))
        if parents is None:
            if unkept:  # read the general way: found by its id from now on
                keep(node, node_id)
            parents = graph.remember_ids(node, node_id, vocab, creator)
        code = creator.f_code
        verdict = passed.get(id(code))
        if (verdict is None or verdict[0] is not code or not verdict[2]) and code not in skip \
                and makes_for_its_caller(creator, grad_name, bool(parents), False, skip):
            skip.add(code)  # add(a, b): name the node after the caller's line
        value = namespace.get(value_name, MISSING)
        if value.__class__ is not float:
            value = as_float(static_attr(node, value_name) if value is MISSING else value)
        op = namespace.get(op_name) if op_name else None
        if op.__class__ is not str or not op:
            op = op_label(node, vocab, parents, code, skip)
        frame = creator  # the user's line: past the engine's own code and this package's
        while frame is not None:
            code = frame.f_code
            verdict = passed.get(id(code))
            if verdict is None or verdict[0] is not code or not verdict[1] and verdict[3] != len(skip):
                verdict = verdict_of(code)
            if not verdict[1]:
                break
            frame = frame.f_back
        tracer.value_made(frame, node, node_id, op, value, parents, element_name(frame, skip), _keeps_no_names)
        if not rulecheck.off:
            rulecheck.node_made(node, vocab, creator)

    return init_hook(cls, vocab, reporter, report)


class LeanGradHook(GradHook):
    """The grad hook of a grad kept in the instance dict: a rule's write to another node
    from a closure holding no node of its own (micrograd's ``_backward``), the bulk of a
    pass, is reported here in one frame; any other write goes the general way."""

    __slots__ = ()

    def __set__(self, obj, value) -> None:
        reporter, namespace, name = self.reporter, obj.__dict__, self.name
        if id(obj) in reporter.constructing and (not reporter.late.waiting or reporter.late.still_constructing(obj)):
            namespace[name] = value  # the node's own __init__: not a gradient yet
            return
        before = namespace.get(name, MISSING)
        namespace[name] = value  # the user's write is done before anything is reported
        if reporter.broken:
            return
        frame = _getframe(1)
        limit = _recursion_limit()  # room to report, however deep the script is
        _set_recursion_limit(limit + REPORT_FRAMES)
        try:
            firing = reporter._firing_nodes
            tracer = _stack[-1] if _stack else None
            if firing and obj is not firing[-1] and tracer is not None and not frame.f_code.co_varnames \
                    and not reporter.late.waiting:
                before = None if before is MISSING else before
                held = reporter.held_writes
                if held is not None and held(obj, before, value, frame):
                    return  # a sweep's pass takes it
                writer = reporter.firing[-1]  # its node's rule writing a parent: the write is its node's
                node_id = reporter.ids.ids_by_key.get(id(obj)) or reporter.ids.of(obj)
                before_f = before if before.__class__ is float else as_float(before)
                after_f = value if value.__class__ is float else as_float(value)
                if reporter._zeroed:
                    reporter._flush_zeroed(tracer)
                site, replaced = _writes.get((id(frame.f_code), frame.f_lasti)) or write_site(frame)
                tracer.grad_accumulated(node_id, writer, None, after_f - before_f, before_f, after_f, replaced, site)
                rulecheck = reporter.rulecheck
                checking = rulecheck._open  # its own early way out, unrolled: a rule not checked, firing alone
                if rulecheck._walking and (checking or rulecheck.made) \
                        or checking and (writer in checking or len(reporter.firing) != 1):
                    rulecheck.wrote(writer, obj, before_f, after_f, replaced, site, frame)
            else:
                reporter.grad_written(obj, self.vocab, None if before is MISSING else before, value, frame)
        except Exception as exc:  # never into the user's script
            reporter.failed(exc)
        finally:
            if _recursion_limit() == limit + REPORT_FRAMES:
                _set_recursion_limit(limit)


class LeanBackwardHook(BackwardHook):
    """The backward hook of a rule kept as a function in the instance dict (micrograd's
    ``_backward`` closure): it hands out a :class:`LeanFiringCall`; anything else the
    general way."""

    __slots__ = ()

    def __get__(self, obj, objtype=None):
        if obj is not None:
            fn = obj.__dict__.get(self.name, MISSING)
            if fn.__class__ is FunctionType:
                reporter = self.reporter
                if reporter.broken or not _stack:
                    return fn
                code = fn.__code__
                noop = _noops.get(id(code))
                if noop is None or noop[0] is not code:
                    try:
                        if is_noop(fn):
                            return fn
                    except Exception as exc:  # never into the user's script
                        reporter.failed(exc)
                        return fn
                elif noop[1]:
                    return fn  # lambda: None, a leaf's rule: nothing to report
                call = _new_call(LeanFiringCall)  # its slots set here: no __init__ frame per firing
                call.fn, call.node, call.vocab, call.reporter = fn, obj, self.vocab, reporter
                return call
        return BackwardHook.__get__(self, obj, objtype)


class LeanFiringCall(FiringCall):
    """A rule read from the node: calling it reports the firing as
    :meth:`.reporter.EngineReporter.fire` does, in one frame while a pass runs."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        reporter, node = self.reporter, self.node
        tracer = _stack[-1] if _stack else None
        if tracer is None or reporter.broken or reporter.late.waiting or reporter._seed is not None \
                or reporter._zeroed or reporter._pass is None:
            return reporter.fire(self, args, kwargs)  # a pass to begin, a node to settle: the general way
        limit = _recursion_limit()
        _set_recursion_limit(limit + REPORT_FRAMES)  # room to report, however deep the script is
        firing = reporter.firing
        try:
            node_id = reporter.ids.ids_by_key.get(id(node)) or reporter.ids.of(node)
            if not firing and node_id == reporter._pass[0]:  # the root's rule called by hand again
                node_id = reporter._fire_now(tracer, node, self.vocab)
            else:
                reporter._fired.add(node_id)
                grad_name = self.vocab.grad
                grad = node.__dict__.get(grad_name, MISSING)
                grad = as_float(static_attr(node, grad_name) if grad is MISSING else grad)
                tracer.backward_fn_fired(node_id, grad, grad)
                rulecheck = reporter.rulecheck
                if not rulecheck.off and (id(node) in rulecheck.made or node_id in rulecheck._open):
                    rulecheck.fired(node, node_id, grad, tracer.pass_no)  # its own early way out, unrolled
        except Exception as exc:  # never into the user's script
            _set_recursion_limit(limit)
            reporter.failed(exc)
            return self.fn(*args, **kwargs)
        _set_recursion_limit(limit + _CALL_DEPTH)
        firing.append(node_id)
        reporter._firing_nodes.append(node)
        try:  # the limit stays raised by what this call adds: the script keeps its depth
            return self.fn(*args, **kwargs)
        finally:
            if _recursion_limit() == limit + _CALL_DEPTH:
                _set_recursion_limit(limit)
            firing.pop()
            reporter._firing_nodes.pop()
            frame, returned = _getframe(1), reporter._returned  # the engine loop that called it:
            if returned is not None:  # read again only when it is not the loop that called the rule before
                key = returned[1]
                if key[0] != id(frame) or key[1] is not frame.f_code or not key[2] or frame.f_back is None \
                        or key[2][0] != frame.f_back.f_lasti:
                    key = frame_key(frame)
            else:
                key = frame_key(frame)
            reporter._returned = (node_id, key)
            if not firing:
                rulecheck = reporter.rulecheck
                if rulecheck._nested and not rulecheck.off:  # the outermost backward function returned
                    rulecheck.returned()


def grad_hook_of(cls: type, vocab: Vocabulary, reporter) -> GradHook:
    """The hook for the class's grad attribute: the lean one for a grad kept in the instance dict."""
    hook = grad_hook(cls, vocab.grad, vocab, reporter)
    if type(hook) is GradHook and cls.__dictoffset__:
        return LeanGradHook(vocab.grad, vocab, reporter, hook.original)
    return hook


def backward_hook_of(cls: type, vocab: Vocabulary, reporter) -> BackwardHook:
    """The hook for the class's backward attribute: the lean one for a rule kept in the instance dict."""
    hook = BackwardHook(cls, vocab.backward, vocab, reporter)
    if not hook.data and cls.__dictoffset__:
        return LeanBackwardHook(cls, vocab.backward, vocab, reporter)
    return hook


def death_hook_of(cls: type, vocab: Vocabulary, reporter) -> tuple:
    """``(("__del__", hook),)`` for a class hooked the lean way that defines no ``__del__``
    (nor do its bases): its nodes whose parents the lean hook reads are then given ids
    without a weak reference (:meth:`.nodeids.NodeIds.number`), one object less per node
    for the garbage collector; no entry for any other class."""
    if not vocab.parents or not cls.__dictoffset__ or getattr(cls, "__del__", None) is not None:
        return ()
    return (("__del__", reporter.ids.death_hook()),)


def construction_hook_of(cls: type, vocab: Vocabulary, reporter) -> tuple:
    """``(name, hook)`` reporting the class's new nodes (:func:`.hooks.construction_hook`),
    the lean ``__init__`` for the common design."""
    name, hook = construction_hook(cls, vocab, reporter)
    return name, (name == "__init__" and lean_init_hook(cls, vocab, reporter)) or hook


def init_hook_of(cls: type, vocab: Vocabulary, reporter):
    """The ``__init__`` hook of a subclass: the lean one for the common design."""
    return lean_init_hook(cls, vocab, reporter) or init_hook(cls, vocab, reporter)

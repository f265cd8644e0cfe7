"""The op that made a node, found from the frames above its ``__init__``, as a call to
make again: a method (``__mul__``, ``tanh``), a module function (``mul(a, b)``), or an
op class called with its arguments (``Mul(a, b)``)."""

from __future__ import annotations

import inspect
from types import CodeType, FrameType
from typing import List, Optional, Tuple

from .roles import called_with, instance_items
from .rulecheck_rerun import Candidate

_GENERIC = ("forward", "__call__", "apply", "call")  # op methods named by their class
_PLAIN = (int, float, complex, str, bytes, bool, tuple, list, dict, set, frozenset, type)

__all__ = ["op_name", "candidates", "display_names", "refers_to", "made_from_arguments"]


def op_name(key) -> str:
    """``__mul__`` -> ``mul``; a class -> its name; (helper, caller) -> the caller's.

    >>> op_name(op_name.__code__), op_name(int), op_name((int.__init__, candidates.__code__))
    ('op_name', 'int', 'candidates')
    """
    if isinstance(key, tuple):
        key = key[-1]
    name = key.__name__ if isinstance(key, type) else key.co_name
    return name.strip("_") or name


def candidates(cls: type, init_frame: Optional[FrameType], frames: List[Tuple[FrameType, int]],
               parents: list) -> List[Candidate]:
    """Ways to make the node again, innermost first: the class called with the arguments
    its ``__init__`` got, then each op frame (with the line it was on) whose arguments
    hold every parent."""
    found = []
    if init_frame is not None:
        local = init_frame.f_locals
        args, kwargs = local.get("args"), local.get("kwargs")
        if isinstance(args, tuple) and isinstance(kwargs, dict):
            slots = _slots(parents, _class_arguments(cls, args, kwargs))
            if slots is not None:
                found.append(Candidate(cls.__name__, cls, args, dict(kwargs), slots))
    for frame, made_at in frames:
        candidate = _frame_candidate(frame, made_at, parents)
        if candidate is not None:
            found.append(candidate)
    return found


def made_from_arguments(frame: FrameType, parents: list, is_node) -> bool:
    """Did the function running in ``frame`` make the node from arguments holding every
    parent (a gate's ``forward(u0, u1)``), rather than being a node's own method?"""
    if not parents or frame.f_code.co_name == "<module>":
        return False
    held = called_with(frame, is_node)
    return all(any(h is p for h in held) for p in parents)


def display_names(candidate: Candidate) -> List[str]:
    """How a message names each parent: ``x`` for an op of one input, else its argument name."""
    if len(candidate.slots) == 1:
        return ["x"]
    return [slots[0] for slots in candidate.slots]


def _class_arguments(cls: type, args: tuple, kwargs: dict) -> list:
    """(name, value) of each argument of a class call, named by its ``__init__``'s signature."""
    try:
        signature = inspect.signature(cls)
        bound = signature.bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return [(f"argument {i + 1}", a) for i, a in enumerate(args)] + list(kwargs.items())
    named = []
    for name, value in bound.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            named.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            named.extend(value.items())
        else:
            named.append((name, value))
    return named


def _slots(parents: list, named: list) -> Optional[Tuple[Tuple[str, ...], ...]]:
    """Per parent, the argument names holding it (by identity, or through a handle that
    names it), or None if one has none."""
    slots = []
    for parent in parents:
        holding = tuple(n for n, value in named if value is parent) \
            or tuple(n for n, value in named if refers_to(value, parent))
        if not holding:
            return None
        slots.append(holding)
    return tuple(slots)


def refers_to(handle, node) -> bool:
    """Does ``handle`` name ``node`` without being it: an object holding it in an attribute,
    or a handle into a tape (``Var(tape, index)``: a list attribute whose item at an int
    attribute is the node)?

    >>> class Var:
    ...     def __init__(self, tape, index): self.tape, self.index = tape, index
    >>> entry = object()
    >>> refers_to(Var([None, entry], 1), entry), refers_to(Var([entry, None], 1), entry)
    (True, False)
    """
    if isinstance(handle, _PLAIN) or handle is None:
        return False
    items = list(instance_items(handle))
    if any(value is node for _, value in items):
        return True
    indices = [v for _, v in items if type(v) is int]
    return any(type(v) is list and -len(v) <= i < len(v) and v[i] is node
               for _, v in items for i in indices)


def _frame_candidate(frame: FrameType, made_at: int, parents: list) -> Optional[Candidate]:
    """The function running in ``frame`` with the arguments it holds, if they hold every parent."""
    code = frame.f_code
    local = frame.f_locals
    n_pos, n_kw = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[:n_pos + n_kw]
    if any(n not in local for n in names):
        return None
    args = [local[n] for n in names[:n_pos]]
    kwargs = {n: local[n] for n in names[n_pos:]}
    named = list(zip(names, args)) + list(kwargs.items())
    extra = n_pos + n_kw
    if code.co_flags & inspect.CO_VARARGS:
        more = tuple(local.get(code.co_varnames[extra], ()))
        named += [(f"{code.co_varnames[extra]}[{i}]", v) for i, v in enumerate(more)]
        args += list(more)
        extra += 1
    if code.co_flags & inspect.CO_VARKEYWORDS:
        kwargs.update(local.get(code.co_varnames[extra], {}))
        named += list(local.get(code.co_varnames[extra], {}).items())
    slots = _slots(parents, named)
    fn = _function_of(frame) if slots is not None else None
    if fn is None:
        return None
    name = op_name(code)
    if code.co_name in _GENERIC and args and not any(isinstance(args[0], type(p)) for p in parents):
        name = type(args[0]).__name__  # a gate's forward(u0, u1): named by its class
    elif code.co_name in _GENERIC:  # apply(self, Mul, y): named by the op class it is given
        name = next((a.__name__ for a in args if isinstance(a, type)), name)
    return Candidate(name, fn, tuple(args), kwargs, slots, code, made_at)


def _function_of(frame: FrameType):
    """The function whose code the frame runs: a method of its first argument's class,
    or a function of its module."""
    code: CodeType = frame.f_code
    local = frame.f_locals
    places = []
    for name in code.co_varnames[:code.co_argcount]:  # the first argument's class, then any other's
        value = local.get(name)  # (Function.apply(self, Mul, *x): found on the class it is given)
        owner = value if isinstance(value, type) else type(value)
        places.extend(vars(k) for k in owner.__mro__ if k is not object)
    places.append(frame.f_globals)
    for place in places:
        value = place.get(code.co_name)
        fn = getattr(value, "__func__", value)
        if getattr(fn, "__code__", None) is code:
            return fn
    return None

"""What is kept of a frame that made a node: its code, line, globals and arguments, never
the frame itself. A frame kept past its call keeps every local alive (the node it made,
its caller's frame and all the nodes held there), which a script counting live nodes
through weak references would see."""

from __future__ import annotations

import inspect
from types import CodeType, FrameType
from typing import Optional, Tuple

__all__ = ["FrameCopy", "argument_names"]


def argument_names(code: CodeType) -> Tuple[str, ...]:
    """The names a call of ``code`` is given: positional, keyword-only, ``*args``, ``**kwargs``.

    >>> argument_names((lambda a, *rest, b=1, **more: None).__code__)
    ('a', 'b', 'rest', 'more')
    """
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return code.co_varnames[:count]


class FrameCopy:
    """A frame's code, line and globals, and the locals named (its arguments by default),
    read once: what re-running the call needs, with nothing else of the frame held."""

    __slots__ = ("f_code", "f_lineno", "f_globals", "f_locals")

    def __init__(self, frame: FrameType, names: Optional[Tuple[str, ...]] = None) -> None:
        code, local = frame.f_code, frame.f_locals
        self.f_code, self.f_lineno, self.f_globals = code, frame.f_lineno, frame.f_globals
        self.f_locals = {n: local[n] for n in (argument_names(code) if names is None else names)
                         if n in local}

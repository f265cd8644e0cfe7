"""Which tracer listens: the stack of active tracers, the engines that follow it, and forks.

A forked child is not traced (its events would interleave with the parent's in one
file): before a fork, sinks write out what they buffer; in the child, tracing stops.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, List, Optional

if TYPE_CHECKING:  # for the annotations only: the tracer imports this module
    from .tracer import Tracer

__all__ = ["active_tracer", "follow_active", "announce"]

_stack: List["Tracer"] = []  # active tracers, innermost last


_followers: List[Callable[[Optional["Tracer"]], None]] = []


def active_tracer() -> Optional["Tracer"]:
    """The innermost active tracer, or None when nothing listens."""
    return _stack[-1] if _stack else None


def follow_active(follower: Callable[[Optional["Tracer"]], None]) -> None:
    """Call ``follower(tracer)`` now and whenever the innermost active tracer changes.

    An engine keeps the tracer it is given in a global of its own, so an untraced op
    pays one ``is not None`` check and the tracer never reaches into the engine.
    """
    _followers.append(follower)
    follower(active_tracer())


def announce() -> None:
    current = active_tracer()
    for follower in _followers:
        follower(current)


def _flush_before_fork() -> None:
    """Write out what sinks buffer, so a forked child holds no copy it could write again."""
    for tracer in _stack:
        for sink in tracer.sinks:
            flush = getattr(sink, "flush", None)
            if callable(flush):
                try:
                    flush()
                except Exception:  # the sink says so itself when it is next used
                    pass


def _quiet_in_forked_child() -> None:
    """A forked child is not traced: its events would interleave with the parent's in one file."""
    _stack.clear()
    announce()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_before_fork, after_in_child=_quiet_in_forked_child)

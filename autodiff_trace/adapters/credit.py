"""Which node a grad write made inside a running backward function is credited to.

Most writes belong to the node whose backward function runs. Two designs call their
backward function on one node but work for others: the root's ``backprop()`` that walks
the whole order itself (each write belongs to the node of its loop), and a recursive
``backprop(bp)`` whose first act is adding ``bp`` to its own grad (that amount was pushed
by the caller's node, one level up).
"""

from __future__ import annotations

from types import FrameType
from typing import Callable, Optional, Sequence

from .roles import rule_owner

__all__ = ["credited_to"]


def credited_to(firing: Sequence, target, frame: FrameType, is_node: Callable,
                has_parent: Callable) -> Optional[object]:
    """The node to credit with a write to ``target`` made while the backward functions of
    ``firing`` (outermost first) run, when it is not the innermost one; else None."""
    if not firing:
        return None
    node = firing[-1]
    if target is node:
        caller = firing[-2] if len(firing) > 1 else None
        return caller if caller is not None and has_parent(caller, target) else None
    owner = rule_owner(frame, target, is_node, has_parent, levels=1)  # the loop's node, if any
    return owner if owner is not None and owner is not node else None


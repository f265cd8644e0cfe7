"""The user's line behind a report, remembered per instruction so a loop pays one lookup.

:func:`user_line` walks out of this package and :func:`~.sites.describe_line` names
the line; a node made again by the same instruction of the same code (a loop's next
turn) gets the same answer, so it is kept per ``(code, offset)`` in :data:`by_code`.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Container, Optional, Tuple

from . import sites
from .sites import PACKAGE_DIR, describe_line

__all__ = ["user_line", "line_at", "code_lines", "by_code", "INSIDE", "NOWHERE"]

_getframe = sys._getframe
NOWHERE = (None, None, None, None)  # described, when no user frame made the node
_MOST_CODES = 10_000  # code objects remembered before the memo starts again
by_code: dict = {}  # id(code) -> {offset: described}, or INSIDE; _alive holds each code, so its id stays its own
_alive: dict = {}
INSIDE = "inside"  # by_code's entry for the code of this package: no line of the user's
sites.memos.append(by_code)  # a labelled source reads its lines anew


def user_line(skip: Container = ()) -> Tuple[Optional[FrameType], Tuple]:
    """``(frame, (site, function, assigned name, line number))`` for the innermost frame
    outside this package whose code is not in ``skip``, seen from a report method's
    caller; ``(None, NOWHERE)`` when there is none."""
    frame = _getframe(2)
    while frame is not None:
        code = frame.f_code
        lines = by_code.get(id(code))
        if lines is None:
            lines = code_lines(code)
        if lines is INSIDE or code in skip:
            frame = frame.f_back
            continue
        return frame, lines.get(frame.f_lasti) or line_at(frame)
    return None, NOWHERE


def code_lines(code):
    """The described instructions of ``code`` so far (:data:`by_code`), or :data:`INSIDE`
    for this package's own code."""
    lines = by_code.get(id(code))
    if lines is None:
        if len(by_code) >= _MOST_CODES:
            by_code.clear()
            _alive.clear()
        lines = by_code[id(code)] = INSIDE if code.co_filename.startswith(PACKAGE_DIR) else {}
        _alive[id(code)] = code
    return lines


def line_at(frame: FrameType) -> Tuple:
    """``(site, function, assigned name, line number)`` of the instruction ``frame`` is
    at (a frame outside this package), described once per instruction."""
    lines = code_lines(frame.f_code)
    described = lines.get(frame.f_lasti)
    if described is None:
        described = lines[frame.f_lasti] = describe_line(frame)
    return described

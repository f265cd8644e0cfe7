"""The user's line behind a report, remembered per instruction so a loop pays one lookup.

:func:`~.sites.user_frame` walks out of this package and :func:`~.sites.describe_line`
names the line; a node made again by the same instruction of the same code (a loop's
next turn) gets the same answer, so it is kept per ``(code, offset)``.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Container, Optional, Tuple

from . import sites
from .sites import PACKAGE_DIR, describe_line

__all__ = ["user_line"]

_getframe = sys._getframe
_NOWHERE = (None, None, None)
_MOST_CODES = 10_000  # code objects remembered before the memo starts again
_seen: dict = {}  # id(code) -> (code, {offset: described}); holding the code keeps its id its own
_labels_seen = [0]  # how many labelled sources the memo was made with (sites.label_source)


def user_line(skip: Container = ()) -> Tuple[Optional[FrameType], Tuple[Optional[str], Optional[str], Optional[str]]]:
    """``(frame, (site, function, assigned name))`` for the innermost frame outside this
    package whose code is not in ``skip``, seen from a report method's caller; ``(None,
    (None, None, None))`` when there is none."""
    frame = _getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith(PACKAGE_DIR) or code in skip:
            frame = frame.f_back
            continue
        if len(sites._labels) != _labels_seen[0]:  # a source was labelled: sites read anew
            _seen.clear()
            _labels_seen[0] = len(sites._labels)
        known = _seen.get(id(code))
        if known is None:
            if len(_seen) >= _MOST_CODES:
                _seen.clear()
            known = _seen[id(code)] = (code, {})
        lines = known[1]
        described = lines.get(frame.f_lasti)
        if described is None:
            described = lines[frame.f_lasti] = describe_line(frame)
        return frame, described
    return None, _NOWHERE

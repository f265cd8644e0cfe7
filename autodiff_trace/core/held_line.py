"""The nodes one run of an assignment line makes, held until the line is done.

``z = mul(add(x, y), add(x, y))`` makes three nodes; only the last, the line's result,
is ``z``. The tracer holds a line's node reports here and names the result when the
line ends.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["HeldLine"]


class HeldLine:
    """The node reports of one execution of an assignment line, held until it ends."""

    __slots__ = ("frame", "lineno", "lasti", "target", "name", "reports", "last_node")

    def __init__(self, frame, target: str, name: str) -> None:
        self.frame, self.lineno, self.lasti = frame, frame.f_lineno, frame.f_lasti
        self.target, self.name = target, name
        self.reports: list = []  # (report, made by the line itself)
        self.last_node = None  # the engine's object for the line's latest node, if it gave one

    def admits(self, frame) -> Optional[bool]:
        """Is a node made in ``frame`` part of this run of the line? True when the line
        made it, False when a generator expression or lambda on the line did, None
        when the line is done. A loop coming back to the line is a new run: the
        line's target then already holds the node made last."""
        if frame is self.frame:
            if frame.f_lineno != self.lineno:
                return None
            if frame.f_lasti <= self.lasti and self.last_node is not None \
                    and frame.f_locals.get(self.target) is self.last_node:
                return None
            self.lasti = frame.f_lasti
            return True
        inner = frame  # sum(x * w for x in xs): the products come from a <genexpr> frame
        while inner is not None and inner.f_code.co_name in _ANONYMOUS:
            inner = inner.f_back
            if inner is self.frame:
                return False if inner.f_lineno == self.lineno else None
        return None


_ANONYMOUS = frozenset({"<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>", "<lambda>"})

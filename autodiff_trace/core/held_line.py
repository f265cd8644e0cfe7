"""The nodes one run of an assignment line makes, held until the line is done.

``z = mul(add(x, y), add(x, y))`` makes three nodes; only the last, the line's result,
is ``z``. The tracer holds a line's node reports here and names the result when the
line ends.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from .sites import default_name

__all__ = ["HeldLine", "PendingReport"]


class PendingReport(NamedTuple):
    """A ``node_created`` report whose event is made when its line is released: its
    ``parents`` may be a function to call then, and ``on_emit`` wants the event."""

    node: int
    op: str
    value: float
    parents: object
    name: Optional[str]
    site: Optional[str]
    function: Optional[str]
    on_emit: Optional[Callable]
    module: Optional[str]
    tensor: Optional[str]


class HeldLine:
    """The node reports of one execution of an assignment line, held until it ends.

    ``reports`` holds, in order, captured node tuples (:mod:`.captured`, ready to go
    out as they are) and :class:`PendingReport` s; ``result`` is the position of the
    line's result so far (the last node the line itself made, unnamed and not a
    constant), and ``named`` the function that gives the result's object its name.
    """

    __slots__ = ("frame", "lineno", "lasti", "target", "name", "site", "function", "reports", "last_node",
                 "result", "result_obj", "named", "pending")

    def __init__(self, frame, lasti: int, lineno: Optional[int], target: Optional[str],
                 name: Optional[str], site: Optional[str] = None, function: Optional[str] = None) -> None:
        self.frame, self.lineno, self.lasti = frame, lineno, lasti
        self.target, self.name = target, name
        self.site, self.function = site, function  # the line's, as its nodes hold them
        self.reports: list = []
        self.last_node = None  # the engine's object for the line's latest node, if it gave one
        self.result: Optional[int] = None
        self.result_obj = None
        self.named: Optional[Callable] = None
        self.pending = False  # does ``reports`` hold a PendingReport?

    def restart(self, lasti: int) -> None:
        """Hold the next run of the same line (a loop came back to it), once the last run
        is released: as a new HeldLine would, without making one per run."""
        self.lasti = lasti
        self.reports = []
        self.last_node = self.result = self.result_obj = self.named = None
        self.pending = False

    def admits(self, frame, lasti: int, lineno: Optional[int]) -> Optional[bool]:
        """Is a node made in ``frame`` (at instruction ``lasti`` of line ``lineno``) part
        of this run of the line? True when the line made it, False when a generator
        expression or lambda on the line did, None when the line is done. A loop
        coming back to the line is a new run: the line's target then already holds the
        node made last."""
        if frame is self.frame:
            if lineno != self.lineno:
                return None
            if lasti <= self.lasti and self.last_node is not None \
                    and frame.f_locals.get(self.target) is self.last_node:
                return None
            self.lasti = lasti
            return True
        inner = frame  # sum(x * w for x in xs): the products come from a <genexpr> frame
        while inner is not None and inner.f_code.co_name in _ANONYMOUS:
            inner = inner.f_back
            if inner is self.frame:  # still at the line's instruction, or on its line
                return False if inner.f_lasti == self.lasti or inner.f_lineno == self.lineno else None
        return None

    def own(self, entry, obj, result: bool, named: Optional[Callable] = None) -> None:
        """Hold a node the line itself made; ``result``: it may be the line's result (it
        has no name of its own and is not a constant)."""
        if result:
            if self.result is not None:
                self.superseded()
            self.result, self.result_obj, self.named = len(self.reports), obj, named
        self.reports.append(entry)
        self.last_node = obj

    def superseded(self) -> None:
        """The line's result so far is not its result after all (a later node is): if it
        was made with the line's name already, it takes its default name back."""
        entry = self.reports[self.result]
        if entry.__class__ is tuple and entry[5] is self.name and self.name is not None:
            self.reports[self.result] = entry[:5] + (default_name(entry[1], entry[2], entry[3]),) + entry[6:]


_ANONYMOUS = frozenset({"<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>", "<lambda>"})

"""What every check shares: the trace's model, the pass under way, and the way to report.

A check is a small class with a method per event kind it reads (``on_node_created``,
``on_grad_accumulated``, ...), plus ``on_pass_start(p)``, ``on_pass_end(p)`` and
``on_close()`` where it needs them. The analyzer finds these methods once and calls
each with the events of its kind; checks never dispatch on kinds themselves.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from ...core.model import PassInfo, TraceModel
from ...core.text import number
from ..callers import LoopSite, firing_site
from ..causes import Cause, Causes, names_text, passes_text

__all__ = ["Context", "Check", "NOT_RECORDED"]

NOT_RECORDED = object()  # Context.recorded when no firing site was recorded for the event read


class Context:
    """The state the checks share. ``pass_`` is the pass under way (None between passes);
    ``begin_sites`` maps a pass to the user's line that began it, when known;
    ``stale_from`` maps a node to where the grad it held when the pass began came from."""

    def __init__(self, model: TraceModel, causes: Causes) -> None:
        self.model = model
        self.causes = causes
        self.pass_: Optional[PassInfo] = None
        self.begin_sites: Dict[int, Optional[str]] = {}
        self.stale_from: Dict[int, str] = {}
        self.outside_site: Optional[str] = None  # where this pass's outside firings come from
        # The call stack of an event read after it was captured: the user's frames of the
        # pass (this package's engine leaves them as they are), or the firing site
        # recorded as the event was captured.
        self.pass_frames: Optional[list] = None
        self.recorded: Any = NOT_RECORDED

    def firing_site(self, writing: Optional[str] = None) -> Optional[LoopSite]:
        """Where the node firing at the event being read was fired from (see
        :func:`~..callers.firing_site`), read when the event happened."""
        if self.recorded is not NOT_RECORDED:
            return self.recorded
        return firing_site(writing, self.pass_frames)

    def name(self, node: Optional[int]) -> str:
        return self.model.name(node)

    def names(self, nodes: Iterable[int]) -> str:
        return names_text([self.name(n) for n in nodes])

    def who(self, node: int) -> str:
        """``x (script.py:4)``: a node's name and where it was made."""
        site = self.model.node(node).site
        return f"{self.name(node)} ({site})" if site else self.name(node)

    def site_of(self, node: int) -> Optional[str]:
        return self.model.node(node).site

    def is_parentless(self, node: int) -> bool:
        return self.model.nodes.is_parentless(node)

    def in_pass(self, pass_no: int) -> Optional[PassInfo]:
        """The pass under way if it is pass ``pass_no``."""
        p = self.pass_
        return p if p is not None and p.pass_no == pass_no else None

    def expression(self, event: Any) -> str:
        """``mul(x = 1e+308, 10)``: an op (a node_created event or NodeInfo) with its operands."""
        operands = []
        for p in event.parents:
            info = self.model.node(p)
            operands.append(number(info.value) if info.op == "const" else f"{info.name} = {number(info.value)}")
        if event.op.startswith("**"):
            return f"pow({operands[0]}, {event.op[2:]})"
        return f"{event.op}({', '.join(operands)})"

    def generic(self, cause: Cause) -> Tuple[str, str]:
        """A cause worded by its first occurrence (whose detail is ``(message, hint)``), with
        how many more occurrences there were, about which nodes, in which passes."""
        message, hint = cause.first.detail
        rest = len(cause.occurrences) - 1
        if rest == 0:
            return message, hint
        others = [n for n in cause.distinct() if n not in cause.first.nodes[:1]]
        about = f": {self.names(others)}" if others else ""
        return (f"{message}; the same again {rest} more time{'s' if rest > 1 else ''}{about} "
                f"(in {passes_text(cause.passes)})", hint)

    def report(self, kind: str, severity: str, site: Optional[str], pass_no: int,
               nodes: Iterable[int], detail: Any, describe: Callable[[Cause], Tuple[str, str]]) -> None:
        """One occurrence of the cause (kind, severity, site); ``describe`` words the cause."""
        self.causes.add(kind, severity, site, pass_no, nodes, detail, describe)


class Check:
    """Base of the checks: keeps the shared context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

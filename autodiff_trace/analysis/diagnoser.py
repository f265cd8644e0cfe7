"""Diagnostics: turn the event stream into findings a learner can act on.

:class:`Diagnoser` is an analyzer (``trace(analyzers=[Diagnoser()])``): it reads
events as they arrive, in time linear in the events, and returns findings that the
tracer turns into ``diagnostic`` events. :func:`diagnose` runs it over a finished
list of events. Each finding names the bug in words, with its numbers, the nodes,
the source line that matters and a fix.
"""

from __future__ import annotations

import linecache
import math
from typing import Dict, Iterable, List, Optional

from ..core.events import Event, Finding, GradAccumulated, from_dict
from ..core.model import PassInfo, TraceModel
from ..core.sites import locate_site

__all__ = ["Diagnoser", "diagnose", "format_number", "source_line"]

_isfinite = math.isfinite


def _nothing(event: Event) -> None:
    """The tracer has folded the event into the shared model already."""


def format_number(x: float) -> str:
    """A number as a learner reads it: six significant digits, floats look like floats.

    >>> format_number(2.0), format_number(0.1 + 0.2), format_number(1e308 * 10), format_number(-3)
    ('2.0', '0.3', 'inf', '-3.0')
    """
    text = f"{float(x):.6g}"
    return text + ".0" if text.lstrip("-").isdigit() else text


def _count(n: int, noun: str) -> str:
    """
    >>> _count(1, "more grad"), _count(3, "more grad")
    ('1 more grad', '3 more grads')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def source_line(site: Optional[str]) -> Optional[str]:
    """The stripped source text at ``"path.py:14"`` or ``"cell 5, line 3"``, or None when
    it cannot be read."""
    where = locate_site(site) if site else None
    if where is None:
        return None
    return linecache.getline(*where).strip() or None


class Diagnoser:
    """Reads events as they come and reports gradient bugs as findings.

    Args:
        check_grads: at the end of each pass, compare every leaf's gradient with
            central differences recomputed from the recorded graph (two evaluations
            of the graph below each leaf; off by default).
        rtol: relative tolerance of that check.
        atol: absolute tolerance of that check.
        eps: the step of the central differences, relative to the leaf's size.
        check_leaves: check at most this many leaves per pass.
        limit: report at most this many findings of one kind per pass; the rest
            are counted in one summary finding.

    Alone, it folds a model of its own; under a tracer it reads the tracer's (``bind``).
    """

    def __init__(self, *, check_grads: bool = False, rtol: float = 1e-3, atol: float = 1e-5,
                 eps: float = 1e-6, check_leaves: int = 100, limit: int = 10) -> None:
        for label, number in (("rtol", rtol), ("atol", atol), ("eps", eps)):
            if not (isinstance(number, (int, float)) and number >= 0 and _isfinite(number)):
                raise ValueError(f"Diagnoser({label}={number!r}): expected a finite number >= 0")
        for label, count in (("check_leaves", check_leaves), ("limit", limit)):
            if not (isinstance(count, int) and count >= 1):
                raise ValueError(f"Diagnoser({label}={count!r}): expected a whole number >= 1")
        self.check_grads = check_grads
        self.rtol, self.atol, self.eps = rtol, atol, eps
        self.check_leaves = check_leaves
        self.limit = limit
        self.model = TraceModel()
        self._fold = self.model.handle
        self._handlers = {
            "node_created": self._node_created,
            "backward_started": self._backward_started,
            "backward_fn_fired": self._fired,
            "grad_accumulated": self._accumulated,
            "grads_zeroed": self._zeroed,
            "backward_finished": self._backward_finished,
        }
        self._found: List[Finding] = []
        self._counts: Dict[tuple, int] = {}  # (pass_no, kind) -> findings so far
        self._left_out: Dict[tuple, list] = {}  # (pass_no, kind) -> [count, severity]
        self._last_write: Dict[int, GradAccumulated] = {}  # node -> the write that set its grad
        self._graph_of: Dict[int, int] = {}  # node -> the last pass whose graph held it
        self._bad_values: set = set()  # nodes whose value is NaN or infinite
        self._values_carried = 0  # non-finite values computed from non-finite values
        self._pass: Optional[PassInfo] = None
        self._new_pass_state()

    def _new_pass_state(self) -> None:
        self._upstream: Dict[int, float] = {}  # node -> what it passed on when it fired
        self._bad_fired: set = set()  # nodes that passed on a non-finite gradient
        self._grads_carried = 0
        self._reported: set = set()  # (kind, node) already reported in this pass
        self._outside: Optional[list] = None  # [node, {target: added}] while it writes
        self._outside_into: Dict[int, Dict[int, float]] = {}  # target -> {writer: added}
        self._stale_from: Dict[int, str] = {}  # node -> where its grad at the start came from

    # -- the analyzer protocol ----------------------------------------------------------
    def bind(self, model: TraceModel) -> None:
        """Read ``model``, which the tracer folds before this analyzer sees each event."""
        self.model = model
        self._fold = _nothing

    def handle(self, event: Event) -> Optional[List[Finding]]:
        """Fold one event in; return the findings it completes, if any."""
        self._fold(event)
        handler = self._handlers.get(event.kind)
        if handler is not None:
            handler(event)
        if self._found:
            found, self._found = self._found, []
            return found
        return None

    def close(self) -> List[Finding]:
        """The findings only the end of the trace completes (a pass cut short, summaries)."""
        if self._pass is not None:
            self._finish_pass(self._pass)
        self._report_values_carried()
        for pass_no, kind in list(self._left_out):
            self._report_left_out(pass_no, kind)
        found, self._found = self._found, []
        return found

    # -- reporting ----------------------------------------------------------------------
    def _report(self, pass_no: int, kind: str, severity: str, message: str,
                nodes: Iterable[int], site: Optional[str], hint: str) -> None:
        key = (pass_no, kind)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count > self.limit:
            self._left_out.setdefault(key, [0, severity])[0] += 1
            return
        nodes = tuple(nodes)
        names = tuple(self.model.name(n) for n in nodes)
        self._found.append(Finding(pass_no, kind, severity, message, nodes, names, site, hint))

    def _report_left_out(self, pass_no: int, kind: str) -> None:
        count, severity = self._left_out.pop((pass_no, kind))
        where = f"backward pass {pass_no}" if pass_no else "this trace"
        self._found.append(Finding(
            pass_no, kind, severity,
            f"not listed: {_count(count, 'more ' + kind + ' finding')} in {where} "
            f"(the limit is {self.limit} per pass)",
            (), (), None, "fix the findings above first; raise Diagnoser(limit=...) to list more"))

    def _name(self, node: int) -> str:
        return self.model.name(node)

    def _who(self, node: int) -> str:
        """``x (script.py:4)``: a node's name and where it was made."""
        site = self.model.node(node).site
        return f"{self._name(node)} ({site})" if site else self._name(node)

    def _is_parentless(self, node: int) -> bool:
        info = self.model.nodes.get(node)
        return info is not None and info.op != "?" and not info.parents

    # -- the event handlers ---------------------------------------------------------------
    def _node_created(self, event) -> None:
        if _isfinite(event.value):
            return
        self._bad_values.add(event.node)
        if any(p in self._bad_values for p in event.parents):
            self._values_carried += 1
            return
        name, value = event.name, format_number(event.value)
        where = f" at {event.site}" if event.site else ""
        if not event.parents:
            message = f"{name} became {value}{where}: it was created with that value"
            hint = "find where this number comes from: it was already non-finite when the graph was built"
        else:
            reason = ("overflows the largest float (about 1.8e308)" if value.endswith("inf")
                      else "has no defined value")
            message = f"{name} became {value}{where}: {self._expression(event)} {reason}"
            hint = ("keep values in a moderate range: scale the inputs, lower the learning rate, "
                    "or use a numerically stable form of the expression" if value.endswith("inf") else
                    "keep the operands away from undefined cases such as 0/0, inf - inf or 0 * inf")
        self._report(0, "non_finite", "error", message, (event.node,), event.site, hint)

    def _expression(self, event) -> str:
        """``mul(x = 1e+308, 10.0)``: an op (a node_created event or NodeInfo) with its operands."""
        operands = []
        for p in event.parents:
            info = self.model.node(p)
            value = format_number(info.value)
            operands.append(value if info.op == "const" else f"{info.name} = {value}")
        if event.op.startswith("**"):
            return f"pow({operands[0]}, {event.op[2:]})"
        return f"{event.op}({', '.join(operands)})"

    def _backward_started(self, event) -> None:
        if self._pass is not None:  # a pass we never saw end
            self._finish_pass(self._pass)
        self._report_values_carried()
        self._pass = p = self.model.passes[-1]
        self._new_pass_state()
        stale = [(node, before) for node, before in zip(event.order, event.grads_before) if before != 0]
        stale.sort(key=lambda item: self.model.node(item[0]).op != "")  # leaves first
        for node, before in stale:
            if self.model.node(node).op != "const":
                self._report_stale(p, node, before)
        graph_of = self._graph_of
        for node in event.order:
            graph_of[node] = p.pass_no

    def _report_stale(self, p: PassInfo, node: int, before: float) -> None:
        write = self._last_write.get(node)
        site = write.site if write is not None else None
        if write is None:
            source = "before this trace began"
        elif write.pass_no:
            source = f"pass {write.pass_no}"
        else:
            source = "a write outside any backward pass"
        self._stale_from[node] = source
        source = ("from " if write is None or write.pass_no else "by ") + source
        where = f", {site}" if site else ""
        self._report(
            p.pass_no, "stale_gradient", "warning",
            f"{self._name(node)}.grad was {format_number(before)} when backward pass {p.pass_no} began "
            f"(left {source}{where}); zero the gradients before each backward",
            (node,), site or self.model.node(node).site,
            "call zero_grad() (or set every .grad to 0) before each backward pass; "
            "ignore this if you meant to add up gradients over several passes")

    def _fired(self, event) -> None:
        self._end_outside_firing()
        p = self._pass
        if p is None or p.pass_no != event.pass_no:
            return
        node = event.node
        self._upstream[node] = event.upstream
        if not _isfinite(event.upstream):
            self._bad_fired.add(node)
        first = p.fire_number[node]
        if first != len(p.fired) and not self._is_parentless(node) and ("twice", node) not in self._reported:
            self._reported.add(("twice", node))
            self._report(
                p.pass_no, "fired_twice", "error",
                f"{self._name(node)}'s backward function ran twice in backward pass {p.pass_no} "
                f"(firings {first} and {len(p.fired)}), so it pushed its gradient to its parents twice",
                (node,), self.model.node(node).site,
                "visit each node once per pass: keep a visited set while building the order, "
                "and build the order afresh in every backward call")
        if node not in p.reachable and p.order:  # an empty order: the engine did not say
            self._outside = [node, {}]

    def _end_outside_firing(self) -> None:
        """Report a node that fired outside its pass's graph, now that its writes are known."""
        if self._outside is None:
            return
        node, added = self._outside
        self._outside = None
        p = self._pass
        home = self._graph_of.get(node)
        belongs = (f"it is left over from pass {home}'s graph" if home is not None
                   else "it is not part of any backward pass's graph")
        if added:
            what = " and ".join(f"{format_number(v)} more to {self._name(t)}.grad" for t, v in added.items())
            effect = f"and, passing on its grad of {format_number(self._upstream[node])}, added {what}"
        else:
            effect = "and wrote no gradient"
        self._report(
            p.pass_no, "fired_outside_graph", "error",
            f"{self._who(node)} fired in backward pass {p.pass_no} although that pass's root "
            f"{self._who(p.root)} does not depend on it; {belongs} {effect}",
            (node, *added), self.model.node(node).site,
            "the list of nodes to visit outlives the pass (a module-level order list or visited set, "
            "say); build it afresh from the root inside each backward call")

    def _accumulated(self, event) -> None:
        target, writer = event.target, event.fired_by
        self._last_write[target] = event
        p = self._pass
        in_pass = p is not None and p.pass_no == event.pass_no
        if in_pass and writer is not None:
            outside = self._outside
            if outside is not None and outside[0] == writer:
                outside[1][target] = outside[1].get(target, 0.0) + event.contribution
                into = self._outside_into.setdefault(target, {})
                into[writer] = into.get(writer, 0.0) + event.contribution
            elif target in p.fire_number and writer in p.reachable:
                self._report_too_early(p, event)
        if event.replaced and writer is not None and event.grad_before != 0:
            self._report_overwrite(event)
        if not _isfinite(event.grad_after) and _isfinite(event.grad_before):
            self._report_bad_grad(event)

    def _report_too_early(self, p: PassInfo, event) -> None:
        target, writer = event.target, event.fired_by
        if ("early", target) in self._reported or self._is_parentless(target):
            return
        self._reported.add(("early", target))
        t, w = self._name(target), self._name(writer)
        relation = "which uses it" if target in self.model.node(writer).parents else "which writes to it"
        passed = self._upstream.get(target)
        passed = f" ({format_number(passed)})" if passed is not None else ""
        self._report(
            p.pass_no, "fired_too_early", "error",
            f"{t} fired too early in backward pass {p.pass_no}: {w}, {relation}, fired after it and "
            f"added {format_number(event.contribution)} to {t}.grad, so {t} had passed on an "
            f"incomplete gradient{passed}",
            (target, writer), self.model.node(target).site,
            "run the backward functions in reverse topological order, so that a node fires only after "
            "every node that uses it (reverse a post-order depth-first search from the root)")

    def _report_overwrite(self, event) -> None:
        t, w = self._name(event.target), self._name(event.fired_by)
        code = source_line(event.site)
        shown = f" at {event.site}" if event.site else ""
        shown += f" (`{code}`)" if code else ""
        message = (f"{w}'s backward function set {t}.grad to {format_number(event.grad_after)}{shown}, "
                   f"replacing {format_number(event.grad_before)} instead of adding to it, which would "
                   f"give {format_number(event.grad_before + event.grad_after)}")
        # The value assigned is what the rule meant to add: `a.der = x` was meant as `a.der += x`.
        fixed = code.replace(" = ", " += ", 1) if code and " = " in code else None
        hint = (f"write `{fixed}`: " if fixed else "use += in the backward function: ") + \
            "a node used in several places must collect every contribution"
        self._report(event.pass_no, "overwritten_grad", "error", message,
                     (event.target, event.fired_by), event.site, hint)

    def _report_bad_grad(self, event) -> None:
        target, writer = event.target, event.fired_by
        if writer is not None and (writer in self._bad_fired or writer in self._bad_values or any(
                p in self._bad_values for p in self.model.node(writer).parents)):
            self._grads_carried += 1  # it only carries a non-finite number reported already
            return
        t, after = self._name(target), format_number(event.grad_after)
        local, contribution = event.local_grad, event.contribution
        hint = ("keep values in a moderate range (scale the inputs, lower the learning rate) "
                "or use a numerically stable form of the expression")
        if writer is None:
            reason = f"the seed of the pass is {format_number(contribution)}"
            hint = "seed the backward pass with a finite number, normally 1.0"
        elif local is not None and not _isfinite(local):
            info = self.model.node(writer)
            expression = self._expression(info)
            reason = f"the derivative of {info.name} = {expression} with respect to {t} is {format_number(local)}"
            hint = ("the derivative is infinite or undefined at this point: keep the operand off the edge "
                    "of the op's domain (add a small epsilon, as in sqrt(x + 1e-12)) or use a smoother op")
        elif not _isfinite(contribution):
            upstream = self._upstream.get(writer)
            if local is not None and upstream is not None:
                reason = (f"the local derivative {format_number(local)} times the incoming gradient "
                          f"{format_number(upstream)} from {self._name(writer)} overflows")
            else:
                reason = f"{self._name(writer)}'s backward function wrote {format_number(contribution)}"
        else:
            reason = (f"adding {format_number(contribution)} from {self._name(writer)} to "
                      f"{format_number(event.grad_before)} overflows")
        site = event.site or (self.model.node(writer).site if writer is not None else None)
        where = f" ({site})" if site else ""
        nodes = (target,) if writer is None else (target, writer)
        self._report(event.pass_no, "non_finite", "error",
                     f"{t}.grad became {after} in backward pass {event.pass_no}: {reason}{where}",
                     nodes, site, hint)

    def _zeroed(self, event) -> None:
        last_write = self._last_write
        for node in event.nodes:
            last_write.pop(node, None)

    def _backward_finished(self, event) -> None:
        p = self._pass
        if p is not None and p.pass_no == event.pass_no:
            self._finish_pass(p)

    # -- the end of a pass ----------------------------------------------------------------
    def _finish_pass(self, p: PassInfo) -> None:
        self._end_outside_firing()
        self._pass = None
        for target, writers in self._outside_into.items():
            if target in p.reachable:
                self._report_polluted(p, target, writers)
        for node in p.order:
            if node not in p.writes_to:
                info = self.model.nodes.get(node)
                if info is not None and info.op == "":
                    self._report_unreached(p, node)
        if self.check_grads:
            from .gradcheck import check_pass  # opt-in, and it imports this module

            for finding in check_pass(self.model, p, eps=self.eps, atol=self.atol, rtol=self.rtol,
                                      max_leaves=self.check_leaves):
                self._report(finding.pass_no, finding.finding, finding.severity, finding.message,
                             finding.nodes, finding.site, finding.hint)
        if self._grads_carried:
            self._found.append(Finding(
                p.pass_no, "non_finite", "info",
                f"{_count(self._grads_carried, 'more grad')} became non-finite in backward pass "
                f"{p.pass_no}, each carrying the non-finite numbers reported above", (), (), None,
                "fix the first non-finite value or gradient; these follow from it"))
        for pass_no, kind in list(self._left_out):
            if pass_no == p.pass_no:
                self._report_left_out(pass_no, kind)

    def _report_polluted(self, p: PassInfo, target: int, writers: Dict[int, float]) -> None:
        writes = p.writes_to.get(target, ())
        final = writes[-1].grad_after if writes else 0.0
        own = sum(w.contribution for w in writes if w.fired_by is None or w.fired_by in p.reachable)
        before = p.grads_before.get(target, 0.0)
        parts = []
        if before != 0:
            source = self._stale_from.get(target, "an earlier pass")
            parts.append(f"{format_number(before)} was left from {source}")
        for writer, added in writers.items():
            parts.append(f"{format_number(added)} came from {self._name(writer)}")
        t = self._name(target)
        self._report(
            p.pass_no, "polluted_grad", "error",
            f"{t}.grad ended backward pass {p.pass_no} at {format_number(final)}, but the writes from "
            f"this pass's own graph add up to {format_number(own)}: {' and '.join(parts)}, "
            f"which {'is' if len(writers) == 1 else 'are'} not part of this graph",
            (target, *writers), self.model.node(target).site,
            f"with gradients zeroed before the pass and only this graph's backward functions firing, "
            f"{t}.grad would be {format_number(own)}")

    def _report_unreached(self, p: PassInfo, node: int) -> None:
        name, root = self._name(node), self._name(p.root)
        self._report(
            p.pass_no, "grad_never_reached", "info",
            f"{name} received no gradient in backward pass {p.pass_no} although {root} depends on it, "
            f"so {name}.grad stayed {format_number(p.grads_before.get(node, 0.0))}",
            (node,), self.model.node(node).site,
            f"if this branch is not detached on purpose, check that every op between {root} and {name} "
            f"has a backward function that writes to all its parents")

    def _report_values_carried(self) -> None:
        if self._values_carried:
            self._found.append(Finding(
                0, "non_finite", "info",
                f"{_count(self._values_carried, 'more node value')} became non-finite, each computed "
                f"from the non-finite values reported above", (), (), None,
                "fix the first non-finite value; these follow from it"))
            self._values_carried = 0


def diagnose(events: Iterable, **options) -> List[Finding]:
    """The findings for a finished trace: ``diagnose(t.events)`` or ``diagnose(load_events(path))``.

    Args:
        events: events, or their dicts as read from JSON.
        **options: passed to :class:`Diagnoser` (``check_grads=True``, ``rtol=...``).
    """
    diagnoser = Diagnoser(**options)
    findings: List[Finding] = []
    for position, event in enumerate(events):
        if isinstance(event, dict):
            event = from_dict(event)
        elif not hasattr(event, "kind"):
            raise TypeError(f"diagnose(): item {position} is a {type(event).__name__}, not an event; "
                            f"pass trace().events or load_events(path)")
        findings.extend(diagnoser.handle(event) or ())
    findings.extend(diagnoser.close())
    return findings

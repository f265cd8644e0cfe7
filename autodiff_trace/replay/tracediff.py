"""Compare two traces of the same program: where they part, and which grads end up different.

Node ids are not comparable between runs, so nodes are matched by a key made of the
node's name and its creation site: the function that made it, how many nodes of that
name it had made since the last backward pass, and which backward pass came before.
Line numbers are left out on purpose, so adding a ``zero_grad()`` line does not
unmatch every node after it. A node nobody named (``add#4``) is keyed by its op and
its parents' keys instead. The traces are read pass by pass, in step, so memory
grows with the nodes and the largest pass, not with the length of the trace.
"""

from __future__ import annotations

import difflib
import html
import itertools
import os
import re
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import graphviz

from ..views.graph.diagram import num, visible
from ..core.events import Event
from ..core.tracefile import iter_events

__all__ = ["TraceDiff", "diff_traces", "describe"]

Source = Union[str, os.PathLike, Iterable[Event]]
_AUTO = re.compile(r"#\d+$")
ALIGN_LIMIT = 20_000  # events per pass above which the middle is compared in place
END = object()  # marks the end of a piece (a pass and what led up to it) in a trace's steps
DIFFERS, ONLY_A, ONLY_B = "#f4c7c3", "#fde2bf", "#d6e4f5"


def _n(x: Optional[float]):
    """A number made comparable: NaN equals NaN, and 12 significant digits decide.

    >>> _n(0.1 + 0.2) == _n(0.3), _n(float("nan")) == _n(float("nan"))
    (True, True)
    """
    if x is None or x.__class__ is bool:
        return x
    return "nan" if x != x else float(f"{x:.12g}")


def _same(a: Optional[float], b: Optional[float]) -> bool:
    return _n(a) == _n(b)


def describe(event: Event, name=lambda node: f"#{node}") -> str:
    """One line telling what an event did, with node names from ``name(node_id)``."""
    kind = event.kind
    if kind == "node_created":
        if not event.parents:
            return f"made {name(event.node)} = {num(event.value)} ({event.op or 'leaf'})"
        args = ", ".join(name(p) for p in event.parents)
        return f"made {name(event.node)} = {event.op}({args}) = {num(event.value)}"
    if kind == "backward_started":
        stale = [f"{name(n)} {num(g)}" for n, g in zip(event.order, event.grads_before) if g != 0]
        return (f"pass {event.pass_no} began at {name(event.root)}"
                + (f" (grads already non-zero: {', '.join(stale[:5])})" if stale else ""))
    if kind == "backward_fn_fired":
        return f"{name(event.node)} fired, passing on {num(event.upstream)}"
    if kind == "grad_accumulated":
        target = name(event.target)
        change = f"({num(event.grad_before)} → {num(event.grad_after)})"
        if event.fired_by is None:
            return f"{target}.grad set to {num(event.contribution)} outside any backward function {change}"
        op = "=" if event.replaced else "+="
        return f"{target}.grad {op} {num(event.contribution)} from {name(event.fired_by)} {change}"
    if kind == "grads_zeroed":
        shown = ", ".join(name(n) for n in event.nodes[:5]) + (", ..." if len(event.nodes) > 5 else "")
        return f"zeroed {len(event.nodes)} grad{'' if len(event.nodes) == 1 else 's'} ({shown})"
    if kind == "backward_finished":
        return f"pass {event.pass_no} ended ({event.fired} fired, {event.accumulated} grad writes)"
    return f"{event.severity} {event.finding}: {event.message}"


class _Side:
    """One trace being read: node keys, names, current grads, and the pass being compared."""

    def __init__(self, label: str, source: Source, canon: Dict[tuple, int], pass_no: Optional[int]):
        self.label, self.canon, self.pass_no = label, canon, pass_no
        self.path = str(source) if isinstance(source, (str, os.PathLike)) else None
        self.events = iter_events(source) if self.path else iter(source)
        self.key: Dict[int, tuple] = {}  # node id -> key
        self.names: Dict[tuple, str] = {}  # key -> name
        self.sites: Dict[tuple, str] = {}  # key -> "file.py:line", for names given twice
        self.name_count: Dict[str, int] = {}
        self.parents: Dict[tuple, Tuple[tuple, ...]] = {}
        self.grads: Dict[tuple, float] = {}  # key -> latest grad (at the end: the final grad)
        self.epoch, self.occurrences = 0, {}
        self.count = self.passes = 0
        self.findings: Dict[tuple, object] = {}
        self.last_pass: List[tuple] = []  # keys of the last compared pass's graph
        self.pass_keys: set = set()
        self.root: Optional[tuple] = None

    def name(self, node: Optional[int]) -> str:
        """The node's name, with its creation line when another node has the same name."""
        if node is None:
            return "(none)"
        key = self.key.get(node)
        name = self.names.get(key, f"#{node}")
        site = self.sites.get(key)
        return f"{name} ({site})" if site and self.name_count.get(name, 0) > 1 else name

    def _make_key(self, e) -> tuple:
        parents = tuple(self.key.get(p, ("?", p)) for p in e.parents)
        label = ("op", e.op, parents) if _AUTO.search(e.name) else e.name
        counter = (label, e.function)
        occurrence = self.occurrences.get(counter, 0)
        self.occurrences[counter] = occurrence + 1
        base = self.canon.setdefault((label, e.function, occurrence), len(self.canon))
        key = (base,) if self.pass_no is not None else (self.epoch, base)
        self.names.setdefault(key, e.name)
        self.name_count[e.name] = self.name_count.get(e.name, 0) + 1
        if e.site:
            self.sites[key] = os.path.basename(e.site)
        self.parents[key] = parents
        return key

    def sig(self, e) -> Optional[tuple]:
        """What must agree for two events to count as the same step (ids replaced by keys)."""
        k, kind = self.key.get, e.kind
        if kind == "node_created":
            return ("node", k(e.node), e.op, _n(e.value))
        if kind == "backward_started":
            stale = sorted((k(n), _n(g)) for n, g in zip(e.order, e.grads_before) if g != 0)
            return ("start", k(e.root), _n(e.seed), tuple(stale))
        if kind == "backward_fn_fired":
            return ("fired", k(e.node), _n(e.grad), _n(e.upstream))
        if kind == "grad_accumulated":
            return ("write", k(e.target), k(e.fired_by), _n(e.contribution), _n(e.grad_before),
                    _n(e.grad_after))
        if kind == "grads_zeroed":
            return ("zeroed", tuple(sorted(k(n) for n in e.nodes)))
        if kind == "backward_finished":
            return ("finished", k(e.root))
        return None

    def steps(self) -> Iterator[object]:
        """Yield ``(signature, event)`` for each compared event and :data:`END` after each
        piece: everything up to the end of a pass (or, with a pass number, that pass alone)."""
        open_piece = False
        in_pass = self.pass_no is None
        for e in self.events:
            self.count += 1
            kind = e.kind
            if kind == "node_created":
                self.key[e.node] = self._make_key(e)
            elif kind == "diagnostic":
                if self.pass_no is None or e.pass_no == self.pass_no:
                    names = tuple(self.name(n) for n in e.nodes) or e.names
                    self.findings.setdefault((e.finding, e.severity, names), e)
                continue
            elif kind == "backward_started":
                self.passes += 1
                in_pass = self.pass_no is None or e.pass_no == self.pass_no
                if in_pass:
                    self.root = self.key.get(e.root)
                    self.last_pass = [self.key.get(n, ("?", n)) for n in e.order]
                    self.pass_keys = set(self.last_pass)
                    for n, g in zip(e.order, e.grads_before):
                        self.grads[self.key.get(n, ("?", n))] = g
            elif kind == "grad_accumulated" and in_pass:
                target = self.key.get(e.target, ("?", e.target))
                self.grads[target] = e.grad_after
                self._touch(target)
            elif kind == "backward_fn_fired" and in_pass:
                self._touch(self.key.get(e.node, ("?", e.node)))
            elif kind == "grads_zeroed" and self.pass_no is None:
                for n in e.nodes:
                    self.grads[self.key.get(n, ("?", n))] = 0.0
            if in_pass:
                open_piece = True
                yield self.sig(e), e
            if kind == "backward_finished":
                self.epoch += 1
                self.occurrences.clear()
                if in_pass:
                    open_piece = False
                    yield END
                if self.pass_no is not None and in_pass:
                    self._drain_findings()
                    return
                in_pass = self.pass_no is None
        if open_piece:
            yield END

    def _touch(self, key: tuple) -> None:
        """Add a node that fired or was written outside the root's graph to the pass's nodes."""
        if key not in self.pass_keys:
            self.last_pass.append(key)
            self.pass_keys.add(key)

    def _drain_findings(self) -> None:
        """The findings about a pass come right after its end: read them, then stop."""
        for e in self.events:
            if e.kind != "diagnostic":
                return
            if e.pass_no == self.pass_no:
                self.findings.setdefault((e.finding, e.severity, e.names), e)


class TraceDiff:
    """The result of :func:`diff_traces`; ``same`` is True when nothing differs.

    Attributes:
        first: the first pair of steps that disagree, ``(side A event, side B event)``,
            either one None when a trace has an extra step there.
        only_a, only_b: steps present in one trace only (the first ``limit`` of them).
        changed: pairs of steps in the same place that disagree.
        grads: ``(name, grad in A, grad in B)`` for every matched node whose final grad differs.
    """

    def __init__(self, a: _Side, b: _Side, limit: int) -> None:
        self.a, self.b, self.limit = a, b, limit
        self.first: Optional[Tuple[Optional[str], Optional[str]]] = None
        self.only_a: List[str] = []
        self.only_b: List[str] = []
        self.changed: List[Tuple[str, str]] = []
        self.counts = {"only_a": 0, "only_b": 0, "changed": 0}
        self.grads: List[Tuple[str, float, float]] = []
        self.nodes_only_a: List[str] = []
        self.nodes_only_b: List[str] = []
        self.findings_only_a: list = []
        self.findings_only_b: list = []

    @property
    def same(self) -> bool:
        return not (self.first or self.grads or self.findings_only_a or self.findings_only_b)

    def _note(self, bucket: str, line) -> None:
        self.counts[bucket] += 1
        target = getattr(self, bucket)
        if len(target) < self.limit:
            target.append(line)

    def _step(self, side: _Side, e: Event) -> str:
        where = f"pass {e.pass_no}, " if hasattr(e, "pass_no") else ""
        return f"{where}seq {e.seq}: {describe(e, side.name)}"

    def compare(self, piece_a: list, piece_b: list) -> None:
        """Align one piece of each trace and record what differs."""
        sa, sb = [s for s, _ in piece_a], [s for s, _ in piece_b]
        start = next((i for i, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
        end = 0
        while end < min(len(sa), len(sb)) - start and sa[-1 - end] == sb[-1 - end]:
            end += 1
        mid_a, mid_b = sa[start:len(sa) - end], sb[start:len(sb) - end]
        if not mid_a and not mid_b:
            return
        if len(mid_a) + len(mid_b) <= ALIGN_LIMIT:
            ops = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes()
        else:
            ops = [("replace", 0, len(mid_a), 0, len(mid_b))]
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                continue
            ea = [e for _, e in piece_a[start + i1:start + i2]]
            eb = [e for _, e in piece_b[start + j1:start + j2]]
            if self.first is None:
                self.first = (self._step(self.a, ea[0]) if ea else None,
                              self._step(self.b, eb[0]) if eb else None)
            for x, y in itertools.zip_longest(ea, eb):
                if x is not None and y is not None:
                    self._note("changed", (self._step(self.a, x), self._step(self.b, y)))
                elif x is not None:
                    self._note("only_a", self._step(self.a, x))
                else:
                    self._note("only_b", self._step(self.b, y))

    def finish(self) -> None:
        a, b = self.a, self.b
        for key, grad in a.grads.items():
            if key in b.grads and not _same(grad, b.grads[key]):
                self.grads.append((a.names.get(key, "?"), grad, b.grads[key]))
        nodes_a, nodes_b = self._nodes(a), self._nodes(b)
        self.nodes_only_a = [a.names.get(k, "?") for k in nodes_a if k not in nodes_b]
        self.nodes_only_b = [b.names.get(k, "?") for k in nodes_b if k not in nodes_a]
        self.findings_only_a = [f for k, f in a.findings.items() if k not in b.findings]
        self.findings_only_b = [f for k, f in b.findings.items() if k not in a.findings]

    @staticmethod
    def _nodes(side: _Side) -> dict:
        """The nodes compared: every node of a whole trace, or those of the chosen pass."""
        return side.names if side.pass_no is None else dict.fromkeys(side.last_pass)

    def format(self) -> str:
        """The report as plain text, one fact per line."""
        a, b = self.a, self.b
        lines = [f"{label}: {side.path or 'events'} " + (
            f"(pass {side.pass_no})" if side.pass_no is not None else
            f"({side.count} events, {side.passes} pass{'' if side.passes == 1 else 'es'})")
            for label, side in (("A", a), ("B", b))]
        matched = len(self._nodes(a)) - len(self.nodes_only_a)
        lines.append(f"nodes: {matched} matched by name and creation site, "
                     f"{len(self.nodes_only_a)} only in A, {len(self.nodes_only_b)} only in B")
        for label, names in (("A", self.nodes_only_a), ("B", self.nodes_only_b)):
            if names:
                lines.append(f"  only in {label}: " + ", ".join(visible(n) for n in names[:10])
                             + (", ..." if len(names) > 10 else ""))
        if self.first:
            lines += ["", "first divergence:", f"  A {self.first[0] or '(nothing: the trace ends here)'}",
                      f"  B {self.first[1] or '(nothing: the trace ends here)'}"]
        for bucket, title in (("only_a", "steps only in A"), ("only_b", "steps only in B")):
            items = getattr(self, bucket)
            if items:
                lines += ["", f"{title} ({self.counts[bucket]}):"] + [f"  {visible(s, 200)}" for s in items]
                if self.counts[bucket] > len(items):
                    lines.append(f"  ... and {self.counts[bucket] - len(items)} more")
        if self.changed:
            lines += ["", f"steps that differ ({self.counts['changed']}):"]
            for x, y in self.changed:
                lines += [f"  A {visible(x, 200)}", f"  B {visible(y, 200)}"]
        if self.grads:
            width = max(len(visible(n)) for n, _, _ in self.grads[:self.limit])
            lines += ["", f"final grads that differ ({len(self.grads)}):"]
            lines += [f"  {visible(n):<{width}}  A {num(x)}  B {num(y)}" for n, x, y in self.grads[:self.limit]]
        for label, found in (("A", self.findings_only_a), ("B", self.findings_only_b)):
            if found:
                lines += ["", f"findings only in {label} ({len(found)}):"]
                lines += [f"  {f.severity} {f.finding}: {visible(f.message, 300)}" for f in found[:self.limit]]
        lines += ["", "the traces differ" if not self.same else "the traces match"]
        return "\n".join(lines) + "\n"

    def diagram(self, max_nodes: int = 300) -> graphviz.Digraph:
        """The compared (or last) pass of both traces as one graph, matched nodes merged:
        red where the final grads differ, orange or blue where a node is in one trace only."""
        a, b = self.a, self.b
        in_a, in_b = set(a.last_pass), set(b.last_pass)
        keys = list(dict.fromkeys(a.last_pass + b.last_pass))
        differing = {k for k in keys if k in a.grads and k in b.grads and not _same(a.grads[k], b.grads[k])}
        if len(keys) > max_nodes:
            first = [k for k in keys if k in differing or (k in in_a) != (k in in_b) or k in (a.root, b.root)]
            keys = list(dict.fromkeys(first + keys))[:max_nodes]
        g = graphviz.Digraph("diff", graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "11",
                                                 "labelloc": "t", "labeljust": "l"},
                             node_attr={"shape": "plaintext", "fontname": "Helvetica", "fontsize": "11"},
                             edge_attr={"color": "#888888", "arrowsize": "0.6"})
        ids = {k: f"n{i}" for i, k in enumerate(keys)}
        for k in keys:
            name = a.names.get(k) or b.names.get(k) or "?"
            ga = _cell("A", a.grads.get(k)) if k in in_a else "not in A"
            gb = _cell("B", b.grads.get(k)) if k in in_b else "not in B"
            colour = (DIFFERS if k in differing else ONLY_A if k not in in_b else
                      ONLY_B if k not in in_a else "white")
            border = "#d62728" if k in differing else "#333333"
            g.node(ids[k], f'<<table border="{2 if colour != "white" else 1}" cellborder="0" '
                   f'cellspacing="0" cellpadding="3" color="{border}" bgcolor="{colour}"><tr><td><b>'
                   f"{_html(name)}</b></td></tr><tr><td>{_html(ga)}</td></tr><tr><td>{_html(gb)}"
                   "</td></tr></table>>", id=ids[k])
        for k in keys:
            for parent in dict.fromkeys(a.parents.get(k) or b.parents.get(k) or ()):
                if parent in ids:
                    g.edge(ids[parent], ids[k])
        legend = (f"diff of {_html(a.path or 'A')} (A) and {_html(b.path or 'B')} (B): red, final grads "
                  f"differ; orange, only in A's pass; blue, only in B's pass")
        dropped = len(set(a.last_pass) | set(b.last_pass)) - len(keys)
        g.attr(label=f"<{legend}{f'; {dropped} more nodes not drawn' if dropped else ''}>")
        return g


def _not_end(step) -> bool:
    return step is not END


def _cell(side: str, grad: Optional[float]) -> str:
    return f"{side} grad {num(grad)}" if grad is not None else f"{side} grad ?"


def _html(text: object) -> str:
    """Text for an HTML-like Graphviz label: escaped, backslashes doubled.

    >>> _html("<script>")
    '&lt;script&gt;'
    """
    return html.escape(visible(text, 60), quote=True).replace("\\", "\\\\")


def diff_traces(a: Source, b: Source, *, pass_no: Union[None, int, Tuple[int, int]] = None,
                limit: int = 20) -> TraceDiff:
    """Compare trace ``a`` with trace ``b`` (paths to ``trace.jsonl`` files, or event lists).

    Args:
        pass_no: None compares whole traces; ``n`` compares pass n of each; ``(n, m)``
            compares pass n of A with pass m of B (two passes of one run: give one file twice).
        limit: list at most this many steps of each sort (all are counted).
    """
    pa, pb = pass_no if isinstance(pass_no, tuple) else (pass_no, pass_no)
    canon: Dict[tuple, int] = {}
    side_a, side_b = _Side("A", a, canon, pa), _Side("B", b, canon, pb)
    result = TraceDiff(side_a, side_b, limit)
    steps_a, steps_b = side_a.steps(), side_b.steps()
    while True:  # in step while the traces agree; buffer only the rest of a piece that differs
        x, y = next(steps_a, None), next(steps_b, None)
        if x is None and y is None:
            break
        if x is END and y is END or (x is not None and y is not None and x is not END
                                     and y is not END and x[0] == y[0]):
            continue
        rest_a = [] if x is None or x is END else [x, *itertools.takewhile(_not_end, steps_a)]
        rest_b = [] if y is None or y is END else [y, *itertools.takewhile(_not_end, steps_b)]
        result.compare(rest_a, rest_b)
    for missing, side in ((pa, side_a), (pb, side_b)):
        if missing is not None and side.root is None:
            raise ValueError(f"pass {missing} is not in trace {side.label} ({side.path or 'events'}, "
                             f"{side.passes} passes)")
    result.finish()
    return result

"""A pass drawn one box per module: a model reads as its layers, however many nodes each makes.

Every node a module made (its ops and its parameters; PyTorch traces carry ``module``)
folds into one box named after the module (``model.0``), listing the ops it ran, the
firing numbers they got and each parameter's gradient before and after the pass, a
stale start marked as in the full picture. Nodes made outside any module (the loss)
are drawn as in the full picture, and an edge joins two boxes when a node of one was
computed from a node of the other.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Union

import graphviz

from .builder import Builder
from .pass_cache import cache_for
from .palette import FIRED, INK, MUTED, SEVERITY, STALE
from .picture import Diagram
from .quoting import html_text, tooltip
from ...core.model import PassInfo, TraceModel
from ...core.text import number, plural

__all__ = ["MODULE_VIEWS", "FOLD_FROM", "folds", "FoldedBuilder"]

MODULE_VIEWS = ("auto", "box", "fold", "none")  # how nodes made in modules are drawn
FOLD_FROM = 40  # "auto" folds a pass with more nodes made in modules than this
MAX_OPS_LISTED = 6


def folds(model: TraceModel, p: PassInfo, modules: Union[bool, str]) -> bool:
    """Does ``modules`` (one of :data:`MODULE_VIEWS`, or True/False for box/none) fold this pass?

    >>> from autodiff_trace.core.model import TraceModel
    >>> folds(TraceModel(), None, "box")
    False
    """
    if modules not in (True, False, *MODULE_VIEWS):
        raise ValueError(f"modules={modules!r} is not a way to draw modules; use {', '.join(MODULE_VIEWS)}")
    if modules in ("fold", "auto") and not model.nodes.has_modules:
        return False  # no node was made in a module
    if modules == "fold":
        return any(model.node(n).module for n in p.reachable)
    if modules == "auto":
        return sum(1 for n in p.reachable if model.node(n).module) > FOLD_FROM
    return False


class FoldedBuilder(Builder):
    """The pass with each module's nodes folded into one box."""

    def build(self) -> Diagram:
        p, model = self.p, self.model
        cache = cache_for(model, p)
        nodes = cache.nodes
        self._gather(set(nodes), cache)
        diagnostics = self._collect_findings(set(nodes))
        members: Dict[str, List[int]] = {}
        for node in nodes:
            module = model.node(node).module
            if module and node in p.reachable:
                members.setdefault(module, []).append(node)
        box_of = {node: f"m{i}" for i, part in enumerate(members, 1) for node in members[part]}
        self.shown = {n for n in nodes if n not in box_of}
        g = self._digraph(f"backward pass {p.pass_no}, one box per module", nodesep="0.25", ranksep="0.4")
        for i, (part, inside) in enumerate(members.items(), 1):
            self._module_box(g, f"m{i}", part, inside)
        for node in nodes:
            if node not in box_of:
                self._node(g, node)
        self._folded_edges(g, nodes, box_of)
        drawn = len(self.shown) + len(members)
        self.keys["white"] = (f"a box: one module, its {plural(len(box_of), 'node')} folded into "
                              f"{plural(len(members), 'box')} (the ops it ran, their firing "
                              f"numbers, its parameters' grads before → after)")
        g.attr(label=self._legend(diagnostics, drawn, len(nodes), {}))
        return Diagram(g, p.pass_no, drawn, len(nodes))

    def _module_box(self, g: graphviz.Digraph, box: str, part: str, inside: List[int]) -> None:
        """One table: the module, the ops it ran with their firing numbers, its parameters' grads."""
        model = self.model
        ops: Dict[str, int] = {}
        params, fires = [], []
        for node in inside:
            info = model.node(node)
            if info.parents or info.op not in ("", "const"):
                ops[info.op] = ops.get(info.op, 0) + 1
            else:
                params.append(node)
            fires += self.fire_numbers.get(node, [])
        listed = ", ".join(f"{op}" + (f" ×{n}" if n > 1 else "") for op, n in list(ops.items())[:MAX_OPS_LISTED])
        if len(ops) > MAX_OPS_LISTED:
            listed += f", {plural(len(ops) - MAX_OPS_LISTED, 'more op')}"
        fired = f"<b>#{min(fires)}</b>" if len(fires) == 1 else (f"<b>#{min(fires)}–{max(fires)}</b>" if fires else "")
        rows = [f'<tr><td bgcolor="{FIRED if fires else "white"}">{fired or " "}</td>'
                f'<td align="left"><b>{html_text(part, 60)}</b></td></tr>',
                f'<tr><td colspan="2" align="left"><font color="{MUTED}">'
                f'{html_text(listed or "no op", 80)} · {plural(len(inside), "node")}</font></td></tr>']
        tips = [f"module {part}: {plural(len(inside), 'node')} folded"]
        for node in params:
            start, origin = self._grad_at_start(node)
            writes = self.writes_of.get(node, [])
            after = writes[-1].grad_after if writes else start
            name = model.name(node)
            short = name[len(part) + 1:] if name.startswith(part + ".") else name
            stale = start != 0 and start == start
            fill = f' bgcolor="{STALE}"' if stale else ""
            if stale:
                self.keys[STALE] = "stale: grad was not zero when this pass began"
            text = f"{html_text(short, 60)}  grad " + (
                f"{html_text(number(start))} → <b>{html_text(number(after))}</b>" if stale or writes
                else html_text(number(after)))
            rows.append(f'<tr><td colspan="2" align="left"{fill}>{text}</td></tr>')
            tips.append(f"{name}: grad {start!r} before the pass, {after!r} after"
                        + (f" (stale, from pass {origin})" if stale and origin else ""))
        found = list({(d.finding, d.message): d for node in inside for d in self.findings.get(node, [])}.values())
        for d in found:
            tips += [f"[{d.severity}] {d.finding}: {d.message}"]
        severities = [d.severity for d in found if d.severity in SEVERITY]
        color = SEVERITY[min(severities, key=list(SEVERITY).index)] if severities else INK
        g.node(box, f'<<table border="{3 if found else 1}" cellborder="0" cellspacing="0" cellpadding="3"'
               f' color="{color}" bgcolor="white">{"".join(rows)}</table>>', id=box,
               tooltip=tooltip(*tips[:40]))

    def _folded_edges(self, g: graphviz.Digraph, nodes: List[int], box_of: Dict[int, str]) -> None:
        """parent -> child, a box standing for every node folded in it; one edge per pair."""
        drawn = set()
        for child in nodes:
            info = self.model.node(child)
            head: Optional[str] = box_of.get(child)
            if head is None:
                if not self._has_op(info):
                    continue
                g.edge(f"o{child}", f"v{child}", arrowsize="0.5")
                head = f"o{child}"
            for parent in info.parents:
                tail = box_of.get(parent, f"v{parent}")
                if parent not in box_of and parent not in self.shown:
                    continue
                if tail == head or (tail, head) in drawn:
                    continue
                drawn.add((tail, head))
                g.edge(tail, head)

"""The full picture of one backward pass, node by node (see :func:`.diagram.diagram`).

Each value node is a small table (firing number, name, data, grad); an op node sits
between parents and child, micrograd-style. Every gradient write is a label on the
edge it flowed back along, a grad that was non-zero before the pass is drawn as
stale, nodes named by findings are outlined, and a node that fired although the
output cannot reach it is drawn in a box of its own.
"""

from __future__ import annotations

import bisect
from itertools import compress
from typing import Dict, List, Optional, Tuple

import graphviz

from .palette import FIRED, FLOW, FONT, INK, MUTED, NOW, OUTSIDE, SEVERITY, STALE
from .modules import draw_by_module
from .pass_cache import PassCache, PassMembers, cache_for, state
from .selection import Selects
from ..pass_reads import last_writes_before
from .picture import Diagram
from .quoting import html_text, plain_text, tooltip
from ...core.model import NodeInfo, PassInfo, TraceModel
from ...core.text import number, plural, signed

__all__ = ["Builder"]

SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "neg": "-x", "pow": "^"}  # ASCII:
# graphviz-pure sizes text from ASCII font metrics
MAX_LEGEND_FINDINGS = 8


class Builder(Selects):
    """Builds the Digraph of one pass, or of the pass as it stood after ``step`` firings.

    Frames keep the final picture's text in place (future labels and firing numbers are
    drawn invisible), so the layout barely moves from one frame to the next.
    """

    def __init__(self, model: TraceModel, p: PassInfo, max_nodes: int, rankdir: str,
                 step: Optional[int]) -> None:
        self.model, self.p, self.max_nodes, self.rankdir, self.step = model, p, max_nodes, rankdir, step
        self.seen: set = set()  # seqs of the drawn nodes' writes made by this step
        self.seen_count = 0  # writes of the whole pass made by this step
        self.current: set = set()  # seqs of the drawn nodes' writes made in this step
        self.writes_of: Dict[int, List] = {}  # drawn node -> its writes in the pass
        self.drawn_writes: List = []  # the writes into drawn nodes, in the pass's order
        self.before: Dict[int, float] = {}  # drawn node -> its grad when the pass began
        self.earlier: Dict[int, tuple] = {}  # drawn node -> (pass, last write) of the latest earlier pass that wrote it
        self.fire_numbers: Dict[int, List[int]] = {}
        self.now = p.fired[step - 1] if step and step <= len(p.fired) else None
        self.findings: Dict[int, list] = {}
        self.keys: Dict[str, str] = {}  # legend rows (colour -> meaning) for styles that appear
        self.by_module = True  # nodes boxed by the module that made them, when they have one

    def _gather(self, drawn, cache: "PassCache") -> None:
        """Read the pass for the nodes in ``drawn`` only: their writes (seen by this step or
        not), their grads when it began, their firing numbers; and count the writes made."""
        p, step = self.p, self.step
        writes = p.writes
        key = frozenset(drawn)
        rows = cache.rows.get(key)
        if rows is None:
            rows = cache.rows[key] = list(compress(range(len(writes)), map(key.__contains__, p.written_targets)))
        steps = cache.write_steps(p) if step is not None else None
        for row in rows:
            w = writes[row]
            self.writes_of.setdefault(w.target, []).append(w)
            self.drawn_writes.append(w)
            if step is None or steps[row] <= step:
                self.seen.add(w.seq)
            if step is not None and steps[row] == step:
                self.current.add(w.seq)
        if not cache.ordered(writes):  # seqs out of order may repeat: count each once, as a set would
            self.seen_count = len({writes.seq(row) for row in range(len(writes))
                                   if step is None or steps[row] <= step})
        else:  # steps never decrease along the writes
            self.seen_count = len(writes) if step is None else bisect.bisect_right(steps, step)
        self.before = p.grads_before_of(drawn)
        self.earlier = last_writes_before(self.model, p, drawn)
        for fire_number, node in compress(enumerate(p.fired, 1), map(key.__contains__, p.fired)):
            self.fire_numbers.setdefault(node, []).append(fire_number)

    def _fired_yet(self, number: int) -> bool:
        return self.step is None or number <= self.step

    # -- the picture ------------------------------------------------------------------
    def build(self) -> Diagram:
        p, model = self.p, self.model
        cache = cache_for(model, p)
        nodes = cache.nodes
        diagnostics = self._collect_findings(PassMembers(p, nodes))
        chosen = (self.max_nodes, tuple(self.findings))
        if chosen not in cache.selections:
            cache.selections[chosen] = self._select(nodes, None)
        shown, groups = cache.selections[chosen]
        self.shown = set(shown)
        self._gather(self.shown, cache)
        cache.state = state(model, p)  # placeholders the selection made for unknown parents
        g = self._digraph(f"backward pass {p.pass_no}", nodesep="0.2", ranksep="0.35")
        inside = [n for n in shown if n in p.reachable]
        if not (self.by_module and draw_by_module(g, model, inside, self._node)):
            for node in inside:
                self._node(g, node)
        outside = [n for n in shown if n not in p.reachable]
        if outside:
            with g.subgraph(name="cluster_outside", graph_attr={
                    "label": f"<<b>outside the graph of {html_text(self._name(p.root))}</b>>",
                    "style": "dashed", "color": SEVERITY["error"], "fontcolor": SEVERITY["error"],
                    "tooltip": "the output cannot reach these nodes, yet their backward function "
                               "ran or their grad was written in this pass"}) as box:
                for node in outside:
                    self._node(box, node)
            self.keys[OUTSIDE] = ("fired outside: its backward function ran although the output "
                                  "cannot reach it")
        self._edges(g, shown)
        self._groups(g, groups)
        g.attr(label=self._legend(diagnostics, len(shown), len(nodes), groups))
        return Diagram(g, p.pass_no, len(shown), len(nodes))

    def _collect_findings(self, wanted: set) -> list:
        """The pass's findings (and those stamped with no known pass about its nodes), each
        noted under every node it names."""
        model, p = self.model, self.p
        diagnostics = list(p.diagnostics) + [
            d for d in model.diagnostics if model.pass_(d.pass_no) is None and any(n in wanted for n in d.nodes)]
        for d in diagnostics:
            for node in d.nodes:
                self.findings.setdefault(node, []).append(d)
        return diagnostics

    def _digraph(self, tooltip: str, **spacing: str) -> graphviz.Digraph:
        """The pass's empty picture in the house style."""
        return graphviz.Digraph(f"pass_{self.p.pass_no}", graph_attr={
            "rankdir": self.rankdir, "fontname": FONT, "fontsize": "11", "labelloc": "t", "labeljust": "l",
            "bgcolor": "white", "tooltip": tooltip, **spacing},
            node_attr={"fontname": FONT, "fontsize": "11", "fontcolor": INK, "shape": "plaintext",
                       "margin": "0"},
            edge_attr={"fontname": FONT, "fontsize": "10", "color": MUTED, "arrowsize": "0.6",
                       "fontcolor": FLOW})

    def _grad_at_start(self, node: int) -> Tuple[float, Optional[int]]:
        """The grad ``node`` held when the pass began, and the earlier pass that left it."""
        p, model = self.p, self.model
        before = self.before.get(node)
        earlier = self.earlier.get(node)  # the latest earlier pass that wrote it, and its last write
        if earlier is not None:
            pass_no, w = earlier
            start = p.writes.seq(0) if p.writes else float("inf")
            if not any(node in z.nodes and w.seq < z.seq < start for z in model.zeroed):
                return (w.grad_after if before is None else before), pass_no
            # zeroed since: whatever it holds was not left by that pass
        return (float("nan") if before is None else before), None

    def _name(self, node: int) -> str:
        return self.model.name(node)  # "z #3" when two nodes share a name

    def _node(self, g: graphviz.Digraph, node: int) -> None:
        """A value node: a table of firing numbers, name, data and grad, then its op node."""
        info = self.model.node(node)
        start, origin = self._grad_at_start(node)
        final = self.writes_of.get(node, [])
        writes = [w for w in final if w.seq in self.seen]
        grad = writes[-1].grad_after if writes else start
        tips = self._tips(node, info, grad)
        if info.op == "const":  # a wrapped number: small, no record
            g.node(f"v{node}", plain_text(number(info.value), 12), tooltip=tooltip(
                   f"constant {info.value!r} (a wrapped number), grad {grad!r}", *tips[1:]),
                   shape="box", id=f"v{node}", style="rounded,filled", fillcolor="#eeeeee",
                   color="#bbbbbb", fontsize="9", width="0.2", height="0.2", margin="0.05,0.02",
                   fontcolor="#555555")
            return
        cells = self._cells(node, info, grad)
        rows = [f"<tr>{''.join(cells)}</tr>", *self._notes(node, info, start, origin, final,
                                                           writes, len(cells), tips)]
        border, width = self._border(node)
        g.node(f"v{node}", f'<<table border="{width}" cellborder="1" cellspacing="0" cellpadding="3"'
               f' color="{border}" bgcolor="white">{"".join(rows)}</table>>', id=f"v{node}",
               tooltip=tooltip(*tips))
        if self._has_op(info):
            self._op_node(g, node, info)

    def _tips(self, node: int, info: NodeInfo, grad: float) -> List[str]:
        """The node's tooltip lines: what it is, where it was made, what was found about it."""
        tips = [f"{self._name(node)}: {info.op or 'leaf'}, data {info.value!r}, grad {grad!r}",
                f"made at {info.site}" if info.site else ""]
        for d in self.findings.get(node, []):
            tips += [f"[{d.severity}] {d.finding}: {d.message}", d.hint]
        return tips

    def _border(self, node: int) -> Tuple[str, int]:
        """The table's border: the firing node's, else its worst finding's, else plain ink."""
        if node == self.now:
            return NOW, 3
        if self.findings.get(node):
            rank = [d.severity for d in self.findings[node] if d.severity in SEVERITY]
            return SEVERITY[min(rank, key=list(SEVERITY).index) if rank else "info"], 3
        return INK, 1

    def _cells(self, node: int, info: NodeInfo, grad: float) -> List[str]:
        """The first row: firing numbers (invisible until they happen), name, data, grad."""
        cells = []
        fires = self.fire_numbers.get(node)
        if fires:
            happened = [n for n in fires if self._fired_yet(n)]
            text = f"<b>#{','.join(map(str, fires))}</b>"
            color = (OUTSIDE if node not in self.p.reachable else FIRED) if happened else "white"
            cells.append(f'<td bgcolor="{color}">' + (text if happened else
                         f'<font color="white">{text}</font>') + "</td>")
        bold = ("<b>", "</b>") if node == self.p.root else ("", "")
        return cells + [f"<td>{bold[0]}{html_text(self._name(node))}{bold[1]}</td>",
                        f"<td>data {html_text(number(info.value))}</td>",
                        f"<td>grad <b>{html_text(number(grad))}</b></td>"]

    def _notes(self, node: int, info: NodeInfo, start: float, origin: Optional[int], final: list,
               writes: list, span: int, tips: List[str]) -> List[str]:
        """Rows under the first: the stale start, how the grad was summed, an unknown origin."""
        rows = []
        stale = start != 0 and start == start
        if stale:
            since = f"from pass {origin}" if origin else "before this pass"
            rows.append(f'<tr><td colspan="{span}" bgcolor="{STALE}">stale '
                        f"{html_text(number(start))} {since}</td></tr>")
            self.keys[STALE] = "stale: grad was not zero when this pass began"
            tips.append(f"grad was {start!r} when this pass began ({since})")
        final_ledger = self._ledger(node, final, start if stale else 0.0)
        if final_ledger:  # the final picture has one; a step's picture shows the writes made by then
            ledger = (final_ledger if len(writes) == len(final) else
                      self._ledger(node, writes, start if stale else 0.0)) or " "
            rows.append(f'<tr><td colspan="{span}">{html_text(ledger, None)}</td></tr>')
        if info.op == "?":
            rows.append(f'<tr><td colspan="{span}"><font color="{MUTED}">made before tracing began'
                        "</font></td></tr>")
        return rows

    def _op_node(self, g: graphviz.Digraph, node: int, info: NodeInfo) -> None:
        """The small circle between a node's parents and the node: its op's symbol."""
        symbol = SYMBOLS.get(info.op, info.op)
        g.node(f"o{node}", plain_text(symbol, 8) or "?", shape="circle" if len(symbol) <= 2 else
               "ellipse", style="filled", fillcolor="#f2f2f2", color="#999999", fontsize="10",
               width="0.3", height="0.3", margin="0.02", id=f"o{node}",
               tooltip=tooltip(f"{info.op}: makes {self._name(node)}"))

    @staticmethod
    def _has_op(info) -> bool:
        return bool(info.parents) and info.op not in ("", "const", "?")

    def _ledger(self, node: int, writes: list, stale: float) -> str:
        """How the grad was summed, ``20 = 2 stale + 9 + 9``; empty when one write tells it."""
        seeded = [w for w in writes if w.fired_by is None and node == self.p.root]
        odd = any((w.replaced and w.grad_before != 0) or (w.fired_by is None and node != self.p.root)
                  for w in writes)
        if not ((stale and writes) or odd or len(writes) - len(seeded) > 1):
            return ""
        parts = [f"{number(stale)} stale"] if stale else []
        for w in writes:
            amount = number(w.contribution) if w.replaced else signed(w.contribution)
            if w.fired_by is None:
                amount += " seed" if node == self.p.root else " (set outside a backward function)"
            if w.replaced:
                parts = [f"{amount} (assigned" + (f", {number(w.grad_before)} lost)" if
                                                 w.grad_before else ")")]
            else:
                parts.append(amount)
        text = " ".join(parts).replace(" +", " + ").replace(" -", " - ")
        return f"{number(writes[-1].grad_after)} = {text.lstrip('+')}"

    def _edges(self, g: graphviz.Digraph, shown: List[int]) -> None:
        """Forward edges parent -> op -> child, labelled with what flowed back along them."""
        by_pair: Dict[Tuple[int, int], List] = {}  # the drawn nodes' writes: the only ones drawn
        for w in self.drawn_writes:
            by_pair.setdefault((w.fired_by, w.target), []).append(w)
        for child in shown:
            info = self.model.node(child)
            if not self._has_op(info):
                continue
            g.edge(f"o{child}", f"v{child}", arrowsize="0.5")
            slots = [p for p in info.parents if p in self.shown]
            for index, parent in enumerate(slots):  # x * x: each slot gets its own writes
                share = by_pair.get((child, parent), [])[slots[:index].count(parent)::slots.count(parent)]
                self._flow_edge(g, f"v{parent}", f"o{child}", share, parent)
            for parent in slots:
                by_pair.pop((child, parent), None)
        for (source, target), writes in by_pair.items():  # writes along no edge of the graph
            if source in self.shown and target in self.shown:
                self._flow_edge(g, f"v{source}", f"v{target}", writes, target, stray=True)

    def _flow_edge(self, g, tail: str, head: str, writes: list, target: int, stray=False) -> None:
        seen = [w for w in writes if w.seq in self.seen]
        label = "\\n".join(("=" + number(w.contribution)) if w.replaced else signed(w.contribution)
                           for w in (seen or writes))
        attrs = {"label": label} if label else {}
        if writes and not seen:
            attrs["fontcolor"] = "transparent"  # a frame before these writes: keep the space
        elif self.current.intersection(w.seq for w in writes):
            attrs.update(fontcolor=NOW, color=NOW, penwidth="2")
        elif self.model.node(target).op == "const":
            attrs["fontcolor"] = MUTED
        if seen:
            attrs["tooltip"] = tooltip(*(f"{number(w.contribution)} into {self._name(w.target)} from "
                                      f"{self._name(w.fired_by)}" for w in seen))
        if stray:  # drawn from the writer back to the node it wrote
            attrs.update(style="dashed", color=SEVERITY["error"], constraint="false", dir="back")
            self.keys[SEVERITY["error"]] = "red dashed edge: a grad write into a node that is not a parent"
            tail, head = head, tail
        g.edge(tail, head, **attrs)

    def _groups(self, g: graphviz.Digraph, groups: Dict[int, List[int]]) -> None:
        for owner, members in groups.items():
            mix = ", ".join(f"{n} {op}" for op, n in members.mix())
            g.node(f"g{owner}", graphviz.nohtml(plain_text(plural(len(members), "node") + " folded") + "\\n" + plain_text(
                   f"({mix})", 60)), shape="box", style="rounded,dashed", color=MUTED, id=f"g{owner}",
                   fontcolor="#555555", margin="0.1,0.05",
                   tooltip=tooltip(*(self.model.name(m) for m in members.sample)))
            if owner >= 0:
                head = f"o{owner}" if self._has_op(self.model.node(owner)) else f"v{owner}"
                g.edge(f"g{owner}", head, style="dashed")

    def _legend(self, diagnostics, shown: int, total: int, groups) -> str:
        p = self.p
        fired = len(p.fired) if self.step is None else min(self.step, len(p.fired))
        when = f" after {fired} of {len(p.fired)} firings" if self.step is not None else ""
        head = (f"backward pass {p.pass_no} from <b>{html_text(self._name(p.root))}</b>{when}: "
                f"{plural(fired, 'backward function')} fired, {plural(self.seen_count, 'grad write')}")
        if p.seed != 1:
            head += f", seed {html_text(number(p.seed))}"
        rows = [(FIRED, "#n", "the order in which the node's backward function fired"),
                ("white", f'<font color="{FLOW}">+g</font>', "on an edge: the gradient the "
                 "consumer's backward function added to that input")]
        rows += [(color, "", html_text(text, None)) for color, text in self.keys.items()]
        if self.now is not None:
            rows.append((NOW, "", "blue: the backward function that fired in this step and its writes"))
        for d in diagnostics[:MAX_LEGEND_FINDINGS]:
            rows.append((SEVERITY.get(d.severity, SEVERITY["info"]), "", f"<b>{html_text(d.finding, 40)}"
                         f"</b> ({html_text(d.severity, 10)}): {html_text(d.message, 140)}"))
        if len(diagnostics) > MAX_LEGEND_FINDINGS:
            rows.append(("white", "", f"and {len(diagnostics) - MAX_LEGEND_FINDINGS} more findings"
                                      f" (hover the outlined nodes)"))
        if groups:
            rows.append(("white", "...", f"<b>showing {shown:,} of {total:,} nodes</b>: the other "
                         f"{total - shown:,} are folded into {plural(len(groups), 'dashed group')} "
                         f"(max_nodes={self.max_nodes})"))
        cells = "".join(f'<tr><td bgcolor="{c}">{k or " "}</td><td align="left">{t}</td></tr>'
                        for c, k, t in rows)
        cells = f'<tr><td colspan="2" align="left">{head}</td></tr>' + cells
        return f'<<table border="0" cellborder="0" cellspacing="1" cellpadding="2">{cells}</table>>'

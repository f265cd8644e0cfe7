"""The picture of a trace diff: the compared (or last) pass of both traces as one graph,
matched nodes merged, coloured where the traces disagree.

It reads a :class:`~autodiff_trace.replay.tracediff.TraceDiff` (its two sides' node keys,
names, parents and final grads, and ``differing``) and returns a :class:`Diagram`.
"""

from __future__ import annotations

from typing import Optional

import graphviz

from .palette import BLUE, FONT, INK, MUTED, ORANGE, RED, SEVERITY
from .picture import Diagram
from .quoting import html_text
from ...core.text import number

__all__ = ["diff_diagram", "DIFFERS", "ONLY_A", "ONLY_B"]

DIFFERS, ONLY_A, ONLY_B = RED, ORANGE, BLUE  # final grads differ; node in one trace only


def _cell(side: str, grad: Optional[float]) -> str:
    """``A grad 20``.

    >>> _cell("A", 20.0), _cell("B", None)
    ('A grad 20', 'B grad ?')
    """
    return f"{side} grad {number(grad)}"


def diff_diagram(result, max_nodes: int = 300) -> Diagram:
    """Draw ``result`` (a TraceDiff): red where the final grads differ, orange or blue where
    a node is in A's or B's pass only; past ``max_nodes`` those come first."""
    a, b = result.a, result.b
    in_a, in_b = set(a.last_pass), set(b.last_pass)
    every = list(dict.fromkeys(a.last_pass + b.last_pass))
    differing = result.differing.intersection(every)
    keys = every
    if len(keys) > max_nodes:
        first = [k for k in keys if k in differing or (k in in_a) != (k in in_b) or k in (a.root, b.root)]
        keys = list(dict.fromkeys(first + keys))[:max_nodes]
    g = graphviz.Digraph("diff", graph_attr={"rankdir": "LR", "fontname": FONT, "fontsize": "11",
                                             "labelloc": "t", "labeljust": "l"},
                         node_attr={"shape": "plaintext", "fontname": FONT, "fontsize": "11"},
                         edge_attr={"color": MUTED, "arrowsize": "0.6"})
    ids = {k: f"n{i}" for i, k in enumerate(keys)}
    for k in keys:
        name = a.names.get(k) or b.names.get(k) or "?"
        ga = _cell("A", a.grads.get(k)) if k in in_a else "not in A"
        gb = _cell("B", b.grads.get(k)) if k in in_b else "not in B"
        colour = (DIFFERS if k in differing else ONLY_A if k not in in_b else
                  ONLY_B if k not in in_a else "white")
        border = SEVERITY["error"] if k in differing else INK
        g.node(ids[k], f'<<table border="{2 if colour != "white" else 1}" cellborder="0" '
               f'cellspacing="0" cellpadding="3" color="{border}" bgcolor="{colour}"><tr><td><b>'
               f"{html_text(name, 60)}</b></td></tr><tr><td>{html_text(ga, 60)}</td></tr>"
               f"<tr><td>{html_text(gb, 60)}</td></tr></table>>", id=ids[k])
    for k in keys:
        for parent in dict.fromkeys(a.parents.get(k) or b.parents.get(k) or ()):
            if parent in ids:
                g.edge(ids[parent], ids[k])
    legend = (f"diff of {html_text(a.path or 'A', 60)} (A) and {html_text(b.path or 'B', 60)} (B): "
              f"red, final grads differ; orange, only in A's pass; blue, only in B's pass")
    dropped = len(every) - len(keys)
    g.attr(label=f"<{legend}{f'; {dropped} more nodes not drawn' if dropped else ''}>")
    return Diagram(g, None, len(keys), len(every))

"""Nodes grouped by the model part that made them: a box per module, nested as the modules are.

A node's ``module`` (``model.0``, ``net.encoder``; PyTorch traces carry it) puts it in a
Graphviz cluster of that name, inside the clusters of the names before each dot
(``model`` holds ``model.0``), so a two-layer MLP reads as its two layers. Nodes with no
module (every scalar engine's) are drawn as before, outside any box.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

import graphviz

from .palette import MUTED
from .quoting import html_text, tooltip
from ...core.model import TraceModel
from ...core.text import plural

__all__ = ["module_parts", "draw_by_module"]


def module_parts(path: str) -> List[str]:
    """The module and every module around it, outermost first.

    >>> module_parts("net.encoder.0")
    ['net', 'net.encoder', 'net.encoder.0']
    """
    pieces = path.split(".")
    return [".".join(pieces[: i + 1]) for i in range(len(pieces))]


def draw_by_module(g: graphviz.Digraph, model: TraceModel, nodes: List[int],
                   draw: Callable[[graphviz.Digraph, int], None]) -> bool:
    """Draw ``nodes`` with ``draw(graph, node)``, each inside the boxes of its module.

    Returns False, drawing nothing, when no node has a module: the caller draws them
    plainly, so a picture without modules is exactly what it was.
    """
    module_of: Dict[int, Optional[str]] = {n: model.node(n).module for n in nodes}
    if not any(module_of.values()):
        return False
    members: Dict[str, List[int]] = {}
    inner: Dict[Optional[str], List[str]] = {None: []}
    for node in nodes:
        path = module_of[node]
        if not path:
            continue
        outer = None
        for part in module_parts(path):
            if part not in members:
                members[part] = []
                inner.setdefault(outer, []).append(part)
                inner[part] = []
            outer = part
        members[path].append(node)
    for node in nodes:
        if not module_of[node]:
            draw(g, node)
    numbers = {part: i for i, part in enumerate(members, 1)}

    def box(parent: graphviz.Digraph, part: str) -> None:
        count = _count(part, members, inner)
        with parent.subgraph(name=f"cluster_module_{numbers[part]}", graph_attr={
                "label": f"<<b>{html_text(part, 60)}</b>>", "style": "rounded", "color": MUTED,
                "fontcolor": MUTED, "labeljust": "l",
                "tooltip": tooltip(f"module {part}: {plural(count, 'node')} made in it")}) as sub:
            for node in members[part]:
                draw(sub, node)
            for child in inner[part]:
                box(sub, child)

    for part in inner[None]:
        box(g, part)
    return True


def _count(part: str, members: Dict[str, List[int]], inner: Dict[Optional[str], List[str]]) -> int:
    """The nodes in a module and in every module inside it."""
    stack, total = [part], 0
    while stack:
        current = stack.pop()
        total += len(members[current])
        stack.extend(inner[current])
    return total

"""Reading DOT source back in tests: nodes, edges, clusters and the cells of HTML-like labels."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["parse_dot", "cells", "flows"]

_ATTR = re.compile(r'\s*([A-Za-z_]\w*)=("(?:\\.|[^"\\])*"|[^\s\]<"]+|<)')


def _attrs(text: str) -> dict:
    """Parse a DOT attribute list body (``a=1 b="x y" label=<<b>..</b>>``)."""
    out, i = {}, 0
    while True:
        m = _ATTR.match(text, i)
        if not m:
            return out
        key, value, i = m.group(1), m.group(2), m.end()
        if value == "<":  # an HTML string: up to the matching '>'
            depth, j = 1, i
            while depth:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
            value, i = "<" + text[i:j], j
        elif value.startswith('"'):
            value = value[1:-1]
        out[key] = value


def parse_dot(source: str):
    """Nodes (id -> attributes), edges [(tail, head, attributes)], clusters (name -> node ids)."""
    nodes, edges, clusters, cluster = {}, [], {}, None
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("subgraph cluster"):
            cluster = line.split()[1]
            clusters[cluster] = []
        elif line == "}":
            cluster = None
        elif m := re.match(r"(\w+) -> (\w+)(?: \[(.*)\])?$", line):
            edges.append((m.group(1), m.group(2), _attrs(m.group(3) or "")))
        elif m := re.match(r"(\w+) \[(.*)\]$", line):
            if m.group(1) not in ("graph", "node", "edge"):
                nodes[m.group(1)] = _attrs(m.group(2))
                if cluster:
                    clusters[cluster].append(m.group(1))
    return nodes, edges, clusters


def cells(label: str) -> list:
    """The text of every cell of an HTML-like label, in order."""
    table = ET.fromstring(label[1:-1])
    return ["".join(td.itertext()) for td in table.iter("td")]


def flows(edges, tail: str, head: str) -> list:
    """The contribution labels on the edges from ``tail`` to ``head``."""
    return [a.get("label", "") for t, h, a in edges if (t, h) == (tail, head)]

"""User text made safe inside Graphviz labels and tooltips: the one home of that escaping.

Every piece of user text passes :func:`~autodiff_trace.core.text.visible` first (control
characters as escapes, long text cut), then the escaping its place in DOT needs.
"""

from __future__ import annotations

import html
from typing import Optional

import graphviz

from ...core.text import visible

__all__ = ["html_text", "plain_text", "tooltip"]


def html_text(text: object, limit: Optional[int] = 40) -> str:
    r"""Text for inside an HTML-like label: made visible, XML-escaped, and backslashes
    doubled (Graphviz expands ``\N`` to the node's id even in HTML labels).

    >>> html_text("<script>"), html_text("a\\N")
    ('&lt;script&gt;', 'a\\\\N')
    """
    return html.escape(visible(text, limit), quote=True).replace("\\", "\\\\")


def plain_text(text: object, limit: Optional[int] = 40) -> str:
    r"""Text for a plain (non-HTML) label: Graphviz reads entities and backslashes there.

    >>> plain_text("a&b"), plain_text("<lambda>")
    ('a&amp;b', '&lt;lambda&gt;')
    """
    return graphviz.escape(html.escape(visible(text, limit), quote=False))


def tooltip(*lines: object) -> str:
    r"""A tooltip, one line per (non-empty) argument. Graphviz expands ``\N`` and friends in
    tooltips even after one escaping, so each backslash is written as four.

    >>> tooltip("x: leaf", "", "made at <stdin>:1")
    'x: leaf\\nmade at &lt;stdin&gt;:1'
    """
    return graphviz.nohtml("\\n".join(html.escape(visible(line, 300), quote=False)
                                       .replace("\\", "\\" * 4) for line in lines if line))

"""A drawn picture: DOT source that renders itself to bytes or a file and shows itself
inline in Jupyter. :func:`~autodiff_trace.views.graph.diagram.diagram` and the trace diff
both return one; :mod:`~autodiff_trace.views.graph.render` does the rendering."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import graphviz

from . import render as _render

__all__ = ["Diagram"]


class Diagram:
    """A pass (or a diff of two) drawn: ``.source`` is DOT, ``.graph`` the ``graphviz.Digraph``;
    it shows itself inline in Jupyter and renders with graphviz-pure unless told otherwise."""

    def __init__(self, graph: graphviz.Digraph, pass_no: Optional[int], shown: int, total: int) -> None:
        self.graph = graph
        self.pass_no = pass_no
        self.shown = shown  # value nodes drawn
        self.total = total  # value nodes in the pass's graph
        self.renderer: Optional[str] = None
        self.timeout = 30.0

    @property
    def source(self) -> str:
        return self.graph.source

    def pipe(self, fmt: str = "svg", **options) -> bytes:
        """The rendered image's bytes (options as for :func:`autodiff_trace.views.graph.render.render`)."""
        options.setdefault("renderer", self.renderer)
        options.setdefault("timeout", self.timeout)
        return _render.render(self.source, fmt, **options)

    def render(self, path: Union[str, os.PathLike], fmt: Optional[str] = None, **options) -> Path:
        """Write the picture to ``path``; the format comes from its suffix unless given."""
        options.setdefault("renderer", self.renderer)
        options.setdefault("timeout", self.timeout)
        return _render.render_to_file(self.source, path, fmt, **options)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        try:
            return {"image/svg+xml": self.pipe("svg").decode("utf-8")}
        except _render.RenderError as exc:
            return {"text/plain": f"{exc} (the DOT source is in .source)"}

    def _repr_svg_(self) -> Optional[str]:
        return self._repr_mimebundle_().get("image/svg+xml")

    def __repr__(self) -> str:
        what = "a diff" if self.pass_no is None else f"pass {self.pass_no}"
        return f"<Diagram of {what}: {self.shown} of {self.total} nodes>"

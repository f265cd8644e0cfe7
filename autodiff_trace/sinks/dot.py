"""The Graphviz sink: one diagram per backward pass, written as the pass ends.

:class:`DotSink` writes ``pass_1.dot``, ``pass_1.svg``, ... (and, if asked, one frame
per fired node); the pictures themselves come from :mod:`autodiff_trace.views.graph.diagram`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

from ..views.graph import render as _render
from ..views.graph.diagram import check_layout, diagram
from ..core.captured import events_of
from ..core.events import Event
from ..core.keep import KeepPolicy, NewFindings
from ..core.model import TraceModel
from ._errors import cannot_write

__all__ = ["DotSink"]


def _say(message: str) -> None:
    print(f"autodiff_trace: {message}", file=sys.stderr)


class DotSink:
    """Write one diagram per backward pass into ``out_dir`` as the pass ends.

    ``pass_N.dot`` is written first, then each format; if rendering fails (no renderer,
    a timeout) the ``.dot`` stays and one line says how to render it by hand.

    Args:
        out_dir: folder for the files (created).
        formats: any of ``"svg"``, ``"png"``, ``"pdf"`` (PDF needs a system Graphviz).
        pass_no: draw only this pass; None draws every pass (up to ``max_passes``).
        max_nodes: value nodes drawn per diagram; the rest are folded into counted groups.
        rankdir: Graphviz direction, ``"LR"`` by default.
        renderer: None (graphviz-pure, or ``AUTODIFF_TRACE_DOT``), ``"dot"``, or a program.
        timeout: seconds allowed for each render.
        frames: also write ``pass_N/frame_001.svg``, ... one per fired node.
        max_frames: frames per pass at most.
        max_passes: passes drawn at most when ``pass_no`` is None.
        report: where one-line messages go; stderr by default.
        modules: how nodes made in a model's modules are drawn (see :func:`diagram`).
        keep: draw only the passes this policy keeps (the first ones, those with
            findings, the last); None draws every pass.
    """

    def __init__(self, out_dir: Union[str, os.PathLike], *, formats: Sequence[str] = ("svg",),
                 pass_no: Optional[int] = None, max_nodes: int = 300, rankdir: str = "LR",
                 renderer: Optional[str] = None, timeout: float = 30.0, frames: bool = False,
                 max_frames: int = 200, max_passes: int = 50,
                 report: Callable[[str], None] = _say, keep: Optional[KeepPolicy] = None,
                 modules: str = "auto") -> None:
        if isinstance(formats, str):
            formats = (formats,)
        formats = tuple(dict.fromkeys(str(f).lower().lstrip(".") for f in formats))
        unknown = [f for f in formats if f not in (*_render.FORMATS, "dot")]
        if unknown:
            raise ValueError(f"cannot write format {unknown[0]!r}; choose from "
                             f"{', '.join(_render.FORMATS)} (the .dot file is always written)")
        check_layout(rankdir, max_nodes)
        self.out_dir = Path(out_dir)
        self.formats = tuple(f for f in formats if f != "dot")
        self.pass_no, self.max_nodes, self.rankdir, self.modules = pass_no, max_nodes, rankdir, modules
        self.renderer, self.timeout = renderer, timeout
        self.frames, self.max_frames, self.max_passes = frames, max_frames, max_passes
        self.report = report
        self.keep = None if keep is None or keep.keeps_everything else keep
        self._new_findings, self._found_in = NewFindings(), set()  # passes where a finding first showed
        self.model = TraceModel()
        self._folds = True  # until a tracer binds its own model
        self.written: List[Path] = []
        self.closed = False
        self._drawn: List[int] = []  # passes written
        self._dirty: set = set()  # drawn passes that got findings afterwards
        self._broken: Optional[str] = None  # why rendering cannot work at all
        self._said: set = set()

    def bind(self, model: TraceModel) -> None:
        """Read the tracer's ``model`` (folded before each event reaches this sink)."""
        self.model, self._folds = model, False

    def handle(self, event: Event) -> None:
        if self._folds:
            self.model.handle(event)
        kind = event.kind
        if kind == "diagnostic":
            found = self.model.pass_(event.pass_no)  # looked up once: a long run has many passes
            if found is not None:
                if found.pass_no in self._drawn:
                    self._dirty.add(found.pass_no)
            else:  # a finding without a known pass marks every drawn pass it names
                named = set(event.nodes)
                for p in self.model.passes:
                    if p.pass_no in self._drawn and not (
                            named.isdisjoint(p.reachable) and named.isdisjoint(p.fired)):
                        self._dirty.add(p.pass_no)
            if self.keep is not None and self._new_findings.is_new(event):
                self._found_in.add(event.pass_no)
            found = found if self.keep is not None else None
            if found is not None and found.finished and found.pass_no not in self._drawn \
                    and self._wanted(found.pass_no) and self._kept(found.pass_no):
                self._dirty.add(found.pass_no)  # a pass kept for its findings
            self._redraw()  # now: the model may run ahead of this sink, a batch at a time
            return
        if kind == "backward_finished" and self._wanted(event.pass_no) and self._kept(event.pass_no):
            self._draw(event.pass_no)

    def handle_batch(self, first_seq: int, t: float, batch: list) -> None:
        """Take a captured batch (:mod:`autodiff_trace.core.captured`): it ends no pass, so
        nothing is drawn."""
        if self._folds:
            for event in events_of(first_seq, t, batch):
                self.model.handle(event)

    def _redraw(self) -> None:
        """Draw again the passes that findings concern, as the model holds them now."""
        for pass_no in sorted(self._dirty):
            self._draw(pass_no)
        self._dirty.clear()

    def close(self) -> None:
        """Draw whatever is not drawn yet: a pass cut short, or findings that came late."""
        if self.closed:
            return
        self.closed = True
        last = self.model.passes[-1].pass_no if self.model.passes else 0
        for p in self.model.passes:
            if (p.pass_no not in self._drawn and self._wanted(p.pass_no) and self._kept(p.pass_no, last)) \
                    or p.pass_no in self._dirty:
                self._draw(p.pass_no)
        if self.pass_no is not None or not self.model.passes:
            try:
                self.model.require_pass(self.pass_no, "draw")
            except ValueError as missing:
                self._tell(f"{missing}; nothing drawn" if self.model.passes else str(missing))
        if self.pass_no is None and len(self.model.passes) > self.max_passes:
            self._tell(f"drew the first {self.max_passes} of {len(self.model.passes)} passes; "
                       f"choose one with pass_no, or raise max_passes")

    def _wanted(self, pass_no: int) -> bool:
        if self.pass_no is not None:
            return pass_no == self.pass_no
        return pass_no in self._drawn or len(self._drawn) < self.max_passes

    def _kept(self, pass_no: int, last: Optional[int] = None) -> bool:
        """Does the keep policy draw this pass (``last``: the trace's last pass, once known)?"""
        if self.keep is None or self.pass_no is not None:
            return True
        has_findings = pass_no in self._found_in
        found = self.model.pass_(pass_no)
        nodes = len(found.reachable) if found is not None else None
        if last is None:
            return self.keep.keeps_early(pass_no, has_findings, nodes)
        return self.keep.keeps(pass_no, has_findings, last, nodes)

    def _tell(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self.report(message)

    def _keep(self, path: Path) -> None:
        if path not in self.written:
            self.written.append(path)

    def _draw(self, pass_no: int) -> None:
        picture = diagram(self.model, pass_no, max_nodes=self.max_nodes, rankdir=self.rankdir,
                          modules=self.modules)
        if pass_no not in self._drawn:
            self._drawn.append(pass_no)
        base = self.out_dir / f"pass_{pass_no}"
        dot_path = base.with_suffix(".dot")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            dot_path.write_text(picture.source, encoding="utf-8")
        except OSError as exc:
            raise cannot_write(f"the diagram {dot_path}", exc) from None
        self._keep(dot_path)
        for fmt in self.formats:
            self._render(picture.source, base.with_suffix(f".{fmt}"), fmt)
        if self.frames:
            self._draw_frames(pass_no, base)

    def _render(self, source: str, path: Path, fmt: str) -> bool:
        dot_path = path.with_suffix(".dot")
        if self._broken:
            return False
        try:
            _render.render_to_file(source, path, fmt, renderer=self.renderer, timeout=self.timeout)
        except OSError as exc:  # the picture was drawn but could not be saved (a full disk)
            raise cannot_write(f"the diagram {path}", exc) from None
        except _render.RenderError as exc:
            if "did not finish" not in str(exc):
                self._broken = str(exc)  # the same cause will fail every later render
            if not dot_path.exists():
                dot_path.write_text(source, encoding="utf-8")
                self._keep(dot_path)
            self._tell(f"could not write {path.name}: {exc}. The diagram is in {dot_path}; "
                       f"render it with `{_render.render_command(dot_path, fmt)}`")
            return False
        self._keep(path)
        return True

    def _draw_frames(self, pass_no: int, base: Path) -> None:
        fired = len(self.model.pass_(pass_no).fired)
        if fired > self.max_frames:
            self._tell(f"pass {pass_no} fired {fired:,} backward functions; frames are written "
                       f"for the first {self.max_frames} (max_frames)")
        for step in range(1, min(fired, self.max_frames) + 1):
            frame = diagram(self.model, pass_no, max_nodes=self.max_nodes, rankdir=self.rankdir,
                            step=step)
            if not self._render(frame.source, base / f"frame_{step:03d}.svg", "svg"):
                return

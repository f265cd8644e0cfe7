"""A step-by-step HTML player for backward passes: one self-contained file, no network.

The page holds one inline SVG frame per backward-function firing (drawn by
:func:`autodiff_trace.views.graph.diagram.diagram` with ``step=k``) and a list of steps, one per
event of the pass: a firing or a gradient write. A slider, previous/next buttons,
play/pause and the arrow keys move through the steps; the node the step touches is
highlighted and its ledger line (``x.grad += 9 from add#5 (2 → 11)``) is shown beside
the picture. Every user string reaches the page as JSON read by ``textContent`` or as
text Graphviz escaped, so a node named ``<script>`` stays text.
"""

from __future__ import annotations

import html
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from .graph.diagram import diagram
from ..core.describe import describe
from ..core.events import Event
from ..core.model import TraceModel
from ..core.text import visible
from ..core.tracefile import iter_events

__all__ = ["build_player", "write_player"]


def _svg(picture, frame: int, renderer: Optional[str]) -> str:
    """The frame's SVG, ready to inline: no XML prolog, every id prefixed by its frame."""
    text = picture.pipe("svg", renderer=renderer).decode("utf-8")
    text = text[text.index("<svg"):]
    return re.sub(r'\bid="', f'id="f{frame}-', text)


def build_player(events: Union[Iterable[Event], TraceModel, str, os.PathLike], *,
                 pass_no: Optional[int] = None, max_nodes: int = 150, max_frames: int = 100,
                 max_bytes: int = 20_000_000, max_passes: int = 20, renderer: Optional[str] = None,
                 title: str = "backward pass", max_steps: int = 5000,
                 max_drawn: int = 1_000_000, said: Optional[List[str]] = None) -> str:
    """The player page as a string.

    Args:
        events: the trace: events, or the path of a ``trace.jsonl``.
        pass_no: play only this pass; None plays every pass (at most ``max_passes``).
        max_nodes: value nodes drawn per frame.
        max_frames: step pictures at most; past that (or past ``max_bytes`` of pictures),
            the remaining steps of a pass show its final picture (one more per pass).
        max_bytes: a budget for the pictures' SVG text, to keep the page openable.
        renderer: Graphviz renderer, as for :func:`autodiff_trace.views.graph.render.render`.
        title: shown at the top of the page (escaped).
        max_steps: steps listed per pass at most; the page says how many it left out.
        max_drawn: a budget of nodes laid out over a pass's frames (frames × the pass's
            graph), so a pass over a huge graph gets fewer step pictures, not a hang.
        said: a list that gets what the page leaves out, as the page says it (for a terminal).
    """
    if isinstance(events, (str, os.PathLike)):
        events = iter_events(events)
    model, steps_of = TraceModel(), {}  # pass_no -> its first max_steps events, in order
    left_out: Dict[int, int] = {}  # pass_no -> steps not listed
    for event in events:
        model.handle(event)
        if event.kind in ("backward_started", "backward_fn_fired", "grad_accumulated"):
            wanted = event.pass_no == pass_no if pass_no is not None else \
                event.pass_no in steps_of or len(steps_of) < max_passes
            if not wanted:
                continue
            listed = steps_of.setdefault(event.pass_no, [])
            if len(listed) < max_steps:
                listed.append(event)
            else:
                left_out[event.pass_no] = left_out.get(event.pass_no, 0) + 1
    if pass_no is None:
        model.require_pass(None, "play")
        chosen = model.passes[:max_passes]
    else:
        chosen = [model.require_pass(pass_no, "play")]
    frames: List[str] = []
    steps: List[dict] = []
    findings: Dict[int, List[str]] = {}  # pass_no -> what the diagnostics found in it
    for p in chosen:
        frame_of: Dict[Optional[int], int] = {}
        allowed = len(frames) + max(1, min(max_frames, max_drawn // max(1, len(p.order))))

        def frame(step: Optional[int], p=p, frame_of=frame_of, allowed=allowed) -> int:
            if step not in frame_of:
                full = len(frames) >= min(max_frames, allowed) or sum(map(len, frames)) >= max_bytes
                if step is not None and full:
                    return frame(None)
                frame_of[step] = len(frames)
                frames.append(_svg(diagram(model, p.pass_no, max_nodes=max_nodes, step=step),
                                   len(frames), renderer))
            return frame_of[step]

        fired, upstream = 0, {}
        for event in steps_of.get(p.pass_no, []):
            if event.kind == "backward_fn_fired":
                fired += 1
                node = event.node
                upstream[node] = event.upstream
            else:
                node = getattr(event, "target", None)
                if node is None:
                    node = event.root
            text = describe(event, model.name, upstream=upstream.get(getattr(event, "fired_by", None)))
            steps.append({"pass": p.pass_no, "frame": frame(fired), "node": f"v{node}",
                          "kind": event.kind, "text": visible(text, 300)})
        if p.diagnostics:
            findings[p.pass_no] = [visible(f"{d.severity} {d.finding}: {d.message}", 400)
                                   for d in p.diagnostics]
    note = (f"{len(model.passes)} passes in the trace; showing {len(chosen)}"
            if pass_no is None and len(model.passes) > len(chosen) else "")
    cut = [f"pass {n}: the first {max_steps:,} steps of {max_steps + extra:,}"
           for n, extra in left_out.items() if any(p.pass_no == n for p in chosen)]
    if cut:
        note = "; ".join(filter(None, [note, *cut]))
    if said is not None and note:
        said.append(f"the page shows {note}")
    return _page(title, frames, {"steps": steps, "findings": findings}, note)


def write_player(events, out: Union[str, os.PathLike], **options) -> Path:
    """Write :func:`build_player`'s page to ``out``; returns the path."""
    page = build_player(events, **options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _json_for_script(data) -> str:
    """JSON that cannot end its ``<script>`` element early.

    >>> _json_for_script(["</script>"])
    '["\\\\u003c/script\\\\u003e"]'
    """
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _page(title: str, frames: List[str], data: dict, note: str) -> str:
    body = "\n".join(f'<div class="frame" data-frame="{i}" hidden>{svg}</div>'
                     for i, svg in enumerate(frames))
    values = {"TITLE": html.escape(visible(title, 200)), "NOTE": html.escape(note),
              "LAST": str(len(data["steps"]) - 1), "STEPS": _json_for_script(data), "FRAMES": body}
    template = resources.files(__package__).joinpath("player.html").read_text(encoding="utf-8")
    return re.sub(r"\$(TITLE|NOTE|LAST|STEPS|FRAMES)", lambda m: values[m.group(1)], template)

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
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Union

from .graph.diagram import diagram, num, visible
from ..core.events import Event
from ..core.model import TraceModel
from ..core.tracefile import iter_events

__all__ = ["build_player", "write_player", "step_text"]


def step_text(event: Event, name: Callable[[Optional[int]], str] = lambda n: f"#{n}",
              upstream: Optional[float] = None) -> str:
    """The ledger line of one step of a pass; ``upstream`` is what the writer passed on.

    >>> from autodiff_trace.core.events import GradAccumulated
    >>> step_text(GradAccumulated(7, 0.1, 1, 0, 3, 1.0, 3.0, 2.0, 5.0, False, None),
    ...           {0: "x", 3: "y"}.get, upstream=3.0)
    'x.grad += 1 × 3 = 3   (2 → 5)   from y'
    """
    kind = event.kind
    if kind == "backward_fn_fired":
        return f"{name(event.node)} fires: its grad is {num(event.grad)}, it passes on {num(event.upstream)}"
    if kind == "grad_accumulated":
        change = f"({num(event.grad_before)} → {num(event.grad_after)})"
        target = name(event.target)
        if event.fired_by is None:
            return (f"{target}.grad = {num(event.contribution)}   {change}   "
                    f"seed, outside any backward function")
        amount = num(event.contribution)
        if event.local_grad is not None and upstream is not None:
            amount = f"{num(event.local_grad)} × {num(upstream)} = {amount}"
        op = "=" if event.replaced else "+="
        lost = f", {num(event.grad_before)} lost" if event.replaced and event.grad_before else ""
        return f"{target}.grad {op} {amount}   {change}{lost}   from {name(event.fired_by)}"
    if kind == "backward_started":
        stale = [f"{name(n)} {num(g)}" for n, g in zip(event.order, event.grads_before) if g != 0]
        return (f"pass {event.pass_no} begins at {name(event.root)}: {len(event.order)} nodes to visit"
                + (f"; grads already non-zero: {', '.join(stale[:6])}" if stale else ""))
    return kind


def _svg(picture, frame: int, renderer: Optional[str]) -> str:
    """The frame's SVG, ready to inline: no XML prolog, every id prefixed by its frame."""
    text = picture.pipe("svg", renderer=renderer).decode("utf-8")
    text = text[text.index("<svg"):]
    return re.sub(r'\bid="', f'id="f{frame}-', text)


def build_player(events: Union[Iterable[Event], TraceModel, str, os.PathLike], *,
                 pass_no: Optional[int] = None, max_nodes: int = 150, max_frames: int = 100,
                 max_bytes: int = 20_000_000, max_passes: int = 20, renderer: Optional[str] = None,
                 title: str = "backward pass") -> str:
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
    """
    if isinstance(events, (str, os.PathLike)):
        events = iter_events(events)
    model, steps_of = TraceModel(), {}  # pass_no -> its events, in order
    for event in events:
        model.handle(event)
        if event.kind in ("backward_started", "backward_fn_fired", "grad_accumulated"):
            steps_of.setdefault(event.pass_no, []).append(event)
    chosen = [p for p in model.passes if pass_no is None or p.pass_no == pass_no][:max_passes]
    if not chosen:
        if not model.passes:
            raise ValueError("the trace has no backward pass to play; call backward() inside the trace")
        known = ", ".join(str(p.pass_no) for p in model.passes)
        raise ValueError(f"pass {pass_no} is not in the trace (its passes: {known})")
    frames: List[str] = []
    steps: List[dict] = []
    findings: Dict[int, List[str]] = {}  # pass_no -> what the diagnostics found in it
    for p in chosen:
        frame_of: Dict[Optional[int], int] = {}

        def frame(step: Optional[int], p=p, frame_of=frame_of) -> int:
            if step not in frame_of:
                full = len(frames) >= max_frames or sum(map(len, frames)) >= max_bytes
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
            text = step_text(event, model.name, upstream.get(getattr(event, "fired_by", None)))
            steps.append({"pass": p.pass_no, "frame": frame(fired), "node": f"v{node}",
                          "kind": event.kind, "text": visible(text, 300)})
        if p.diagnostics:
            findings[p.pass_no] = [visible(f"{d.severity} {d.finding}: {d.message}", 400)
                                   for d in p.diagnostics]
    note = (f"{len(model.passes)} passes in the trace; showing {len(chosen)}"
            if pass_no is None and len(model.passes) > len(chosen) else "")
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
    return re.sub(r"\$(TITLE|NOTE|LAST|STEPS|FRAMES)", lambda m: values[m.group(1)], _TEMPLATE)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>$TITLE</title>
<style>
body { font: 14px Helvetica, Arial, sans-serif; margin: 0; color: #222; }
header { padding: 8px 12px; background: #f4f4f4; border-bottom: 1px solid #ddd; }
header h1 { font-size: 16px; margin: 0 0 6px; }
#controls { display: flex; gap: 8px; align-items: center; }
#slider { flex: 1; }
main { display: flex; gap: 12px; padding: 12px; align-items: flex-start; }
#picture { flex: 3; overflow: auto; }
#picture svg { max-width: 100%; height: auto; }
aside { flex: 2; min-width: 280px; }
#now { font: 15px Menlo, Consolas, monospace; padding: 8px; border: 2px solid #e8590c;
       background: #fff4e6; white-space: pre-wrap; }
#ledger { font: 12px Menlo, Consolas, monospace; list-style: none; padding: 0; max-height: 60vh;
          overflow: auto; }
#ledger li { padding: 2px 4px; white-space: pre-wrap; color: #555; }
#ledger li.current { background: #fff4e6; color: #000; font-weight: bold; }
#ledger li.future { color: #bbb; }
#findings { color: #b03a2e; white-space: pre-wrap; }
g.now > polygon, g.now > path, g.now > ellipse { stroke: #e8590c !important; stroke-width: 4px; }
g.now { filter: drop-shadow(0 0 6px #e8590c); }
</style></head>
<body>
<header><h1>$TITLE</h1>
<div id="controls">
<button id="prev" title="previous step (←)">◀ prev</button>
<button id="play" title="play / pause (space)">play</button>
<button id="next" title="next step (→)">next ▶</button>
<input id="slider" type="range" min="0" max="$LAST" value="0" aria-label="step">
<span id="position"></span>
</div><div>$NOTE</div></header>
<main><div id="picture">
$FRAMES
</div>
<aside><div id="now"></div><div id="findings"></div><ol id="ledger"></ol></aside></main>
<script type="application/json" id="steps">$STEPS</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("steps").textContent), steps = data.steps;
  var slider = document.getElementById("slider"), playing = null, current = -1;
  var ledger = document.getElementById("ledger"), items = [];
  steps.forEach(function (s, i) {
    var li = document.createElement("li");
    li.textContent = "pass " + s.pass + " · " + (i + 1) + ". " + s.text;
    li.addEventListener("click", function () { show(i); });
    ledger.appendChild(li); items.push(li);
  });
  function show(i) {
    i = Math.max(0, Math.min(steps.length - 1, i));
    var s = steps[i];
    document.querySelectorAll(".frame").forEach(function (f) {
      f.hidden = Number(f.dataset.frame) !== s.frame;
    });
    document.querySelectorAll("g.now").forEach(function (g) { g.classList.remove("now"); });
    var node = document.getElementById("f" + s.frame + "-" + s.node);
    if (node) { node.classList.add("now"); }
    document.getElementById("now").textContent = s.text;
    var found = data.findings[String(s.pass)] || [];
    document.getElementById("findings").textContent =
      found.length ? "findings of pass " + s.pass + ":\\n" + found.join("\\n") : "";
    items.forEach(function (li, k) {
      li.className = k === i ? "current" : (k > i ? "future" : "");
    });
    if (items[i] && items[i].scrollIntoView) { items[i].scrollIntoView({block: "nearest"}); }
    slider.value = String(i);
    document.getElementById("position").textContent = "step " + (i + 1) + " of " + steps.length;
    document.body.dataset.step = String(i);
    current = i;
  }
  function toggle() {
    if (playing) { clearInterval(playing); playing = null; }
    else {
      if (current >= steps.length - 1) { show(0); }
      playing = setInterval(function () {
        if (current >= steps.length - 1) { toggle(); } else { show(current + 1); }
      }, 900);
    }
    document.getElementById("play").textContent = playing ? "pause" : "play";
  }
  document.getElementById("prev").onclick = function () { show(current - 1); };
  document.getElementById("next").onclick = function () { show(current + 1); };
  document.getElementById("play").onclick = toggle;
  slider.oninput = function () { show(Number(slider.value)); };
  document.addEventListener("keydown", function (e) {
    if (e.target === slider && (e.key === "ArrowLeft" || e.key === "ArrowRight")) { return; }
    if (e.key === "ArrowRight") { show(current + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { show(current - 1); e.preventDefault(); }
    else if (e.key === " ") { toggle(); e.preventDefault(); }
    else if (e.key === "Home") { show(0); } else if (e.key === "End") { show(steps.length - 1); }
  });
  show(0);
})();
</script>
</body></html>
"""

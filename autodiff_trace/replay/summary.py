"""A saved trace in numbers: events per kind, nodes, passes with their time, findings.

``autodiff-trace stats`` prints :func:`format_stats` of :func:`trace_stats`; the
replay benchmark counts events with it. One streaming pass over the events.
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter
from typing import Dict, Iterable, Union

from ..core.compact import TAGS
from ..core.compact_runs import CompactRun
from ..core.events import Event
from ..core.text import plural

__all__ = ["trace_stats", "format_stats"]

_PASS_NO = itemgetter(1)  # of a compact firing or write line
_KINDS = {tag: cls.kind for tag, cls in TAGS.items()}


def trace_stats(events: Iterable[Union[Event, CompactRun]], *, keep_passes: int = 1000) -> dict:
    """Counts of a trace, read in one streaming pass: events per kind, nodes, passes (the
    first ``keep_passes`` in detail, all in the totals, summarised ones from their
    ``pass_summary``) and findings per severity and kind. ``events`` may hold runs of
    compact lines (``iter_events(path, runs=True)``), counted without their events."""
    kinds: Dict[str, int] = {}
    findings: Dict[str, Dict[str, int]] = {}
    passes: Dict[int, dict] = {}
    totals = {"count": 0, "finished": 0, "summarised": 0, "seconds": 0.0, "longest": 0.0}
    nodes = 0
    first_t = last_t = None
    for event in events:
        if event.__class__ is CompactRun:  # compact lines counted by kind, no event built
            first_t = event.t if first_t is None else first_t
            last_t = event.t
            for tag, lines in event.rows.items():
                kind = _KINDS[tag]
                kinds[kind] = kinds.get(kind, 0) + len(lines)
                if tag == "n":
                    nodes += len(lines)
                    continue
                for pass_no, times in Counter(map(_PASS_NO, lines)).items():
                    p = passes.get(pass_no)
                    if p is not None:
                        p["fired" if tag == "f" else "writes"] += times
            continue
        kind = event.kind
        kinds[kind] = kinds.get(kind, 0) + 1
        first_t = event.t if first_t is None else first_t
        last_t = event.t
        if kind == "node_created":
            nodes += 1
        elif kind == "backward_started":
            totals["count"] += 1
            if len(passes) < keep_passes:
                passes[event.pass_no] = {"pass": event.pass_no, "reachable": len(event.order),
                                         "fired": 0, "writes": 0, "seconds": None}
        elif kind in ("backward_fn_fired", "grad_accumulated"):
            p = passes.get(event.pass_no)
            if p is not None:
                p["fired" if kind == "backward_fn_fired" else "writes"] += 1
        elif kind == "backward_finished":
            totals["finished"] += 1
            totals["seconds"] += event.duration
            totals["longest"] = max(totals["longest"], event.duration)
            if event.pass_no in passes:
                passes[event.pass_no]["seconds"] = event.duration
        elif kind == "pass_summary":  # a pass the trace kept as its counts only
            totals["count"] += 1
            totals["finished"] += 1
            totals["summarised"] += 1
            totals["seconds"] += event.duration
            totals["longest"] = max(totals["longest"], event.duration)
            nodes += event.made
            if len(passes) < keep_passes:
                passes[event.pass_no] = {"pass": event.pass_no, "reachable": event.reached,
                                         "fired": event.fired, "writes": event.accumulated,
                                         "seconds": event.duration, "summarised": True}
        elif kind == "diagnostic":
            by_kind = findings.setdefault(event.severity, {})
            by_kind[event.finding] = by_kind.get(event.finding, 0) + 1
    return {"events": sum(kinds.values()), "kinds": kinds, "nodes": nodes,
            "passes": list(passes.values()), "pass_totals": totals, "findings": findings,
            "seconds": (last_t - first_t) if first_t is not None else 0.0}


def format_stats(stats: dict, *, max_passes: int = 20) -> str:
    """:func:`trace_stats` as aligned text."""
    lines = [f"events    {stats['events']:,} over {stats['seconds']:.3f} s"]
    lines += [f"  {kind:<18} {count:,}" for kind, count in sorted(stats["kinds"].items())]
    lines.append(f"nodes     {stats['nodes']:,}")
    passes, totals = stats["passes"], stats["pass_totals"]
    lines.append(f"passes    {totals['count']:,}" + (
        f" ({totals['seconds'] * 1e3:.3f} ms in all, the longest {totals['longest'] * 1e3:.3f} ms)"
        if totals["finished"] else ""))
    for p in passes[:max_passes]:
        took = "cut short" if p["seconds"] is None else f"{p['seconds'] * 1e3:.3f} ms"
        lines.append(f"  pass {p['pass']:<4} {took:>12}  {p['reachable']:,} reachable, "
                     f"{p['fired']:,} fired, {p['writes']:,} grad writes"
                     + ("  (summarised)" if p.get("summarised") else ""))
    if totals["summarised"]:
        lines.append(f"  {plural(totals['summarised'], 'pass')} kept as counts only (the trace's keep policy)")
    if totals["count"] > min(len(passes), max_passes):
        lines.append(f"  ... and {totals['count'] - min(len(passes), max_passes):,} more passes")
    total = sum(sum(k.values()) for k in stats["findings"].values())
    lines.append(f"findings  {total:,}")
    usual = ("error", "warning", "info")
    for severity in (*usual, *sorted(set(stats["findings"]) - set(usual))):
        for finding, count in sorted(stats["findings"].get(severity, {}).items()):
            lines.append(f"  {severity:<8} {finding:<22} {count:,}")
    return "\n".join(lines) + "\n"

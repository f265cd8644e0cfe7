"""The colours and font of every Graphviz picture: one palette for the pass diagrams and
the diff, so a colour means the same in both."""

from __future__ import annotations

__all__ = ["FONT", "INK", "MUTED", "FLOW", "NOW", "FIRED", "OUTSIDE", "STALE", "SEVERITY",
           "BLUE", "RED", "ORANGE"]

FONT = "Helvetica"  # graphviz-pure draws it with Arimo (Arial's metrics); viewers substitute well
INK, MUTED, FLOW = "#333333", "#888888", "#b03a2e"  # text, secondary text, gradient labels
NOW = "#1f6fd1"  # the backward function firing in a step, and its writes
BLUE, RED, ORANGE = "#d6e4f5", "#f4c7c3", "#fde2bf"  # the three fills
FIRED, OUTSIDE, STALE = BLUE, RED, ORANGE  # a pass: fired, fired outside the graph, stale grad
SEVERITY = {"error": "#d62728", "warning": "#e67e00", "info": "#1f77b4"}

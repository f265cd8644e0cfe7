"""Graphviz pictures: a pass (diagram.py; node by node in builder.py, one box per model
module in folded.py) and a trace diff (diff.py), drawn in one palette (palette.py) with
user text escaped in one place (quoting.py), and the one place that renders them
(render.py)."""

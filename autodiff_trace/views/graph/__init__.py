"""Graphviz pictures: a pass (diagram.py) and a trace diff (diff.py), drawn in one palette
(palette.py) with user text escaped in one place (quoting.py), and the one place that
renders them (render.py)."""

"""Graphviz diagrams of a backward pass, and the one place that renders them."""

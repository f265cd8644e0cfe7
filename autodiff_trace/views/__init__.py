"""Views: turn a trace model into something to look at (terminal, Graphviz, HTML, Chrome).

A view draws; it writes no event stream and knows no sink.
"""

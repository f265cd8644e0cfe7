"""The terminal views' named styles: one place to read, or change, what each colour means.

Every Rich renderable under ``views/terminal`` styles text with these names, never with a
literal style string, so the tree, the ledger, the findings and the live view agree.
"""

from __future__ import annotations

__all__ = ["DIM", "STRONG", "OP", "FIRING", "ADDED", "WARN", "WRONG", "NOW", "JUST_WRITTEN",
           "SEVERITY_STYLES", "severity_style"]

DIM = "dim"  # labels and explanations around the numbers
STRONG = "bold"  # node names, titles
OP = "cyan"  # a node's op
FIRING = "magenta"  # when a node's backward function fired
ADDED = "green"  # a gradient value or what a write added
WARN = "bold yellow"  # stale or branching: worth a look, maybe meant
WRONG = "bold red"  # what the chain rule would never do: fired outside, assigned instead of added
NOW = "reverse bold"  # the node whose backward function is running (live view)
JUST_WRITTEN = "bold green"  # the node whose grad changed last (live view)
SEVERITY_STYLES = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def severity_style(severity: str) -> str:
    """The style of a finding's severity; an unknown severity is just bold.

    >>> severity_style("error"), severity_style("note")
    ('bold red', 'bold')
    """
    return SEVERITY_STYLES.get(severity, STRONG)

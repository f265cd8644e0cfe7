"""How numbers, names and counts are written, in every output: one home, one style.

A value prints the same in the terminal, the diagrams, findings.txt and the player.
"""

from __future__ import annotations

import unicodedata
from typing import Dict, Optional

__all__ = ["number", "signed", "plural", "ordinal", "visible", "display_name"]


_SHOWN: Dict[float, str] = {}  # finite floats shown lately: a trace repeats its numbers (a write's
_SHOWN_MOST = 4096  # grad after is the next one's grad before), and formatting is most of the cost


def number(value: Optional[float]) -> str:
    """A number as a learner reads it: whole numbers without ``.0``, else 6 significant digits.

    >>> number(2.0), number(1 / 3), number(123456789.0), number(-2.5e-12), number(-0.0)
    ('2', '0.333333', '123456789', '-2.5e-12', '0')
    >>> number(float("nan")), number(float("-inf")), number(2e20), number(None), number(1 - 2j)
    ('nan', '-inf', '2e+20', '?', '1-2j')
    """
    if value.__class__ is not float:  # a float is the common case, most often one shown just before
        if value is None:
            return "?"
        if isinstance(value, complex):
            imag = number(value.imag)
            return f"{number(value.real)}{imag if imag.startswith('-') else '+' + imag}j"
        value = float(value)
    text = _SHOWN.get(value)
    if text is not None:
        return text
    if value - value != 0.0:  # nan or an infinity
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    text = "%d" % value if value.is_integer() and -1e15 < value < 1e15 else f"{value:.6g}"
    if len(_SHOWN) >= _SHOWN_MOST:
        _SHOWN.clear()
    _SHOWN[value] = text
    return text


def signed(value: float) -> str:
    """A number with its sign always shown, for a change.

    >>> signed(2.0), signed(-0.5), signed(0.0)
    ('+2', '-0.5', '+0')
    """
    text = number(value)
    return text if text.startswith("-") or text == "nan" else "+" + text


def plural(n: int, noun: str) -> str:
    """``1 grad write``, ``1,024 grad writes``.

    >>> plural(1, "pass"), plural(3, "grad"), plural(1024, "node")
    ('1 pass', '3 grads', '1,024 nodes')
    """
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def ordinal(n: int) -> str:
    """English ordinal of a positive integer.

    >>> [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 102)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd']
    """
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def visible(text: object, limit: Optional[int] = 40) -> str:
    r"""User text made safe to show: control characters as escapes, long text cut.

    >>> visible("a\nb\x1b"), visible("w" * 50, limit=8)
    ('a\\nb\\x1b', 'wwwww...')
    """
    text = str(text)
    if text.isprintable():  # no character of the kinds escaped below ("Other" or a separator)
        return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Cn") or (cat == "Cf" and ch != "\u200d"):
            out.append(repr(ch)[1:-1] if cat == "Cc" else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def display_name(name: str, node_id: int, limit: Optional[int] = 100) -> str:
    r"""The name shown for a node: its id added, unless the name already ends with it; a name
    longer than ``limit`` is cut (the trace file keeps it whole).

    >>> display_name("x", 1), display_name("add#4", 4), display_name("w[i]", 12)
    ('x #1', 'add#4', 'w[i] #12')
    >>> display_name("a\nb\x1b[31m", 2), len(display_name("w" * 500, 3))
    ('a\\nb\\x1b[31m #2', 103)
    """
    name = visible(name, limit)
    return name if name.endswith(f"#{node_id}") else f"{name} #{node_id}"

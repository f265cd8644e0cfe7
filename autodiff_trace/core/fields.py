"""How event fields travel in JSON: the encoding of special numbers, and what each field must hold.

JSON has no NaN, infinity or complex numbers: NaN and ±inf travel as the strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"``, a complex number as ``{"re": x, "im": y}``;
each reads back as it went, and -0.0 keeps its sign. Reading checks every field's type
(:data:`FIELD_CHECKS`), so a crafted line is refused with the field named, never
half-read. docs/events.md states these rules.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, Optional, Tuple, Union

__all__ = ["MAX_LIST_ITEMS", "NUMBER_FIELDS", "FIELD_CHECKS", "FieldError", "LimitError", "json_number",
           "shown"]

MAX_LIST_ITEMS = 10_000_000  # items one list of one event may hold (a pass over at most 10M nodes)
NUMBER_FIELDS = frozenset({
    "t", "value", "seed", "grads_before", "grad", "upstream",
    "local_grad", "contribution", "grad_before", "grad_after", "duration",
})
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ID_END = 2 ** 63
_WHOLE = "a whole number from 0 to 2**63-1"
_NUMBER = 'a number (or "NaN", "Infinity", "-Infinity", or {"re": x, "im": y} for a complex)'


def json_number(x: Union[float, complex]) -> Any:
    """A float or complex as JSON can hold it.

    >>> json_number(float("-inf")), json_number(-0.0), json_number(complex(1, float("nan")))
    ('-Infinity', -0.0, {'re': 1.0, 'im': 'NaN'})
    """
    if x.__class__ is complex:
        return {"re": json_number(x.real), "im": json_number(x.imag)}
    if math.isfinite(x):
        return x
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def shown(value: Any) -> str:
    """A JSON value in at most 40 characters, for an error message.

    >>> shown(3), shown(None), shown(True), shown("a\\nb"), shown({"a": 1}), shown([[1]])
    ('3', 'null', 'true', '"a\\\\nb"', 'an object', 'a list')
    """
    if value.__class__ is dict:
        return "an object"
    if value.__class__ is list:
        return "a list"
    if value is None or value.__class__ is bool:
        return json.dumps(value)
    if value.__class__ is float:
        text = str(json_number(value))
    elif value.__class__ is int:
        text = str(value) if -10 ** 38 < value < 10 ** 38 else f"a {value.bit_length():,}-bit whole number"
    elif value.__class__ is str:
        text = json.dumps(value[:40])  # escaped: no control character reaches the terminal
    else:
        text = type(value).__name__
    return text if len(text) <= 40 else text[:39] + "…"


class FieldError(ValueError):
    """A field value that is not what the schema says; the reader adds the kind and field."""

    def __init__(self, expected: str, value: Any, index: Optional[int] = None) -> None:
        super().__init__(expected)
        self.expected, self.value, self.index = expected, value, index

    def message(self, kind: str, field: str) -> str:
        """``node_created.parents must be a list of node ids, got 3``."""
        where = f"{kind}.{field}" if self.index is None else f"{kind}.{field}[{self.index}]"
        return f"{where} must be {self.expected}, got {shown(self.value)}"


class LimitError(ValueError):
    """A well-formed field beyond a reader's bound (a list of more than MAX_LIST_ITEMS)."""


def _whole(expected: str) -> Callable[[Any], int]:
    """A check for a whole number from 0 to 2**63-1 (true and false are not numbers here)."""
    def check(value: Any) -> int:
        if value.__class__ is int and 0 <= value < _ID_END:
            return value
        raise FieldError(expected, value)
    check.plain = ("v.__class__ is int and 0 <= v < END", "v")
    return check


def _or_null(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check``, with null allowed too."""
    def check_or_null(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except FieldError as wrong:
            raise FieldError(wrong.expected + " or null", value) from None
    check_or_null.plain = ("v is None or " + check.plain[0], "v")
    return check_or_null


_count, _node_id = _whole(_WHOLE), _whole(f"a node id ({_WHOLE})")


def _seconds(value: Any) -> float:
    if value.__class__ is float and value - value == 0.0:
        return value
    if value.__class__ is int and -_ID_END < value < _ID_END:
        return float(value)
    raise FieldError("a time in seconds (a finite number)", value)


def _real(value: Any, whole: Any) -> float:
    if value.__class__ is float:
        return value
    if value.__class__ is int:
        try:
            return float(value)
        except OverflowError:
            raise FieldError("a number within a float's range", whole) from None
    if value.__class__ is str and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise FieldError(_NUMBER, whole)


def _number(value: Any) -> Union[float, complex]:
    if value.__class__ is float:
        return value
    if value.__class__ is dict and len(value) == 2 and "re" in value and "im" in value:
        return complex(_real(value["re"], value), _real(value["im"], value))
    return _real(value, value)


def _text(value: Any) -> str:
    if value.__class__ is str:
        return value
    raise FieldError("a string", value)


def _flag(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise FieldError("true or false", value)


def _severity(value: Any) -> str:
    if value.__class__ is str and value in ("error", "warning", "info"):
        return value
    raise FieldError('"error", "warning" or "info"', value)


def _list(value: Any, what: str) -> list:
    if value.__class__ is not list:
        raise FieldError(f"a list of {what}", value)
    if len(value) > MAX_LIST_ITEMS:
        raise LimitError(f"holds {len(value):,} {what}, more than the {MAX_LIST_ITEMS:,} one list of a "
                         f"trace may hold; trace a smaller graph")
    return value


def _items(value: list, check: Callable[[Any], Any]) -> tuple:
    """Every item checked; the first bad one is named by its index."""
    items = []
    for index, item in enumerate(value):
        try:
            items.append(check(item))
        except FieldError as wrong:
            raise FieldError(wrong.expected, item, index) from None
    return tuple(items)


def _node_ids(value: Any) -> Tuple[int, ...]:
    value = _list(value, "node ids")
    if value and not (set(map(type, value)) == {int} and min(value) >= 0 and max(value) < _ID_END):
        return _items(value, _node_id)
    return tuple(value)


def _numbers(value: Any) -> Tuple[Union[float, complex], ...]:
    value = _list(value, "numbers")
    if value and set(map(type, value)) != {float}:
        return _items(value, _number)
    return tuple(value)


def _texts(value: Any) -> Tuple[str, ...]:
    value = _list(value, "strings")
    if value and set(map(type, value)) != {str}:
        return _items(value, _text)
    return tuple(value)


# Each check's ``plain``: a condition on a JSON value ``v`` that holds only for values the
# check passes, and the value it then returns (:mod:`.quick_read` inlines both).
_seconds.plain = ("v.__class__ is float and v - v == 0.0", "v")
_number.plain = ("v.__class__ is float", "v")
_text.plain = ("v.__class__ is str", "v")
_flag.plain = ("v is True or v is False", "v")
_severity.plain = ('v.__class__ is str and v in ("error", "warning", "info")', "v")
_node_ids.plain = ("v.__class__ is list and len(v) <= MOST and "
                   "(not v or set(map(type, v)) == INT and min(v) >= 0 and max(v) < END)", "tuple(v)")
_numbers.plain = ("v.__class__ is list and len(v) <= MOST and (not v or set(map(type, v)) == FLOAT)",
                  "tuple(v)")
_texts.plain = ("v.__class__ is list and len(v) <= MOST and (not v or set(map(type, v)) == STR)", "tuple(v)")

FIELD_CHECKS: Dict[str, Callable[[Any], Any]] = {
    "seq": _count, "pass_no": _count, "fired": _count, "accumulated": _count,
    "reached": _count, "made": _count, "events": _count,
    "node": _node_id, "root": _node_id, "target": _node_id, "fired_by": _or_null(_node_id),
    "t": _seconds, "duration": _seconds,
    "value": _number, "seed": _number, "grad": _number, "upstream": _number,
    "contribution": _number, "grad_before": _number, "grad_after": _number,
    "local_grad": _or_null(_number), "grads_before": _numbers,
    "parents": _node_ids, "order": _node_ids, "nodes": _node_ids, "names": _texts,
    "op": _text, "name": _text, "finding": _text, "message": _text, "hint": _text,
    "site": _or_null(_text), "function": _or_null(_text), "severity": _severity, "replaced": _flag,
    "module": _or_null(_text), "tensor": _or_null(_text),
}
"""Per field name, the check that turns its JSON value into the event's value or raises FieldError."""

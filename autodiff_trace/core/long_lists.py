"""An event's long lists written over several lines, so no trace line grows with the graph.

A pass over two million nodes has an ``order`` and ``grads_before`` of two million items:
one line of tens of megabytes, beyond what a reader takes in one line. From version 3 such
an event's line holds the first :data:`CHUNK` items of each list and ``"more": n``; the
``n`` lines after it, ``{"more_of": seq, <list>: [...], ...}``, hold the rest in order.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from .events import BackwardStarted, Diagnostic, Event, GradsZeroed, from_dict, to_dict
from .fields import _ID_END, MAX_LIST_ITEMS, LimitError, shown

__all__ = ["CHUNK", "LISTS", "split", "Continued"]

CHUNK = 100_000  # list items one line holds
LISTS: Dict[type, Tuple[str, str]] = {  # the list fields of the events that have them
    BackwardStarted: ("order", "grads_before"),
    GradsZeroed: ("nodes", "grads_before"),
    Diagnostic: ("nodes", "names"),
}


def split(encode: Callable[[Event], bytes], encode_line: Callable[[dict], bytes]) -> Callable[[Event], bytes]:
    """``encode``, for an event whose lists may be long: over :data:`CHUNK` items, its
    lines are the event with each list's first part and ``more``, then the other parts."""
    def encode_long(event: Event) -> bytes:
        fields = LISTS[event.__class__]
        longest = max(len(getattr(event, f)) for f in fields)
        if longest <= CHUNK:
            return encode(event)
        parts = [to_dict(event._replace(**{f: getattr(event, f)[start:start + CHUNK] for f in fields}))
                 for start in range(0, longest, CHUNK)]
        first = {**parts[0], "more": len(parts) - 1}
        rest = [{"more_of": event.seq, **{f: part[f] for f in fields}} for part in parts[1:]]
        return b"".join(encode_line(line) for line in (first, *rest))
    return encode_long


class Continued:
    """Reads an event whose lists go on over the lines after it (:func:`split`)."""

    def __init__(self) -> None:
        self.pending: Optional[Tuple[dict, int]] = None  # the event so far, lines still to come

    def take(self, data: dict) -> Optional[Event]:
        """Take a line holding ``more`` or ``more_of``; the event once its last line is in.
        ValueError names what is wrong (a line out of place, a list that is not one)."""
        if "more_of" not in data:
            if self.pending is not None:
                raise ValueError(f"the event with seq {self.pending[0].get('seq')} is missing "
                                 f"{self.pending[1]} of its list lines")
            more = data.pop("more")
            if more.__class__ is not int or not 0 < more <= MAX_LIST_ITEMS // CHUNK + 1:
                raise ValueError(f"more must be how many list lines follow (a whole number from 1), got {shown(more)}")
            cls = _kind(data)
            head = {**data, **{f: _items(cls.kind, f, data.get(f)) for f in LISTS[cls]}}
            self.pending = (head, more)
            return None
        if self.pending is None or data["more_of"] != self.pending[0].get("seq") \
                or not (data["more_of"].__class__ is int and 0 <= data["more_of"] < _ID_END):
            raise ValueError(f"a list line (more_of {shown(data['more_of'])}) must follow the line of "
                             f"the event whose seq it names")
        head, left = self.pending
        fields = LISTS[_kind(head)]
        if set(data) != {"more_of", *fields}:
            raise ValueError(f"a list line holds more_of and {' and '.join(fields)}, and nothing else")
        for f in fields:
            head[f].extend(_items(head["kind"], f, data[f]))
            if len(head[f]) > MAX_LIST_ITEMS:
                raise LimitError(f"{head['kind']}.{f} holds more than the {MAX_LIST_ITEMS:,} items one list "
                                 f"of a trace may hold; trace a smaller graph")
        if left > 1:
            self.pending = (head, left - 1)
            return None
        self.pending = None
        return from_dict(head)


def _kind(data: dict) -> type:
    for cls in LISTS:
        if data.get("kind") == cls.kind:
            return cls
    known = ", ".join(cls.kind for cls in LISTS)
    raise ValueError(f"only {known} events go on over several lines, not {shown(data.get('kind'))}")


def _items(kind: str, field: str, value) -> list:
    if value.__class__ is not list:
        raise ValueError(f"{kind}.{field} must be a list, got {shown(value)}")
    return list(value)

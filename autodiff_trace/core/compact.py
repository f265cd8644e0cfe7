"""Compact trace lines: the hot events as JSON arrays, for a fraction of the cost and bytes.

A trace is almost all ``node_created``, ``backward_fn_fired`` and ``grad_accumulated``
events. From version 3 a trace file may write each as a JSON array instead of an object:
a tag (:data:`TAGS`), the ``seq``, then the event's fields in their order, ``t`` left out
(the line has the time of the line before it). The optional fields at the end are left
out while unset (:data:`TRAILING`). So ``["g",41,1,7,9,2.0,3.0,0.0,3.0]`` is
``grad_accumulated`` number 41: pass 1, target 7, fired by 9, local grad 2.0, ...
A node's site may be the number of a site line written once before it (:class:`SiteNumbers`).
A captured batch becomes its lines in one ``orjson.dumps`` (:func:`~.captured.lines_of`);
reading checks every value as an object line's are checked (:mod:`.fields`).
"""

from __future__ import annotations

import json
from typing import Callable, Dict, List, Optional

from .events import BackwardFnFired, Event, GradAccumulated, NodeCreated, from_dict
from .fields import _ID_END, FIELD_CHECKS, MAX_LIST_ITEMS, NUMBER_FIELDS, shown

__all__ = ["TAGS", "TRAILING", "COLUMNS", "ARRAYS", "SiteNumbers", "site_line", "read_site_line", "read_compact"]

TAGS: Dict[str, type] = {"n": NodeCreated, "f": BackwardFnFired, "g": GradAccumulated}
TAG_OF = {cls: tag for tag, cls in TAGS.items()}
TRAILING: Dict[type, tuple] = {  # (field, its value when unset): left out at the end of a line
    NodeCreated: (("function", None), ("module", None), ("tensor", None)),
    BackwardFnFired: (),
    GradAccumulated: (("replaced", False), ("site", None)),
}
COLUMNS = {tag: ["seq", *cls._fields[2:]] for tag, cls in TAGS.items()}  # what the header lists
_new = tuple.__new__


def _line_items(cls: type) -> Callable[..., Optional[tuple]]:
    """The array of one captured event of ``cls`` (its fields after ``seq`` and ``t``), or
    None when it needs an object line: a number that is not a finite float (NaN, ±inf,
    a complex, an int), which JSON arrays cannot carry as orjson writes them."""
    names = list(cls._fields[2:])
    scalars = [f for f in names if f in NUMBER_FIELDS]
    trailing = [f for f, _ in TRAILING[cls]]
    kept = [f for f in names if f not in trailing]
    checked = " + ".join(f"(0.0 if {f} is None else {f})" for f in scalars)
    lines = ["def items(seq, raw, number=None):",
             f"    _, {', '.join(names)}, = raw",
             "    try:",
             f"        total = {checked}",
             "    except TypeError:  # a number that does not add to a float",
             "        return None",
             "    if total.__class__ is not float or total - total != 0.0:",
             "        return None"]
    if "function" in names:  # a node's site and function: the number of their site line
        lines += ["    if number is not None and site is not None:",
                  "        site, function = number(site, function), None"]
    for i in range(len(trailing), 0, -1):  # the longest tail that is all unset goes
        unset = " and ".join(f"{f} is {d!r}" for f, d in TRAILING[cls][len(trailing) - i:])
        written = kept + trailing[:len(trailing) - i]
        lines += [f"    if {unset}:", f"        return ({TAG_OF[cls]!r}, seq, {', '.join(written)})"]
    lines.append(f"    return ({TAG_OF[cls]!r}, seq, {', '.join(names)})")
    scope: dict = {}
    exec(compile("\n".join(lines) + "\n", f"<compact line of {cls.kind}>", "exec"), scope)
    return scope["items"]


ARRAYS = tuple(_line_items(cls) for cls in (NodeCreated, BackwardFnFired, GradAccumulated))
"""Per captured kind (its index in :data:`~.captured.CAPTURED`), ``(seq, raw, number) ->
array or None``; ``number(site, function)`` gives a site's number (:class:`SiteNumbers`)."""


class SiteNumbers:
    """The sites one trace file has defined, numbered from 0 as they first appear.

    A node's site and function (``"train.py:14"``, ``"step"``) are the same for every
    node a line makes in a loop, so a file writes them once, in a site line
    (``{"site_no": 0, "site": "train.py:14", "function": "step"}``), and a compact node
    line holds the number instead, its function slot left out.
    """

    def __init__(self) -> None:
        self.numbers: Dict[tuple, int] = {}
        self.new: List[bytes] = []  # site lines not yet written

    def number(self, site: str, function: Optional[str]) -> int:
        key = (site, function)
        found = self.numbers.get(key)
        if found is None:
            found = self.numbers[key] = len(self.numbers)
            self.new.append(site_line(found, site, function))
        return found

    def take_new(self) -> bytes:
        """The site lines defined since the last call, to go before the lines using them."""
        new, self.new = self.new, []
        return b"".join(new)


def site_line(number: int, site: str, function: Optional[str]) -> bytes:
    """The line defining site ``number``; json's ASCII keeps any text (a lone surrogate) exactly."""
    return (json.dumps({"site_no": number, "site": site, "function": function},
                       separators=(",", ":")) + "\n").encode()


def read_site_line(data: dict, sites: Dict[int, tuple]) -> None:
    """Learn the site a site line defines; ValueError names what is wrong with it."""
    number, site, function = data.get("site_no"), data.get("site"), data.get("function")
    if len(data) != 3 or not (number.__class__ is int and 0 <= number < _ID_END) \
            or site.__class__ is not str or not (function is None or function.__class__ is str):
        raise ValueError('a site line holds "site_no" (a whole number), "site" (a string) and '
                         '"function" (a string or null), and nothing else')
    sites[number] = (site, function)


def _array_reader(cls: type) -> Callable[[list, float, dict], Optional[Event]]:
    """The event of a plainly valid array of ``cls`` at time ``t``, or None (the careful
    path then gives the same event or names what is wrong)."""
    names = list(cls._fields[2:])
    tail = TRAILING[cls]
    least = 2 + len(names) - len(tail)
    unpack = [f"    if n < {least} or n > {2 + len(names)}:", "        return None",
              f"    if n < {2 + len(names)}:",
              f"        items = items + {[d for _, d in tail]!r}[n - {2 + len(names)}:]",
              f"    _, seq, {', '.join(names)}, = items"]
    lines = ["def read(items, t, sites):", "    n = len(items)"]
    if cls is NodeCreated:  # a site number: its site and function in their slots
        lines += ["    if n == 8 and items[7].__class__ is int:  # the common node: nothing after its site",
                  "        _, seq, node, op, value, parents, name, number = items",
                  "        where = sites.get(number)",
                  "        if where is None:",
                  "            return None",
                  "        site, function = where",
                  "        module = tensor = None",
                  "    else:",
                  "        if n > 7 and items[7].__class__ is int:",
                  "            where = sites.get(items[7])",
                  "            if where is None or n > 8 and items[8] is not None:",
                  "                return None",
                  "            items = [*items[:7], *where, *items[9:]]",
                  "            n = len(items)"]
        lines += ["    " + line for line in unpack]
    else:
        lines += unpack
    for f in ["seq", *names]:
        condition, value = FIELD_CHECKS[f].plain
        lines += [f"    v = {f}", f"    if not ({condition}):", "        return None"]
        if value != "v":
            lines.append(f"    {f} = {value}")
    lines.append(f"    return new(cls, (seq, t, {', '.join(names)}))")
    scope: dict = {"END": _ID_END, "MOST": MAX_LIST_ITEMS, "INT": {int}, "FLOAT": {float},
                   "STR": {str}, "new": _new, "cls": cls}
    exec(compile("\n".join(lines) + "\n", f"<compact reader of {cls.kind}>", "exec"), scope)
    return scope["read"]


_READERS = {tag: _array_reader(cls) for tag, cls in TAGS.items()}


def read_compact(items: list, t: float, sites: Optional[Dict[int, tuple]] = None) -> Event:
    """The event of a compact line's array, at time ``t``, its site number looked up in
    ``sites`` (:func:`read_site_line`); ValueError names what is wrong.

    >>> read_compact(["f", 4, 1, 7, 2.0, 2.0], 0.5)
    BackwardFnFired(seq=4, t=0.5, pass_no=1, node=7, grad=2.0, upstream=2.0)
    >>> read_compact(["n", 5, 8, "", 1.0, [], "x", 0], 0.5, {0: ("f.py:3", "<module>")}).site
    'f.py:3'
    """
    tag = items[0] if items else None
    try:
        read = _READERS.get(tag)
    except TypeError:  # a list or object: not a tag
        read = None
    if read is None:
        known = ", ".join(f'"{tag}" ({cls.kind})' for tag, cls in TAGS.items())
        raise ValueError(f"an array line must start with a tag ({known}), got {shown(tag)}")
    sites = {} if sites is None else sites
    event = read(items, t, sites)
    if event is not None:
        return event
    if tag == "n" and len(items) > 7 and items[7].__class__ is int:
        items = _sited(items, sites)
    cls = TAGS[tag]
    names = cls._fields[2:]
    tail = TRAILING[cls]
    if not 2 + len(names) - len(tail) <= len(items) <= 2 + len(names):
        least = 2 + len(names) - len(tail)
        raise ValueError(f"a {cls.kind} array holds {least} to {2 + len(names)} values (the tag, seq, "
                         f"{', '.join(names)}), got {len(items)}")
    values = list(items[1:])
    missing = 2 + len(names) - len(items)
    if missing:
        values += [unset for _, unset in tail[len(tail) - missing:]]
    return from_dict({"kind": cls.kind, **dict(zip(("seq", *names), values)), "t": t})


def _sited(items: list, sites: Dict[int, tuple]) -> list:
    """A node array whose site is a number, with its site and function put back."""
    where = sites.get(items[7])
    if where is None:
        raise ValueError(f"node_created.site is site number {items[7]}, which no site line before it defines")
    if len(items) > 8 and items[8] is not None:
        raise ValueError(f"node_created.function must be left out or null when the site is a number, "
                         f"got {shown(items[8])}")
    return [*items[:7], *where, *items[9:]]

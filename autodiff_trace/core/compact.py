"""Compact trace lines: the hot events as JSON arrays, for a fraction of the cost and bytes.

A trace is almost all ``node_created``, ``backward_fn_fired`` and ``grad_accumulated``
events. A trace file writes each as a JSON array instead of an object: a tag (:data:`TAGS`),
then the event's fields in their order, ``seq`` and ``t`` left out (from version 4 the
line's ``seq`` is one more than the event before it; its ``t`` is that of the line before
it). The fields at the end are left out while a reader can tell them (:data:`IMPLIED`):
unset, or equal to what the line's other fields give (a firing's ``upstream`` equal to its
``grad``, a write's ``grad_after`` equal to ``grad_before + contribution``, bit for bit).
So ``["g",1,7,9,2.0,3.0,0.0]`` is a ``grad_accumulated`` of pass 1: target 7, fired by 9,
local grad 2.0, contribution 3.0, grad 0.0 before and so 3.0 after, added.
A node's site may be the number of a site line written once before it (:class:`SiteNumbers`).
A captured batch becomes its lines in one ``orjson.dumps`` (:func:`~.captured.lines_of`);
reading checks every value as an object line's are checked (:mod:`.fields`). Version 3
arrays, which hold their ``seq`` and only unset fields left out, still read.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Optional

from .events import BackwardFnFired, Event, GradAccumulated, NodeCreated, from_dict
from .fields import _ID_END, FIELD_CHECKS, MAX_LIST_ITEMS, NUMBER_FIELDS, FieldError, json_number, shown

__all__ = ["TAGS", "IMPLIED", "COLUMNS", "ARRAYS", "BATCH_ARRAYS", "SiteNumbers", "site_line", "read_site_line", "read_compact"]

TAGS: Dict[str, type] = {"n": NodeCreated, "f": BackwardFnFired, "g": GradAccumulated}
TAG_OF = {cls: tag for tag, cls in TAGS.items()}
IMPLIED: Dict[type, tuple] = {  # (field, what a reader takes when it is left out): the last fields of a line
    NodeCreated: (("function", "None"), ("module", "None"), ("tensor", "None")),
    BackwardFnFired: (("upstream", "grad"),),
    GradAccumulated: (("grad_after", "grad_before + contribution"), ("replaced", "False"), ("site", "None")),
}
_VERSION_3 = {cls: tuple((f, d) for f, d in implied if d in ("None", "False")) for cls, implied in IMPLIED.items()}
COLUMNS = {tag: list(cls._fields[2:]) for tag, cls in TAGS.items()}  # what the header lists
DEFAULT_NAME = "f\"{op or 'leaf'}#{node}\""  # the name a compact node line writes as null (version 4)
_new = tuple.__new__


def _is_implied(field: str, implied: str) -> str:
    """The condition under which ``field`` may be left out: it holds ``implied`` (for a
    number, the same float bit for bit: -0.0 is not 0.0)."""
    if implied in ("None", "False"):
        return f"{field} is {implied}"
    return (f"{field} == ({implied}) and ({field} != 0.0 or "
            f"copysign(1.0, {field}) == copysign(1.0, {implied}))")


_NUMBER_SITE = ("if number is not None and site is not None:",
                "    site, function = number(site, function), None")
"""A node's site becomes the number of its site line, one lookup per node."""
_NUMBER_SITE_RUN = ("if site is last_site and function is last_function and last_site is not None:",
                    "    site, function = last_number, None",
                    "elif number is not None and site is not None:",
                    "    last_site, last_function = site, function",
                    "    site, function = last_number, _ = number(site, function), None")
"""The same, one lookup per run of nodes from one site (the loop keeps ``last_*``)."""


def _item_lines(cls: type, give=("return {}",), number_site=_NUMBER_SITE) -> List[str]:
    """Lines that give (``give``, its ``{}`` the result) the array of one captured event of
    ``cls`` (its fields after ``seq`` and ``t``, from ``raw``), or None when it needs an
    object line: a number that is not a finite float (NaN, ±inf, a complex, an int), so that
    an array always reads back as exactly its event. A node's site is numbered by ``number_site``."""
    names = list(cls._fields[2:])
    scalars = [f for f in names if f in NUMBER_FIELDS]
    implied = IMPLIED[cls]
    trailing = [f for f, _ in implied]
    kept = [f for f in names if f not in trailing]
    floats = " and ".join(f"({f} is None or {f}.__class__ is float)" if f == "local_grad"
                          else f"{f}.__class__ is float" for f in scalars)  # local_grad may be null
    total = " + ".join(f"(0.0 if {f} is None else {f})" if f == "local_grad" else f for f in scalars)

    def given(result: str) -> List[str]:
        return ["    " + line.format(result) for line in give]

    lines = [f"_, {', '.join(names)}, = raw",
             f"if not ({floats}):  # an int would read back as a float",
             *given("None"),
             f"total = {total}",
             "if total - total != 0.0:",
             *given("None")]
    if cls is NodeCreated:  # a default name (DEFAULT_NAME) is null; a site, the number of its site line
        lines += [f"if (('#' in name) if name.__class__ is str else True) and name == {DEFAULT_NAME}:",
                  "    name = None",
                  *number_site]
    for i in range(len(trailing), 0, -1):  # the longest tail a reader can tell goes
        tail = implied[len(trailing) - i:]
        condition = " and ".join(_is_implied(f, d) for f, d in reversed(tail))  # the cheap tests first
        written = kept + trailing[:len(trailing) - i]
        lines += [f"if {condition}:", *given(f"({TAG_OF[cls]!r}, {', '.join(written)})")]
    lines += [line[4:] for line in given(f"({TAG_OF[cls]!r}, {', '.join(names)})")]
    return lines


def _compiled(source: List[str], name: str, kind: str) -> Callable:
    scope: dict = {"copysign": math.copysign}
    exec(compile("\n".join(source) + "\n", f"<compact line of {kind}>", "exec"), scope)
    return scope[name]


def _line_items(cls: type) -> Callable[..., Optional[tuple]]:
    """``(raw, number=None) -> array or None`` for one captured event of ``cls`` (:func:`_item_lines`)."""
    return _compiled(["def items(raw, number=None):", *["    " + line for line in _item_lines(cls)]],
                     "items", cls.kind)


def _batch_items() -> Callable[[list, Optional[Callable]], list]:
    """``(batch, number) -> [array or None, ...]`` for a captured batch: every kind's
    :func:`_item_lines` inline in one loop, no call per event; a node's site number is
    looked up once per run of nodes from one site."""
    lines = ["def batch_items(batch, number=None):",
             "    arrays = []",
             "    append = arrays.append",
             "    last_site = last_function = last_number = None",
             "    for raw in batch:",
             "        kind = raw[0]"]
    for kind, cls in ((2, GradAccumulated), (1, BackwardFnFired), (0, NodeCreated)):
        body = _item_lines(cls, give=("append({})", "continue"), number_site=_NUMBER_SITE_RUN)
        lines += [f"        {'if' if kind == 2 else 'elif' if kind == 1 else 'else'}"
                  f"{f' kind == {kind}' if kind else ''}:  # {cls.kind}",
                  *["            " + line for line in body]]
    lines.append("    return arrays")
    return _compiled(lines, "batch_items", "a batch")


ARRAYS = tuple(_line_items(cls) for cls in (NodeCreated, BackwardFnFired, GradAccumulated))
"""Per captured kind (its index in :data:`~.captured.CAPTURED`), ``(raw, number) ->
array or None``; ``number(site, function)`` gives a site's number (:class:`SiteNumbers`)."""
BATCH_ARRAYS = _batch_items()
"""``(batch, number) -> [array or None, ...]``: :data:`ARRAYS` over a whole captured batch."""


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

    def by_number(self) -> Dict[int, tuple]:
        """Each site number's (site, function), as :func:`read_compact` looks them up."""
        return {number: where for where, number in self.numbers.items()}

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


def _array_reader(cls: type, head: int, implied: tuple) -> Callable[[list, int, float, dict], Optional[Event]]:
    """The event of a plainly valid array of ``cls`` at time ``t``, or None (the careful
    path then gives the same event or names what is wrong). ``head`` items come before the
    fields: the tag (version 4, ``seq`` given), or the tag and the ``seq`` (version 3)."""
    names = list(cls._fields[2:])
    full = head + len(names)
    least = full - len(implied)
    first = "_, seq" if head == 2 else "_"
    padding = "[" + ", ".join(d if d in ("None", "False") else "None" for _, d in implied) + "]"
    unpack = [f"    if n < {least} or n > {full}:", "        return None",
              f"    if n < {full}:",
              f"        items = items + {padding}[n - {full}:]",
              f"    {first}, {', '.join(names)}, = items"]
    lines = ["def read(items, seq, t, sites):", "    n = len(items)"]
    if cls is NodeCreated:  # a site number: its site and function in their slots
        at = head + names.index("site")
        lines += [f"    if n == {at + 1} and items[{at}].__class__ is int:  # the common node: nothing after its site",
                  f"        {first}, node, op, value, parents, name, number = items",
                  "        where = sites.get(number)",
                  "        if where is None:",
                  "            return None",
                  "        site, function = where",
                  "        module = tensor = None",
                  "    else:",
                  f"        if n > {at} and items[{at}].__class__ is int:",
                  f"            where = sites.get(items[{at}])",
                  f"            if where is None or n > {at + 1} and items[{at + 1}] is not None:",
                  "                return None",
                  f"            items = [*items[:{at}], *where, *items[{at + 2}:]]",
                  "            n = len(items)"]
        lines += ["    " + line for line in unpack]
    else:
        lines += unpack
    computed = {f: d for f, d in implied if d not in ("None", "False")}
    for f in (["seq"] if head == 2 else []) + names:
        condition, value = FIELD_CHECKS[f].plain
        check = [f"    v = {f}", f"    if not ({condition}):", "        return None"]
        if value != "v":
            check.append(f"    {f} = {value}")
        if f == "name" and head == 1:  # null: the default name, from the node's op and id
            check = ["    if name is None:", f"        name = {DEFAULT_NAME}", *check]
        if f in computed:  # left out: what the fields before it give
            check = [f"    if n > {head + names.index(f)}:", *["    " + line for line in check],
                     "    else:", f"        {f} = {computed[f]}"]
        lines += check
    lines.append(f"    return new(cls, (seq, t, {', '.join(names)}))")
    scope: dict = {"END": _ID_END, "MOST": MAX_LIST_ITEMS, "INT": {int}, "FLOAT": {float},
                   "STR": {str}, "new": _new, "cls": cls}
    exec(compile("\n".join(lines) + "\n", f"<compact reader of {cls.kind}>", "exec"), scope)
    return scope["read"]


_READERS = {(tag, 1): _array_reader(cls, 1, IMPLIED[cls]) for tag, cls in TAGS.items()}
_READERS.update({(tag, 2): _array_reader(cls, 2, _VERSION_3[cls]) for tag, cls in TAGS.items()})


def read_compact(items: list, t: float, sites: Optional[Dict[int, tuple]] = None,
                 seq: Optional[int] = None) -> Event:
    """The event of a compact line's array, at time ``t``, its site number looked up in
    ``sites`` (:func:`read_site_line`); ValueError names what is wrong. ``seq`` is the
    event's number, which a line of version 4 leaves out (one more than the event before
    it); None reads a line of version 3, which holds it.

    >>> read_compact(["f", 1, 7, 2.0], 0.5, seq=4)
    BackwardFnFired(seq=4, t=0.5, pass_no=1, node=7, grad=2.0, upstream=2.0)
    >>> read_compact(["n", 8, "", 1.0, [], "x", 0], 0.5, {0: ("f.py:3", "<module>")}, seq=5).site
    'f.py:3'
    >>> read_compact(["f", 4, 1, 7, 2.0, 2.0], 0.5)  # version 3
    BackwardFnFired(seq=4, t=0.5, pass_no=1, node=7, grad=2.0, upstream=2.0)
    """
    tag = items[0] if items else None
    head = 2 if seq is None else 1
    try:
        read = _READERS.get((tag, head))
    except TypeError:  # a list or object: not a tag
        read = None
    if read is None:
        known = ", ".join(f'"{tag}" ({cls.kind})' for tag, cls in TAGS.items())
        raise ValueError(f"an array line must start with a tag ({known}), got {shown(tag)}")
    sites = {} if sites is None else sites
    event = read(items, seq, t, sites)
    if event is not None:
        return event
    cls = TAGS[tag]
    names = cls._fields[2:]
    at = head + names.index("site") if cls is NodeCreated else 0
    if at and len(items) > at and items[at].__class__ is int:
        items = _sited(items, sites, at)
    implied = _VERSION_3[cls] if head == 2 else IMPLIED[cls]
    full = head + len(names)
    if not full - len(implied) <= len(items) <= full:
        raise ValueError(f"a {cls.kind} array holds {full - len(implied)} to {full} values (the tag, "
                         f"{'seq, ' if head == 2 else ''}{', '.join(names)}), got {len(items)}")
    fields = dict(zip(names, items[head:]))
    if head == 1 and cls is NodeCreated and fields["name"] is None and fields["op"].__class__ is str:
        fields["name"] = eval(DEFAULT_NAME, {}, fields)  # the expression the quick reader inlines
    for name, value in implied[len(implied) - (full - len(items)):]:
        fields[name] = _implied(cls, value, fields)
    return from_dict({"kind": cls.kind, "seq": items[1] if head == 2 else seq, "t": t, **fields})


def _implied(cls: type, implied: str, fields: dict) -> Any:
    """The JSON value of a field left out: ``None``, ``False``, or the number its
    expression gives from the fields before it (each checked first, so an error names it)."""
    if implied in ("None", "False"):
        return None if implied == "None" else False
    operands = {}
    for name in implied.split(" + "):
        if name in fields:
            try:
                operands[name] = FIELD_CHECKS[name](fields[name])
            except FieldError as wrong:
                raise ValueError(wrong.message(cls.kind, name)) from None
    return json_number(eval(implied, {}, operands))  # an expression of IMPLIED's, never a line's text


def _sited(items: list, sites: Dict[int, tuple], at: int) -> list:
    """A node array whose site (item ``at``) is a number, with its site and function put back."""
    where = sites.get(items[at])
    if where is None:
        raise ValueError(f"node_created.site is site number {items[at]}, which no site line before it defines")
    if len(items) > at + 1 and items[at + 1] is not None:
        raise ValueError(f"node_created.function must be left out or null when the site is a number, "
                         f"got {shown(items[at + 1])}")
    return [*items[:at], *where, *items[at + 2:]]

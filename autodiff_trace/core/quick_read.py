"""The common event line read in one generated function per kind, without a call per field.

:func:`~.events.from_dict` checks every field with its check in
:data:`~.fields.FIELD_CHECKS`, one call each. A trace file of millions of events is
almost all common lines: ids that are plain whole numbers, finite floats, strings. For
each event class a function is generated that tests every field inline (each check's
``plain`` condition, beside the check in :mod:`.fields`) and builds the event at once
when all of them are plainly valid; for anything else it returns None and
the reader takes the careful path, which gives the same event or names what is wrong.
So the two can never disagree on a valid line, and the careful path alone words errors.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from .fields import _ID_END, FIELD_CHECKS, MAX_LIST_ITEMS

__all__ = ["quick_reader"]

def quick_reader(cls: type, optional: tuple = (), paired: Optional[tuple] = None) -> Callable[[dict], object]:
    """The function reading a plainly valid dict of ``cls`` (kind included) into its event,
    or giving None. ``optional`` fields may be absent (read as None); ``paired`` names two
    list fields that must be as long as each other."""
    names = cls._fields
    required = [f for f in names if f not in optional]
    lines = ["def read(data):",
             f"    if len(data) != {len(required) + 1}" + "".join(f" + ({f!r} in data)" for f in optional) + ":",
             "        return None",
             "    try:"]
    lines += [f"        {f} = data[{f!r}]" for f in required]
    lines += ["    except KeyError:", "        return None"]
    lines += [f"    {f} = data.get({f!r})" for f in optional]
    for f in names:
        condition, value = FIELD_CHECKS[f].plain
        lines += [f"    v = {f}", f"    if not ({condition}):", "        return None"]
        if value != "v":
            lines.append(f"    {f} = {value}")
    if paired is not None:
        lines += [f"    if len({paired[0]}) != len({paired[1]}):", "        return None"]
    lines.append(f"    return new(cls, ({', '.join(names)},))")
    scope: Dict[str, object] = {"END": _ID_END, "MOST": MAX_LIST_ITEMS, "INT": {int}, "FLOAT": {float},
                                "STR": {str}, "new": tuple.__new__, "cls": cls}
    exec(compile("\n".join(lines) + "\n", f"<quick reader of {cls.kind}>", "exec"), scope)
    return scope["read"]

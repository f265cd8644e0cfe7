"""Where user code made a node, and what the user called it.

Both look at the caller's frame, so they run only while a tracer listens. Names
come from the assignment on that line: ``x = Value(2.0)`` names ``x``, ``u = x + 2``
names ``u``. A line may make several nodes (``z = mul(add(x, y), add(x, y))``,
``loss = sum(losses)``); the tracer gives the name to the last one, the result.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from types import FrameType
from typing import Container, Optional, Tuple

from .text import number

__all__ = ["default_name", "user_frame", "user_site", "format_site", "assigned_name", "describe_line",
           "label_source", "locate_site", "element_name"]

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # autodiff_trace/


def user_frame(skip: Container = ()) -> Optional[FrameType]:
    """The innermost frame outside this package whose code is not in ``skip``."""
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename.startswith(PACKAGE_DIR) or frame.f_code in skip
    ):
        frame = frame.f_back
    return frame


def format_site(frame: FrameType) -> Tuple[str, str]:
    """``("path/to/file.py:14", "function")`` for a frame, the path relative when short;
    ``("cell 5, line 3", ...)`` for code registered with :func:`label_source`."""
    code = frame.f_code
    label = _labels.get(code.co_filename)
    if label is not None:
        return f"{label}, line {frame.f_lineno}", code.co_name
    return f"{_display_path(code.co_filename)}:{frame.f_lineno}", code.co_name


_labels: dict = {}  # filename -> "cell 5": code that is not a file, e.g. a notebook cell
_labelled: dict = {}  # "cell 5" -> filename


def label_source(filename: str, label: str) -> None:
    """Show sites in code compiled as ``filename`` as ``"<label>, line N"`` (a notebook cell's
    code, say); its source must be in linecache under ``filename``."""
    _labels[filename], _labelled[label] = label, filename
    for key in [k for k in _lines if k[0] == filename]:  # the name may have held other code
        del _lines[key]
    for memo in memos:
        memo.clear()


memos: list = []  # dicts of described lines kept elsewhere (per instruction): cleared with _lines


def locate_site(site: str) -> Optional[Tuple[str, int]]:
    """``(filename, line)`` of a site, for linecache: ``"f.py:14"`` or ``"cell 5, line 3"``.

    >>> locate_site("examples/f.py:14"), locate_site("f.py"), locate_site("cell 99, line 3")
    (('examples/f.py', 14), None, None)
    """
    label, sep, line = site.rpartition(", line ")
    if sep:
        filename = _labelled.get(label)
    else:
        filename, sep, line = site.rpartition(":")
    if not sep or not filename or not line.isdigit():
        return None
    return filename, int(line)


def user_site() -> Optional[str]:
    """``file:line`` of the user code running now, or None."""
    frame = user_frame()
    return None if frame is None else format_site(frame)[0]


_paths: dict = {}


def _display_path(filename: str) -> str:
    shown = _paths.get(filename)
    if shown is None:
        shown = filename
        if os.path.isabs(filename):
            try:
                relative = os.path.relpath(filename)
            except ValueError:  # another drive on Windows
                relative = filename
            if not relative.startswith(".." + os.sep):
                shown = relative
        _paths[filename] = shown
    return shown


_lines: dict = {}


def describe_line(frame: FrameType) -> Tuple[str, str, Optional[str], int]:
    """``(site, function, assigned name, line number)`` for the frame's current line,
    cached per line."""
    code = frame.f_code  # code objects of two files can compare equal: key on the file too
    key = (code.co_filename, code.co_name, frame.f_lineno)
    described = _lines.get(key)
    if described is None:
        # Lambdas and generator expressions run inside a line but assign nothing.
        named = code.co_name == "<module>" or not code.co_name.startswith("<")
        described = (*format_site(frame), assigned_name(frame) if named else None, frame.f_lineno)
        _lines[key] = described
    return described


def assigned_name(frame: FrameType) -> Optional[str]:
    """The name the frame's current line assigns its result to, if it is a one-line assignment."""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
    return _name_from_line(line.strip())  # describe_line caches it, per line


def _name_from_line(line: str) -> Optional[str]:
    """The name a one-line assignment of an op or call gives its result.

    >>> _name_from_line("x = Value(2.0)"), _name_from_line("u = x + 2"), _name_from_line("self.w = -a")
    ('x', 'u', 'w')
    >>> _name_from_line("z = mul(add(x, y), add(x, y))"), _name_from_line("loss += l2")
    ('z', 'loss')
    >>> _name_from_line("a, b = f(), g()") is None, _name_from_line("ys = [w * x for w in ws]") is None
    (True, True)
    """
    try:
        tree = ast.parse(line)
    except SyntaxError:  # part of a statement spread over several lines
        return None
    if len(tree.body) != 1:
        return None
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, value = stmt.targets[0], stmt.value
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        target, value = stmt.target, stmt.value
    else:
        return None
    if not isinstance(stmt, ast.AugAssign) and not isinstance(value, (ast.BinOp, ast.UnaryOp, ast.Call)):
        return None  # a literal, a list, a comprehension: not one node
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


_elements: dict = {}


def element_name(frame: Optional[FrameType], skip: Container = ()) -> Optional[str]:
    """The name a tuple assignment gives the call running in ``frame`` (or, past the op
    functions in ``skip``, in its caller): ``b`` for ``Value(0.1)`` in
    ``w1, w2, b = Value(0.5), Value(-0.3), Value(0.1)``; None anywhere else."""
    while frame is not None and (frame.f_code.co_filename.startswith(PACKAGE_DIR) or frame.f_code in skip):
        frame = frame.f_back
    for _ in range(2):  # the line making the node, or the line calling the function that did
        if frame is None:
            return None
        name = _element_at(frame)
        if name is not None or frame.f_code.co_name == "<module>":
            return name
        frame = frame.f_back  # a helper such as new_var(tape, 0.5), called by the script's top level
        if frame is None or frame.f_code.co_name != "<module>":
            return None
    return None


_assigns_tuples: dict = {}  # id(code) -> (code, does any line of it assign a tuple of calls?)


def _element_at(frame: FrameType) -> Optional[str]:
    code = frame.f_code
    known = _assigns_tuples.get(id(code))  # most code has no such line: one lookup per node
    if known is None:
        lines = {line for _, _, line in code.co_lines() if line is not None}
        known = _assigns_tuples[id(code)] = (
            code, any(_elements_on(code.co_filename, line, frame.f_globals) for line in lines))
    if not known[1]:
        return None
    elements = _elements_on(code.co_filename, frame.f_lineno, frame.f_globals)
    if not elements:
        return None
    try:
        position = list(code.co_positions())[frame.f_lasti // 2]
    except (AttributeError, IndexError):
        return None
    if position[0] != frame.f_lineno:
        return None
    return elements.get((position[2], position[3]))


def _elements_on(filename: str, lineno: int, module_globals: dict) -> dict:
    """:func:`_tuple_elements` of a line of a file, read once."""
    key = (filename, lineno)
    elements = _elements.get(key)
    if elements is None:
        elements = _elements[key] = _tuple_elements(linecache.getline(filename, lineno, module_globals))
    return elements


def _tuple_elements(line: str) -> dict:
    """``{(start column, end column): name}`` for each call assigned by a one-line tuple
    assignment; empty for any other line.

    >>> _tuple_elements("  a, b = f(1), g(2)")
    {(9, 13): 'a', (15, 19): 'b'}
    """
    indent = len(line.encode("utf-8")) - len(line.lstrip().encode("utf-8"))
    try:
        tree = ast.parse(line.strip())
    except SyntaxError:
        return {}
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign) or len(tree.body[0].targets) != 1:
        return {}
    target, value = tree.body[0].targets[0], tree.body[0].value
    if not isinstance(target, ast.Tuple) or not isinstance(value, ast.Tuple) \
            or len(target.elts) != len(value.elts):
        return {}
    return {(v.col_offset + indent, v.end_col_offset + indent): t.id
            for t, v in zip(target.elts, value.elts)
            if isinstance(t, ast.Name) and isinstance(v, ast.Call)}


def default_name(node_id: int, op: str, data: float) -> str:
    """The name of a node nobody named: its op and id, or a constant's value.

    >>> default_name(7, "mul", 6.0), default_name(3, "", 2.0), default_name(4, "const", 2.0)
    ('mul#7', 'leaf#3', '2')
    """
    if op == "const":
        key = (data.__class__, data)
        name = _constant_names.get(key)
        if name is None:
            if len(_constant_names) >= 4096:  # a script's constants are few; data wrapped one by one is not
                _constant_names.clear()
            name = _constant_names[key] = number(data)
        return name
    return f"{op or 'leaf'}#{node_id}"


# A constant's value -> its name, so that a loop's constants (``y * 1.0000001``) share one
# string, not one per node. Keyed by the value's type too: 1.0 and 1 + 0j are equal keys.
_constant_names: dict = {}

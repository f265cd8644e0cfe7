"""Where in the user's code a pass began, or a traversal fired a node: read from the
call stack while the engine runs.

The events say which node fired, not which line of the user's traversal fired it, and
a pass's start names no line at all. While a tracer listens, the analyzer runs inside
the engine's call, so the user's frames are still on the stack: these helpers read
them (never change them). Replayed events have no such stack, and get ``None``.
"""

from __future__ import annotations

import ast
import linecache
import re
import sys
from types import FrameType
from typing import Dict, List, Optional, Tuple

from ..core.sites import PACKAGE_DIR, format_site
from ..core.tracer import active_tracer

__all__ = ["begin_site", "firing_site", "LoopSite", "source_line"]

# A function that runs a backward pass, as learners name it: backward, backprop,
# _backward_recursive, grad, gradients, backpropagate, adjoints.
_RUNS_BACKWARD = re.compile(r"backward|backprop|grad|adjoint", re.IGNORECASE)


def source_line(site: Optional[str]) -> Optional[str]:
    """The stripped source text at ``"path.py:14"`` or ``"cell 5, line 3"``, or None when
    it cannot be read."""
    from ..core.sites import locate_site

    where = locate_site(site) if site else None
    if where is None:
        return None
    return linecache.getline(*where).strip() or None


ENGINE_DIR = PACKAGE_DIR + "engine"


def _user_frames(limit: int = 64) -> Tuple[List[FrameType], bool]:
    """The frames of user code on the stack, innermost first, and whether the innermost
    one called this package's own engine (``Value.backward``) rather than being a user
    engine's code seen by the adapters. None when no pass is being traced (a replay has
    no user code on its stack)."""
    tracer = active_tracer()
    if tracer is None or not tracer.in_pass:
        return [], False
    frames, frame, inner = [], sys._getframe(1), None
    while frame is not None and len(frames) < limit:
        if not frame.f_code.co_filename.startswith(PACKAGE_DIR):
            frames.append(frame)
        elif not frames:
            inner = frame
        frame = frame.f_back
    return frames, inner is not None and inner.f_code.co_filename.startswith(ENGINE_DIR)


def begin_site() -> Optional[str]:
    """The user's line that began the backward pass under way: the caller of the
    engine's backward function (``loss.backward()`` in the training loop). For a user
    engine, the pass is noticed inside its code (a grad write, a rule firing): step out
    to the first frame whose function runs backward passes by its name, then past every
    such frame (a recursive backward)."""
    frames, via_engine = _user_frames()
    if not frames:
        return None
    if via_engine:
        return format_site(frames[0])[0]
    named = [bool(_RUNS_BACKWARD.search(f.f_code.co_name)) for f in frames[:8]]
    if True in named:
        i = named.index(True)
        while i + 1 < len(frames) and _RUNS_BACKWARD.search(frames[i].f_code.co_name):
            i += 1
        return format_site(frames[i])[0]
    return format_site(frames[0])[0]


class LoopSite:
    """The traversal that fired a node: the recursive call, or the loop around the call,
    and the module-level list the loop walks (a list that outlives the pass)."""

    __slots__ = ("site", "code", "list_name", "list_site")

    def __init__(self, site: str, code: Optional[str], list_name: Optional[str] = None,
                 list_site: Optional[str] = None) -> None:
        self.site, self.code, self.list_name, self.list_site = site, code, list_name, list_site


def firing_site(writing: Optional[str] = None) -> Optional[LoopSite]:
    """Where the node now firing was fired from: the recursive call that reached it (a
    recursive backward), else the ``for``/``while`` loop around the call, else the call.
    ``writing``: the site of a grad write under way inside a backward function, whose
    frame is then the function's own, not the traversal's."""
    frames, _ = _user_frames()
    if writing is not None and len(frames) > 1 and format_site(frames[0])[0] == writing:
        frames = frames[1:]
    if not frames:
        return None
    frame = frames[0]
    if len(frames) > 1 and frames[1].f_code is frame.f_code:  # a recursive traversal
        caller = frames[1]
        site = format_site(caller)[0]
        return LoopSite(site, source_line(site))
    filename = frame.f_code.co_filename
    loop = _enclosing_loop(filename, frame.f_lineno)
    if loop is None:
        site = format_site(frame)[0]
        return LoopSite(site, source_line(site))
    line, names = loop
    site = _site_at(frame, line)
    code = linecache.getline(filename, line).strip() or None
    local = (*frame.f_code.co_varnames, *frame.f_code.co_cellvars, *frame.f_code.co_freevars)
    for name in names:  # a list the loop walks that lives in the module, not in the call
        if name not in local and name in frame.f_globals:
            where = _module_assignment(filename, name)
            if where is not None:
                return LoopSite(site, code, name, _site_at(frame, where))
    return LoopSite(site, code)


def _site_at(frame: FrameType, line: int) -> str:
    """The site of another line of the frame's file, written as its own site is."""
    own = format_site(frame)[0]
    head, sep, _ = own.rpartition(", line ")
    if sep:
        return f"{head}, line {line}"
    return f"{own.rpartition(':')[0]}:{line}"


_trees: Dict[str, Optional[ast.AST]] = {}


def _tree(filename: str) -> Optional[ast.AST]:
    if filename not in _trees:
        try:
            _trees[filename] = ast.parse("".join(linecache.getlines(filename)))
        except (SyntaxError, ValueError):
            _trees[filename] = None
    return _trees[filename]


_loops: Dict[Tuple[str, int], Optional[Tuple[int, Tuple[str, ...]]]] = {}


def _enclosing_loop(filename: str, line: int) -> Optional[Tuple[int, Tuple[str, ...]]]:
    """The first line of the innermost loop whose body holds ``line``, and the names
    its header reads (``order`` in ``for node in reversed(order):``)."""
    key = (filename, line)
    if key not in _loops:
        found = None
        tree = _tree(filename)
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, (ast.For, ast.While)) and node.body \
                    and node.body[0].lineno <= line <= (node.end_lineno or 0):
                if found is None or node.lineno > found[0]:
                    header = node.iter if isinstance(node, ast.For) else node.test
                    names = tuple(n.id for n in ast.walk(header) if isinstance(n, ast.Name))
                    found = (node.lineno, names)
        _loops[key] = found
    return _loops[key]


def _module_assignment(filename: str, name: str) -> Optional[int]:
    """The line where ``name`` is first assigned at the module level of ``filename``."""
    tree = _tree(filename)
    for stmt in getattr(tree, "body", ()):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return stmt.lineno
    return None

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
from ..adapters.engine_code import engine_files

__all__ = ["begin_site", "engine_pass_frames", "firing_site", "LoopSite", "source_line"]

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
    of the engine's files to the first frame outside them, whatever the function is
    called; when the engine shares the script's file, step out to the first frame whose
    function runs backward passes by its name, then past every such frame (a recursive
    backward)."""
    frames, via_engine = _user_frames()
    if not frames:
        return None
    if via_engine:
        return format_site(frames[0])[0]
    top = next((i for i, f in enumerate(frames) if f.f_code.co_name == "<module>"), len(frames))
    frames = frames[:top + 1]  # the script's top level calls its backward pass, never what ran the script
    engine = engine_files() | {frames[0].f_code.co_filename}  # the pass is noticed inside the engine
    outside = next((i for i, f in enumerate(frames) if f.f_code.co_filename not in engine), None)
    if outside is not None:  # the user's call into the engine, whatever the engine names its pass,
        while outside + 1 < len(frames) and _RUNS_BACKWARD.search(frames[outside].f_code.co_name):
            outside += 1  # past the script's own backward function (``def backprop(gates):``)
        return format_site(frames[outside])[0]
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

    __slots__ = ("site", "code", "list_name", "list_site", "step_site", "ready_site", "ready_code")

    def __init__(self, site: str, code: Optional[str], list_name: Optional[str] = None,
                 list_site: Optional[str] = None, step_site: Optional[str] = None) -> None:
        self.site, self.code, self.list_name, self.list_site = site, code, list_name, list_site
        self.step_site = step_site  # where each step of the caller's loop begins: empty it there
        # A worklist loop (``while ready:``): the test that puts a node on it decides when
        # the node fires, so a node fired out of order is that test's doing.
        self.ready_site: Optional[str] = None
        self.ready_code: Optional[str] = None


def engine_pass_frames() -> Optional[List[FrameType]]:
    """The user's frames while this package's engine runs the pass under way, or None for
    a user's engine. They stay as they are until the pass ends (no user code runs inside
    the pass), so :func:`firing_site` can read them after the pass's events were captured."""
    frames, via_engine = _user_frames()
    return frames if via_engine else None


def firing_site(writing: Optional[str] = None, frames: Optional[List[FrameType]] = None) -> Optional[LoopSite]:
    """Where the node now firing was fired from: the recursive call that reached it (a
    recursive backward), else the ``for``/``while`` loop around the call, else the call.
    ``writing``: the site of a grad write under way inside a backward function, whose
    frame is then the function's own, not the traversal's. ``frames``: the user's frames
    to read (:func:`engine_pass_frames`), instead of the stack now."""
    if frames is None:
        frames, _ = _user_frames()
    if writing is not None and len(frames) > 1 and format_site(frames[0])[0] == writing \
            and not _walks_nodes(frames[0]):
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
    line, names, _ = loop
    site = _site_at(frame, line)
    code = linecache.getline(filename, line).strip() or None
    found = _located(frame, frames, filename, line, site, code, names)
    ready = _ready_test(filename, line, names)
    if ready is not None:
        found.ready_site = _site_at(frame, ready)
        found.ready_code = linecache.getline(filename, ready).strip() or None
    return found


def _located(frame: FrameType, frames: List[FrameType], filename: str, line: int, site: str,
             code: Optional[str], names: Tuple[str, ...]) -> LoopSite:
    """The loop's site with the list it walks, when that list outlives the pass."""
    local = (*frame.f_code.co_varnames, *frame.f_code.co_cellvars, *frame.f_code.co_freevars)
    for name in names:  # a list the loop walks that lives in the module, not in the call
        if name not in local and name in frame.f_globals:
            where = _module_assignment(filename, name)
            if where is None:
                where = _shared_defaults(frame.f_globals[name], filename)
            if where is not None:
                return LoopSite(site, code, name, _site_at(frame, where))
    handed = _handed_in(frame, frames[1] if len(frames) > 1 else None, names, code)
    if handed is not None:
        return LoopSite(site, code, *handed)
    walked = _module_list_holding(frame, filename, line)
    if walked is not None:
        return LoopSite(site, code, *walked)
    if frame.f_code.co_argcount:  # a list the node keeps (self.children), made in __init__
        owner = frame.f_code.co_varnames[0]
        found = _init_assignment(filename, line, owner)
        if found is not None:
            return LoopSite(site, code, f"{owner}.{found[0]}", _site_at(frame, found[1]))
    return LoopSite(site, code)


_PUTS = {"append", "appendleft", "extend", "extendleft", "add", "put", "push", "insert"}


_ready: Dict[Tuple[str, int, Tuple[str, ...]], Optional[int]] = {}


def _ready_test(filename: str, loop_line: int, names: Tuple[str, ...]) -> Optional[int]:
    """The line of the ``if`` inside the loop at ``loop_line`` that puts nodes on the list
    the loop walks (``if waiting[src] == 0: ready.append(src)``), or None."""
    key = (filename, loop_line, names)
    if key not in _ready:
        _ready[key] = _find_ready_test(filename, loop_line, names)
    return _ready[key]


def _find_ready_test(filename: str, loop_line: int, names: Tuple[str, ...]) -> Optional[int]:
    tree = _tree(filename)
    for loop in ast.walk(tree) if tree is not None else ():
        if not isinstance(loop, (ast.For, ast.While)) or loop.lineno != loop_line:
            continue
        for test in sorted((n for n in ast.walk(loop) if isinstance(n, ast.If)), key=lambda n: n.lineno):
            for call in (c for stmt in test.body for c in ast.walk(stmt) if isinstance(c, ast.Call)):
                func = call.func
                onto = func.value if isinstance(func, ast.Attribute) and func.attr in _PUTS else \
                    call.args[0] if isinstance(func, ast.Name) and func.id == "heappush" and call.args else None
                if isinstance(onto, ast.Name) and onto.id in names:
                    return test.lineno
    return None


def _shared_defaults(function, filename: str) -> Optional[int]:
    """The ``def`` line of a function of ``filename`` whose default arguments hold a list,
    set or dict (``topo_sort(v, visited=set(), order=[])``): made once, they outlive every
    call, so the order the function returns does too."""
    code = getattr(function, "__code__", None)
    defaults = (*(getattr(function, "__defaults__", None) or ()),
                *(getattr(function, "__kwdefaults__", None) or {}).values())
    if code is None or code.co_filename != filename:
        return None
    if any(isinstance(value, (list, set, dict)) for value in defaults):
        return code.co_firstlineno
    return None


def _walks_nodes(frame: FrameType) -> bool:
    """True when the frame's line sits in a loop over each node's own parents or consumers
    nested in a loop over the nodes: the engine's traversal applying rules inline."""
    loop = _enclosing_loop(frame.f_code.co_filename, frame.f_lineno)
    return loop is not None and loop[2]


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


_loops: Dict[Tuple[str, int], Optional[Tuple[int, Tuple[str, ...], bool]]] = {}


def _enclosing_loop(filename: str, line: int) -> Optional[Tuple[int, Tuple[str, ...], bool]]:
    """The first line of the innermost loop whose body holds ``line``, the names its
    header reads (``order`` in ``for node in reversed(order):``), and whether it holds a
    loop over what its item holds (``for parent in node.parents:``): that inner loop runs
    one node's rule, and the traversal is the outer one.
    """
    key = (filename, line)
    if key not in _loops:
        tree = _tree(filename)
        around = sorted((node for node in (ast.walk(tree) if tree is not None else ())
                         if isinstance(node, (ast.For, ast.While)) and node.body
                         and node.body[0].lineno <= line <= (node.end_lineno or 0)),
                        key=lambda node: node.lineno)
        found = None
        while around:
            loop = around.pop()
            header = loop.iter if isinstance(loop, ast.For) else loop.test
            names = tuple(n.id for n in ast.walk(header) if isinstance(n, ast.Name))
            found = (loop.lineno, names, found is not None)
            outer = around[-1] if around else None
            if not _items_of(outer).intersection(names):
                break
        _loops[key] = found
    return _loops[key]


def _handed_in(frame: FrameType, caller: Optional[FrameType], names: Tuple[str, ...],
               code: Optional[str] = None) -> Optional[Tuple[str, str, Optional[str]]]:
    """``(name, site, step site)`` when the loop walks an argument that is a module-level
    list of the caller (``backward(tape, ...)`` with ``tape = []`` in the script), or an
    object of one holding the list walked (``for entry in reversed(tape.entries):``); the
    step site is the first line of the caller's loop around the call."""
    if caller is None:
        return None
    arguments = frame.f_code.co_varnames[:frame.f_code.co_argcount]
    for name in names:
        value = frame.f_locals.get(name) if name in arguments else None
        if not isinstance(value, (list, dict)) and not _holds_walked_list(value, name, code):
            continue
        held = [g for g, v in list(caller.f_globals.items()) if v is value]
        if not held:
            continue
        chosen = name if name in held else held[0]
        where, at = _module_assignment(caller.f_code.co_filename, chosen), caller
        if where is None:  # imported into the script: assigned in the engine's module
            own = [g for g, v in list(frame.f_globals.items()) if v is value]
            where, at = (_module_assignment(frame.f_code.co_filename, own[0]), frame) if own else (None, at)
        if where is not None:
            step = _body_start(caller.f_code.co_filename, caller.f_lineno)
            return (chosen, _site_at(at, where), _site_at(caller, step) if step is not None else None)
    return None


def _holds_walked_list(value, name: str, code: Optional[str]) -> bool:
    """Does ``value`` (an object, not a container) hold the list the loop header walks,
    ``name.attribute`` in ``code``?"""
    namespace = getattr(value, "__dict__", None)
    if code is None or type(namespace) is not dict:
        return False
    return any(type(v) is list and f"{name}.{attr}" in code for attr, v in list(namespace.items()))


def _body_start(filename: str, line: int) -> Optional[int]:
    """The first line of the body of the innermost loop holding ``line``."""
    tree = _tree(filename)
    loops = [n for n in (ast.walk(tree) if tree is not None else ()) if isinstance(n, (ast.For, ast.While))
             and n.body and n.body[0].lineno <= line <= (n.end_lineno or 0)]
    return max(loops, key=lambda n: n.lineno).body[0].lineno if loops else None


def _init_assignment(filename: str, loop_line: int, owner: str) -> Optional[Tuple[str, int]]:
    """``(attribute, line)`` when the loop at ``loop_line`` walks ``owner.attribute`` and
    the class around it assigns that attribute in its ``__init__``."""
    tree = _tree(filename)
    for cls in ast.walk(tree) if tree is not None else ():
        if not isinstance(cls, ast.ClassDef) or not cls.lineno <= loop_line <= (cls.end_lineno or 0):
            continue
        loops = [n for n in ast.walk(cls) if isinstance(n, ast.For) and n.lineno == loop_line]
        walked = {n.attr for loop in loops for n in ast.walk(loop.iter) if isinstance(n, ast.Attribute)
                  and isinstance(n.value, ast.Name) and n.value.id == owner}
        for init in cls.body:
            if isinstance(init, ast.FunctionDef) and init.name == "__init__" and init.args.args:
                me = init.args.args[0].arg
                for stmt in ast.walk(init):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                        [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                    for t in targets:
                        if isinstance(t, ast.Attribute) and t.attr in walked \
                                and isinstance(t.value, ast.Name) and t.value.id == me:
                            return t.attr, stmt.lineno
    return None


def _items_of(loop) -> set:
    """The names a ``for`` loop binds to its item, and those its body assigns from them
    (``entry`` in ``for i in ...: entry = tape[i]``)."""
    if not isinstance(loop, ast.For):
        return set()
    items = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
    for stmt in loop.body:
        if isinstance(stmt, ast.Assign) and items.intersection(
                n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)):
            items.update(n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return items


def _module_list_holding(frame: FrameType, filename: str, loop_line: int) -> Optional[Tuple[str, str]]:
    """``(name, site)`` of a module-level list holding the item the loop at ``loop_line`` is
    on, when the loop walks it through a call (``for t in reversed(self.deepwalk()):``,
    a helper appending to ``_visit_order``)."""
    tree = _tree(filename)
    loops = [n for n in (ast.walk(tree) if tree is not None else ())
             if isinstance(n, ast.For) and n.lineno == loop_line]
    targets = [t.id for loop in loops for t in ast.walk(loop.target) if isinstance(t, ast.Name)]
    items = [frame.f_locals.get(t) for t in targets]
    for name, value in list(frame.f_globals.items()):
        if type(value) is list and value and any(v is item for item in items if item is not None
                                                 for v in value):
            where = _module_assignment(filename, name)
            if where is not None:
                return name, _site_at(frame, where)
    return None


def _module_assignment(filename: str, name: str) -> Optional[int]:
    """The line where ``name`` is first assigned at the module level of ``filename``."""
    tree = _tree(filename)
    for stmt in getattr(tree, "body", ()):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return stmt.lineno
    return None

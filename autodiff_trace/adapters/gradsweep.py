"""Watch an engine's sweep write gradients into a dict.

The sweeps (see :func:`.gradmaps.sweeps_in`) are the only frames traced: a global trace
function returns at once for any other call, and only runs while an engine with a
sweep is being traced. In a sweep's frames, after each line that can change a dict,
the dicts the sweep holds are compared with what they held (by key identity: no user
``__eq__`` or ``__hash__`` runs); each entry that changed is handed to
:class:`.gradwrites.SweepWrites`, which makes passes of them. Each callback borrows room
above the recursion limit, so a sweep recursing as deep as the script allows still runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import CodeType, FrameType, FunctionType
from typing import Dict, Optional, Set, Tuple

from ..core.sites import PACKAGE_DIR
from ..core.tracer import active_tracer
from .detect import is_library_module
from .gradmaps import KeyResolver, held_apart, may_write, stored_entries, stores_entry, sweeps_in
from .gradwrites import MISSING, SweepWrites, Watched, hashes_plainly, is_gradient
from .hooks import REPORT_FRAMES
from .roles import instance_items, static_attr

__all__ = ["SweepWatch"]

_CALLBACK_DEPTH = 3  # what a trace callback adds above a sweep's frame: kept as headroom
_LARGEST = 1_000_000  # a dict bigger than this is a model's data, not one pass's gradients
_SCANNED = 20_000  # dicts compared entry by entry after a line that names no entry plainly
_RULE_DEPTH = 4  # calls below a node's method a sweep called, searched for the rule it hands over to
_NOT_RULES = frozenset({"<listcomp>", "<genexpr>", "<dictcomp>", "<setcomp>"})


class SweepWatch:
    """The sweeps of the engines being traced, and the pass running in one of them."""

    def __init__(self, reporter, named: Optional[Tuple[str, str]] = None) -> None:
        self.reporter = reporter
        self.named = named  # (module, qualname) of a sweep named by the user, watched whatever its shape
        self.resolver = KeyResolver(reporter)
        self.writes = SweepWrites(reporter, self.resolver)
        self.sweeps: Dict[str, Set[Tuple[str, int]]] = {}  # file -> (name, first line) of its sweeps
        self.unavailable: Optional[str] = None  # why the sweeps could not be watched
        self._verdict: Dict[int, Tuple[CodeType, bool]] = {}  # id(code) -> (code, is a sweep)
        self._hook = None  # the trace function installed, to compare identity
        self._broken = False
        self._outer: Optional[FrameType] = None  # the outermost sweep call running
        self._watched: Dict[int, Watched] = {}
        self._last: Optional[Tuple[FrameType, int]] = None  # the line executed last in a sweep
        self._handed = False  # that line called a function with a watched dict
        self._limit: Optional[Tuple[int, int]] = None  # (the script's limit, the one set)
        self._lent: Optional[Tuple[int, int]] = None  # (limit, limit lent) not yet taken back

    # -- on and off -------------------------------------------------------------------
    def watch(self, cls: type, vocab) -> None:
        """A node class is traced: watch the sweeps of the files its code is in, or that of
        a function its methods call by name (for a class with a grad attribute, only sweeps
        that return the dict they fill or start it from their first argument)."""
        methods = [v for k in cls.__mro__[:-1] for v in vars(k).values() if isinstance(v, FunctionType)]
        files = {f for f in {v.__code__.co_filename for v in methods} | _callee_files(methods)
                 if not f.startswith(PACKAGE_DIR)}  # the tool's own wrappers are no sweeps
        for filename in files - set(self.sweeps):
            self.sweeps[filename] = sweeps_in(filename, must_return=not held_apart(vocab))
            if self.sweeps[filename]:
                self._verdict.clear()  # code judged before may be one of them
        if self.named or any(self.sweeps.values()):
            self.reporter.ids.all_kept = True  # its dicts' keys are looked up among the live nodes
        if (self.named or any(self.sweeps.values())) and self._hook is None and self.unavailable is None:
            if sys.gettrace() is not None:
                self.unavailable = "another tool (a debugger, coverage) is tracing the script"
                return
            self._hook = self._on_call
            sys.settrace(self._hook)

    def describe(self) -> str:
        """How a node whose gradients live in a dict is found, for the "no node found" note."""
        told = ("A node that carries only a value, its gradients kept in a dict by node or id, is "
                "recognised when it sets a value on itself and overloads arithmetic, and a function "
                "of its file stores into a dict in a loop or a recursion; else name that function "
                "with --sweep module:function.")
        return told + (f" Sweeps were not watched: {self.unavailable}." if self.unavailable else "")

    def stop(self) -> None:
        """End the pass under way and take the trace function away."""
        tracer = active_tracer()
        if self._outer is not None:
            self._leave(tracer)
        self._give_back_limit()
        if self._hook is not None and sys.gettrace() is self._hook:
            sys.settrace(None)
        self._hook = None

    def _attribute_written(self, node, before, after, frame: FrameType) -> bool:
        """A grad attribute written while a sweep runs: True when the sweep's pass takes it."""
        if self._outer is None or self._broken:
            return False
        try:
            return self.writes.attribute_written(node, before, after, frame)
        except Exception as exc:  # never into the user's script
            self._fail(exc)
            return False

    def _fail(self, exc: Exception) -> None:
        self._broken = True
        self.reporter.failed(exc)
        self.writes.abandon(active_tracer())
        self._outer, self._watched = None, {}
        self.reporter.held_writes = None
        if self._hook is not None and sys.gettrace() is self._hook:
            sys.settrace(None)

    # -- trace callbacks ---------------------------------------------------------------
    def _on_call(self, frame: FrameType, event: str, arg):
        code = frame.f_code
        verdict = self._verdict.get(id(code))
        if verdict is None:
            verdict = self._verdict[id(code)] = (code, self._is_sweep(code, frame))
        if not verdict[1] or self._broken or event != "call":
            if self._outer is not None and event == "call":
                try:
                    self._note_call(frame, code)
                except Exception as exc:  # never into the user's script
                    self._fail(exc)
                    self._give_back_limit()
            return None
        if self._outer is None:  # the script keeps its depth: a callback's frames are lent
            limit = sys.getrecursionlimit()
            self._limit = (limit, limit + _CALLBACK_DEPTH)
            sys.setrecursionlimit(limit + _CALLBACK_DEPTH)
        return self._guarded(self._enter, frame)

    def _is_sweep(self, code: CodeType, frame: FrameType) -> bool:
        if (code.co_name, code.co_firstlineno) in self.sweeps.get(code.co_filename, ()):
            return True
        named = self.named
        if named is None or code.co_qualname != named[1]:
            return False
        module = frame.f_globals.get("__name__")
        return module == named[0] or module == "__main__" and Path(code.co_filename).stem == named[0]

    def _note_call(self, frame: FrameType, code: CodeType) -> None:
        """A function called from a sweep frame: the rule it looks up for the next node, or
        a helper given a watched dict (or an object holding one), which may write to it."""
        caller = frame.f_back
        if caller is None or code.co_filename.startswith(PACKAGE_DIR):
            return
        if caller.f_trace != self._on_event:
            self._note_inner(frame, code)
            return
        if code.co_name not in _NOT_RULES:
            self.writes.called(caller, code)
        watched = self._watched
        for value in frame.f_locals.values():
            if id(value) in watched or not isinstance(value, (dict, int, float, tuple, list)) \
                    and any(id(inner) in watched for _, inner in instance_items(value)):
                self._handed = True
                return

    def _note_inner(self, frame: FrameType, code: CodeType) -> None:
        """A call made below a function a sweep frame called: when that function is a
        node's own method (``var.chain_rule(d)`` handing over to ``Mul.backward``), the
        deepest function it goes on to call that is no node's method is the rule."""
        skip = self.reporter.skip
        if code in skip or code.co_name in _NOT_RULES:
            return
        caller, depth = frame.f_back, 2
        while caller is not None and depth <= _RULE_DEPTH:
            above = caller.f_back
            if above is not None and above.f_trace == self._on_event:
                if caller.f_code in skip:
                    self.writes.called_inside(above, code, depth)
                return
            caller, depth = above, depth + 1

    def _on_event(self, frame: FrameType, event: str, arg):
        if event == "line":
            return self._guarded(self._step, frame)
        if event == "return":
            return self._guarded(self._returned, frame)
        return self._on_event

    def _guarded(self, step, frame: FrameType):
        """Run one step with room lent above the recursion limit; a failure stops the watch.
        At the script's very edge the room cannot be taken back at once: it is taken back
        at a shallower line, never lent twice."""
        limit = sys.getrecursionlimit()
        base = self._lent[0] if self._lent is not None and limit == self._lent[1] else limit
        sys.setrecursionlimit(base + REPORT_FRAMES)
        try:
            step(frame)
        except Exception as exc:  # never into the user's script
            self._fail(exc)
            return None
        finally:
            self._take_back(base)
            if self._outer is None:
                self._give_back_limit()
        return self._on_event if not self._broken else None

    def _take_back(self, base: int) -> None:
        if sys.getrecursionlimit() != base + REPORT_FRAMES:
            return  # the script set its own limit meanwhile: it stays
        try:
            sys.setrecursionlimit(base)
            self._lent = None
        except RecursionError:
            self._lent = (base, base + REPORT_FRAMES)

    def _give_back_limit(self) -> None:
        if self._lent is not None:
            self._take_back(self._lent[0])
        if self._limit is not None and sys.getrecursionlimit() == self._limit[1]:
            sys.setrecursionlimit(self._limit[0])
        self._limit = None

    def _enter(self, frame: FrameType) -> None:
        if self._outer is None:
            self._outer, self._watched, self._last = frame, {}, None
            self.reporter.held_writes = self._attribute_written  # grad writes go to the sweep while it runs
        else:
            self._compare()
        self._adopt(frame, deep=True)
        self._last = (frame, frame.f_lineno)

    def _step(self, frame: FrameType) -> None:
        self._compare()
        self._adopt(frame, deep=False)
        self._last = (frame, frame.f_lineno)

    def _returned(self, frame: FrameType) -> None:
        self._compare()
        if frame is self._outer:
            self._leave(active_tracer())
            return
        caller = frame.f_back
        self._last = (caller, caller.f_lineno) if caller is not None else None

    def _leave(self, tracer) -> None:
        self._outer, self._watched, self._last = None, {}, None
        self.reporter.held_writes = None
        self.writes.end(tracer)

    # -- the dicts a sweep holds ---------------------------------------------------------
    def _adopt(self, frame: FrameType, deep: bool) -> None:
        """Watch the dicts the frame holds (``deep``: and those its objects hold)."""
        watched, is_node = self._watched, self.reporter.is_node
        made_at = None if deep else self._last
        for value in list(frame.f_locals.values()):
            if isinstance(value, dict):
                if id(value) not in watched and len(value) <= _LARGEST:
                    watched[id(value)] = Watched(value, made_at)
            elif deep and value is not None and not is_node(value) and not isinstance(value, type):
                for _, inner in instance_items(value):
                    if isinstance(inner, dict) and id(inner) not in watched and len(inner) <= _LARGEST:
                        watched[id(inner)] = Watched(inner, None)

    def _compare(self) -> None:
        """Report what changed in the watched dicts while the sweep's last line ran: at the
        entries the line stores into when it names them plainly (``adj[i] += ...``), else
        in every entry of every watched dict."""
        last, handed, self._handed = self._last, self._handed, False
        if last is None:
            return
        frame, line = last
        if not (handed or may_write(frame.f_code, line)):
            return
        stores = stores_entry(frame.f_code, line)
        entries = None if handed else stored_entries(frame.f_code.co_filename, line)
        if entries is not None and self._compare_entries(frame, entries, last, stores):
            return
        for watched in list(self._watched.values()):
            if len(watched.map) <= _SCANNED:
                for key, old, value in watched.changes():
                    self._report(watched, key, old, value, last, stores)

    def _compare_entries(self, frame: FrameType, entries: tuple, last, stores: bool) -> bool:
        """Compare only the entries the line stores into; False when one cannot be named
        without running the user's code (then every entry is compared)."""
        checked = []
        for container, key in entries:
            mapping, key = self._evaluate(container, frame), self._evaluate(key, frame)
            watched = self._watched.get(id(mapping)) if mapping is not MISSING else None
            if watched is None:
                continue  # a list, or a dict no sweep holds
            if key is MISSING or not hashes_plainly(key):
                return False
            checked.append((watched, key))
        for watched, key in checked:
            change = watched.change_of(key)
            if change is not None:
                self._report(watched, key, change[0], change[1], last, stores)
        return True

    @staticmethod
    def _evaluate(path: tuple, frame: FrameType):
        """A name of the frame, an attribute as stored (never a property), an ``id()``."""
        kind = path[0]
        if kind == "name":
            return frame.f_locals.get(path[1], MISSING)
        if kind == "const":
            return path[1]
        inner = SweepWatch._evaluate(path[1], frame)
        if inner is MISSING:
            return MISSING
        return id(inner) if kind == "id" else static_attr(inner, path[2], MISSING)

    def _report(self, watched: Watched, key, old, value, last, stores: bool) -> None:
        if not is_gradient(value):
            return
        # A new object of equal value is a write (``g += 0.0``) only on a line that stores
        # an entry; a new key holding 0 may be a defaultdict read.
        unchanged = old is not MISSING and is_gradient(old) and old == value
        if unchanged and not stores or (old is MISSING and value == 0 and not stores):
            return
        self.writes.changed(watched, key, old, value, last, old is MISSING and value == 0, self._outer)


def _callee_files(methods: list) -> Set[str]:
    """The files of the script's own functions the methods call by a global name
    (``backpropagate(self, d)`` in another module of the engine)."""
    files = set()
    for method in methods:
        found = method.__globals__
        for name in method.__code__.co_names:
            callee = found.get(name)
            if isinstance(callee, FunctionType) and not is_library_module(callee.__module__ or ""):
                files.add(callee.__code__.co_filename)
    return files

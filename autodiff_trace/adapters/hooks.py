"""What the adapters put into a user's node class while tracing, and nothing else.

Three entries, each replacing (or adding) one name in the class ``__dict__`` and
delegating to what was there: a descriptor on the grad attribute that sees every
write (reads go straight to the instance, at full speed), a descriptor on the
backward attribute whose reads hand out a function that reports its firing, and an
``__init__`` that reports the finished node (a ``__new__`` for a class that reads its
callers' frames, which a wrapped ``__init__`` would show). Instances are never changed: they
hold exactly what the user's code stored.
"""

from __future__ import annotations

import functools
import sys
from types import MemberDescriptorType
from typing import Any, Callable, Optional

from .detect import Vocabulary, reads_frames
from .reporter import EngineReporter

__all__ = ["MISSING", "REPORT_FRAMES", "with_room", "original_entry", "grad_hook", "GradHook", "BackwardHook",
           "init_hook", "birth_hook", "construction_hook", "restore"]

MISSING = object()


REPORT_FRAMES = 200  # room the reporting of one event may need, lent above the script's limit
_recursion_limit, _set_recursion_limit, _getframe = sys.getrecursionlimit, sys.setrecursionlimit, sys._getframe


def with_room(reporter: EngineReporter, report, *args) -> None:
    """Run ``report(*args)`` with room above the script's recursion limit, so a script
    as deep as it can go is still traced; a failure is reported once, never raised."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + REPORT_FRAMES)
    try:
        report(*args)
    except Exception as exc:  # never into the user's script
        reporter.failed(exc)
    finally:
        if sys.getrecursionlimit() == limit + REPORT_FRAMES:
            sys.setrecursionlimit(limit)


def original_entry(cls: type, name: str) -> Any:
    """What ``cls.name`` resolves to in the class and its bases, or ``MISSING``."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return MISSING


def _is_data_descriptor(entry: Any) -> bool:
    return hasattr(type(entry), "__set__") or hasattr(type(entry), "__delete__")


class GradHook:
    """Sees every write of the grad attribute of instances kept in ``__dict__``; having
    no ``__get__``, it leaves reads to the instance dict."""

    __slots__ = ("name", "vocab", "reporter", "original")

    def __init__(self, name: str, vocab: Vocabulary, reporter: EngineReporter, original: Any) -> None:
        self.name, self.vocab, self.reporter, self.original = name, vocab, reporter, original

    def _load(self, obj):
        return obj.__dict__.get(self.name, MISSING)

    def _store(self, obj, value) -> None:
        obj.__dict__[self.name] = value

    def __set__(self, obj, value) -> None:
        reporter, namespace = self.reporter, obj.__dict__
        if id(obj) in reporter.constructing and (not reporter.late.waiting or reporter.late.still_constructing(obj)):
            namespace[self.name] = value  # the node's own __init__: not a gradient yet
            return
        before = namespace.get(self.name, MISSING)
        namespace[self.name] = value  # the user's write is done before anything is reported
        if reporter.broken:
            return
        limit = _recursion_limit()  # with_room, written out: it runs at every grad write
        _set_recursion_limit(limit + REPORT_FRAMES)
        try:
            reporter.grad_written(obj, self.vocab, None if before is MISSING else before, value, _getframe(1))
        except Exception as exc:  # never into the user's script
            reporter.failed(exc)
        finally:
            if _recursion_limit() == limit + REPORT_FRAMES:
                _set_recursion_limit(limit)

    def load_static(self, obj):
        """The grad as stored, for reading nodes without running their code."""
        return self._load(obj)

    def __delete__(self, obj) -> None:
        del obj.__dict__[self.name]


class GradHookOverDefault(GradHook):
    """The grad hook when the class has its own ``grad`` (a default value such as
    ``grad = 0.0``, a property, or a ``__slots__`` member): reads and writes go to it."""

    __slots__ = ()

    def __set__(self, obj, value) -> None:
        reporter = self.reporter
        if id(obj) in reporter.constructing and reporter.late.still_constructing(obj):
            self._store(obj, value)  # the node's own __init__: not a gradient yet
            return
        before = self._load(obj)
        self._store(obj, value)  # the user's write is done before anything is reported
        with_room(reporter, reporter.grad_written, obj, self.vocab,
                  None if before is MISSING else before, value, _getframe(1))

    def __get__(self, obj, objtype=None):
        original = self.original
        if obj is None:
            return original.__get__(None, objtype) if hasattr(type(original), "__get__") else original
        if _is_data_descriptor(original):
            return original.__get__(obj, objtype)
        return getattr(obj, "__dict__", {}).get(self.name, original)

    def _load(self, obj):
        try:
            return self.__get__(obj, type(obj))
        except AttributeError:  # an empty slot
            return MISSING

    def load_static(self, obj):
        """The grad as stored; a computed one (a property) is not evaluated."""
        original = self.original
        if _is_data_descriptor(original) and type(original) is not MemberDescriptorType:
            return MISSING
        return self._load(obj)

    def _store(self, obj, value) -> None:
        if _is_data_descriptor(self.original):
            self.original.__set__(obj, value)
        else:
            obj.__dict__[self.name] = value

    def __delete__(self, obj) -> None:
        if _is_data_descriptor(self.original):
            self.original.__delete__(obj)
        else:
            del obj.__dict__[self.name]


def grad_hook(cls: type, name: str, vocab: Vocabulary, reporter: EngineReporter) -> GradHook:
    """The hook to put at ``cls.name`` for the grad attribute."""
    original = original_entry(cls, name)
    if original is MISSING:
        return GradHook(name, vocab, reporter, original)
    return GradHookOverDefault(name, vocab, reporter, original)


class BackwardHook:
    """Stands at the backward attribute: what it returns reports when it is called."""

    __slots__ = ("name", "vocab", "reporter", "original", "data")

    def __init__(self, cls: type, name: str, vocab: Vocabulary, reporter: EngineReporter) -> None:
        self.name, self.vocab, self.reporter = name, vocab, reporter
        self.original = original_entry(cls, name)
        self.data = _is_data_descriptor(self.original)

    def __get__(self, obj, objtype=None):
        original = self.original
        if obj is None:  # Class.backprop: what it was
            if original is MISSING:
                raise AttributeError(f"type object {objtype.__name__!r} has no attribute {self.name!r}")
            return original.__get__(None, objtype) if hasattr(type(original), "__get__") else original
        if self.data:
            value = original.__get__(obj, objtype)
        else:
            namespace = getattr(obj, "__dict__", None)
            if namespace is not None and self.name in namespace:
                value = namespace[self.name]
            elif original is MISSING:
                raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")
            elif hasattr(type(original), "__get__"):
                value = original.__get__(obj, objtype)  # a method: the rule of this op's class
            else:
                value = original
        try:
            return self.reporter.wrap_backward(obj, value, self.vocab)
        except Exception as exc:  # never into the user's script
            self.reporter.failed(exc)
            return value

    def __set__(self, obj, value) -> None:
        if self.data:
            self.original.__set__(obj, value)
        else:
            obj.__dict__[self.name] = value

    def __delete__(self, obj) -> None:
        if self.data:
            self.original.__delete__(obj)
        else:
            del obj.__dict__[self.name]


def init_hook(cls: type, vocab: Vocabulary, reporter: EngineReporter, report: Optional[Callable] = None):
    """An ``__init__`` for ``cls`` that runs the original, then reports the node with
    ``report(node, vocab, creator)`` (by default :meth:`.reporter.EngineReporter.node_made`)."""
    original = original_entry(cls, "__init__")
    constructing = reporter.constructing

    def __init__(self, *args, **kwargs):
        key = id(self)
        if key in constructing:  # a subclass's __init__ calling this one: it reports
            original(self, *args, **kwargs)
            return
        constructing.add(key)
        try:
            original(self, *args, **kwargs)
        finally:
            constructing.discard(key)
        if reporter.broken:
            return
        limit = _recursion_limit()  # with_room, written out: it runs for every node
        _set_recursion_limit(limit + REPORT_FRAMES)
        try:
            if report is None:  # looked up at each call: a rule check's re-run replaces it
                reporter.node_made(self, vocab, _getframe(1))
            else:
                report(self, vocab, _getframe(1))
        except Exception as exc:  # never into the user's script
            reporter.failed(exc)
        finally:
            if _recursion_limit() == limit + REPORT_FRAMES:
                _set_recursion_limit(limit)

    if not isinstance(original, type(object.__init__)):
        functools.update_wrapper(__init__, original)
    return __init__


def birth_hook(cls: type, vocab: Vocabulary, reporter: EngineReporter) -> staticmethod:
    """A ``__new__`` for a class whose code reads the frame that called its ``__init__``:
    the ``__init__`` stays the user's own, called straight from the line that made the
    node, and the node is reported as it is allocated (and read once its line is done)."""
    original = original_entry(cls, "__new__")
    plain = original is object.__dict__["__new__"]
    make = getattr(original, "__func__", original)

    def __new__(klass, *args, **kwargs):
        node = make(klass) if plain else make(klass, *args, **kwargs)
        with_room(reporter, reporter.node_born, node, vocab, _getframe(1))
        return node

    return staticmethod(__new__)


def construction_hook(cls: type, vocab: Vocabulary, reporter: EngineReporter) -> tuple:
    """``(name, hook)`` that reports the class's new nodes: ``__init__``, or ``__new__``
    for a class whose code reads its callers' frames."""
    if reads_frames(cls):
        return "__new__", birth_hook(cls, vocab, reporter)
    return "__init__", init_hook(cls, vocab, reporter)


def restore(patches: list) -> None:
    """Give each class back the entry a patch ``(cls, name, had, old, new)`` replaced, or
    take away the one it added, the last patched first; an entry someone else replaced
    since stays theirs. ``patches`` is emptied."""
    for cls, name, had, old, new in reversed(patches):
        if cls.__dict__.get(name, MISSING) is not new:
            continue  # replaced since by someone else: theirs stays
        if had:
            setattr(cls, name, old)
        else:
            delattr(cls, name)
    patches.clear()

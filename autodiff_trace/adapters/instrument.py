"""Trace a user's own autodiff engine, unmodified: find its node class, hook it, restore it.

``with trace() as t, instrument():`` then run the user's script. Node classes
already imported (``micrograd.engine.Value``) are found in ``sys.modules``; classes
created while instrumentation is on (the script's own ``class Node``) are found as
they are built, through ``builtins.__build_class__``. Every class gets back exactly
the ``__dict__`` entries it had when instrumentation stops.
"""

from __future__ import annotations

import builtins
import contextlib
import linecache
import sys
from types import FunctionType
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

from .detect import (CANDIDATES, ROLES, EngineSpecError, Vocabulary, check_attrs, is_library_module,
                     match_vocabulary, parse_engine_spec, reads_frames, survey)
from .hooks import BackwardHook, GradHook, restore
from .lean import backward_hook_of, construction_hook_of, death_hook_of, grad_hook_of, init_hook_of
from .pull import PullHook, pull_method
from .gradmaps import held_apart, parse_sweep_spec, value_only_vocabulary
from .gradsweep import SweepWatch
from ..core.sites import PACKAGE_DIR
from .reporter import EngineReporter

__all__ = ["instrument", "Instrumentation", "Recognised"]

# Modules never searched for node classes: this package reports by itself, and the
# tools around a run are not engines.
_NOT_ENGINES = ("autodiff_trace", "_pytest", "pytest", "pluggy", "rich", "typer", "click",
                "graphviz", "hypothesis", "orjson", "pip", "setuptools", "pkg_resources",
                "_distutils_hack", "IPython", "ipykernel", "jupyter_client", "traitlets")
# Frameworks a script imports to compare against: thousands of classes, none a scalar
# engine's node. Neither searched nor read as they are imported (torch: 8 s per run).
_FRAMEWORKS = ("torch", "torchgen", "torchvision", "functorch", "numpy", "scipy", "jax", "jaxlib",
               "tensorflow", "keras", "sympy", "mpmath", "networkx", "pandas", "matplotlib")

_SHOWN = 6  # classes listed when none was recognised
_HOOK_FRAMES = 2  # frames a hook itself adds under a write or a new node


def _why_not(roles: Dict[str, str]) -> str:
    """Why a class with these roles is not a node, in a few words."""
    lacking = [r for r in ("value", "grad") if r not in roles]
    have = ", ".join(f"{r}={n}" for r, n in roles.items())
    if lacking:
        return f"{'has ' + have + ' but ' if have else ''}no {' or '.join(lacking)} attribute"
    return f"has {have} but sets them on other objects, not in its own __init__, and holds no parents"


def _is_ours(cls: type) -> bool:
    """A class of this package (its Value reports by itself)."""
    return any(isinstance(v, FunctionType) and v.__code__.co_filename.startswith(PACKAGE_DIR)
               for v in vars(cls).values())


def _is_hooked(cls: type) -> bool:
    """Already hooked by an enclosing instrumentation, which keeps reporting for it."""
    return any(isinstance(v, (GradHook, BackwardHook)) for v in vars(cls).values())


def _no_tracing(frame, event, arg) -> None:
    """The global trace function while waiting for a decorated class: traces nothing new."""
    return None


def _is_decorated(class_body) -> bool:
    """True when the class statement has decorators: its code starts on the first ``@`` line."""
    code = class_body.__code__
    return linecache.getline(code.co_filename, code.co_firstlineno).lstrip().startswith("@")


class Recognised(NamedTuple):
    """A class being traced, with the names it uses for each role."""

    cls: type
    vocabulary: Vocabulary
    how: str  # "found in sys.modules", "defined while tracing", "named with engine=..."

    @property
    def name(self) -> str:
        return f"{self.cls.__module__}:{self.cls.__qualname__}"

    def __str__(self) -> str:
        return f"{self.name} ({self.vocabulary})"


class Instrumentation:
    """The classes being traced, and how to undo it.

    Args:
        engine: ``"module:Class"`` naming the node class; only it (and its subclasses)
            is traced. Without it, classes are recognised by their attribute names.
        attrs: role -> attribute name, for names the search does not know, e.g.
            ``{"value": "val", "grad": "der", "parents": "parents", "backward": "backprop"}``.
        sweep: ``"module:function"``, the function that fills a dict of gradients.
    """

    def __init__(self, *, engine: Optional[str] = None, attrs: Optional[dict] = None,
                 sweep: Optional[str] = None) -> None:
        self.engine = parse_engine_spec(engine) if engine else None
        self.attrs = check_attrs(attrs)
        self.classes: List[Recognised] = []
        self.near_misses: List[Tuple[str, Dict[str, str]]] = []  # (class, roles found)
        self.considered: List[Tuple[str, str]] = []  # (a class of the script's own, why not a node)
        self.reporter = EngineReporter()
        self.sweeps = SweepWatch(self.reporter, parse_sweep_spec(sweep) if sweep else None)
        self._patches: List[Tuple[type, str, bool, object, object]] = []
        self._hooked: set = set()  # every class hooked, subclasses included
        self._original_build_class = None
        self._build_class_hook = None  # the bound method installed, kept to compare identity
        self.active = False
        self._limit: Optional[Tuple[int, int]] = None  # (the script's limit, the one set)

    def _keep_headroom(self) -> None:
        """The frames below the script (this tool's runner) and those a hook adds at the
        deepest write must not eat into the script's recursion limit: raise it by as much."""
        depth, frame = 0, sys._getframe()
        while frame is not None:
            depth, frame = depth + 1, frame.f_back
        limit = sys.getrecursionlimit()
        self._limit = (limit, limit + 2 * depth + _HOOK_FRAMES)  # C calls count twice
        sys.setrecursionlimit(self._limit[1])

    # -- on and off -------------------------------------------------------------------
    def start(self) -> "Instrumentation":
        """Hook the classes already imported and watch for new ones."""
        self._original_build_class = builtins.__build_class__
        self._build_class_hook = builtins.__build_class__ = self._build_class
        self.active = True
        self._keep_headroom()
        # -- PyTorch: traced once the script imports torch (never imported here) --------------
        from .torch import watch_torch
        self._torch = watch_torch()
        # -------------------------------------------------------------------------------------
        try:
            self._search_imported()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Report what is held back, then give every class back its own entries."""
        if not self.active:
            return
        self.active = False
        try:
            self.sweeps.stop()
            self.reporter.finish()
        finally:
            if sys.gettrace() is _no_tracing:  # a decorated class whose statement never ended
                sys.settrace(None)
            if builtins.__build_class__ is self._build_class_hook:
                builtins.__build_class__ = self._original_build_class
            if self._limit is not None and sys.getrecursionlimit() == self._limit[1]:
                sys.setrecursionlimit(self._limit[0])
            self._limit = None
            restore(self._patches)
            self.reporter.ids.drop_unkept()  # their deaths are no longer told
            self._torch.stop()  # PyTorch: its patches and hooks go too

    def __enter__(self) -> "Instrumentation":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- finding classes ----------------------------------------------------------------
    def _build_class(self, func, name, *bases, **kwargs):
        cls = self._original_build_class(func, name, *bases, **kwargs)
        if self.active and isinstance(cls, type) and str(cls.__module__).split(".")[0] not in _FRAMEWORKS:
            if _is_decorated(func):
                self._consider_when_bound(sys._getframe(1), name, cls)
            else:
                self._consider_safely(cls)
        return cls

    def _consider_safely(self, cls: type) -> None:
        try:
            self._consider(cls, "defined while tracing")
        except Exception as exc:  # never break the user's class statement
            print(f"autodiff_trace: could not instrument {cls.__qualname__}: {exc}", file=sys.stderr)

    def _consider_when_bound(self, frame, name: str, cls: type) -> None:
        """A decorated class (``@dataclass``) is read only once its decorators have run and
        its name is bound: hooking it earlier would feed the decorator our hooks."""
        if sys.gettrace() not in (None, _no_tracing):  # a debugger or coverage owns tracing
            self.near_misses.append((f"{cls.__module__}:{cls.__qualname__}",
                                     {"note": "decorated, not traced while a debugger runs"}))
            return
        previous = frame.f_locals.get(name)

        def on_event(event_frame, event, arg):
            value = frame.f_locals.get(name)
            bound = value is not previous and isinstance(value, type) and value.__qualname__ == cls.__qualname__
            if bound or event == "return":
                frame.f_trace = None
                sys.settrace(None)
                if self.active:
                    self._consider_safely(value if bound else cls)
            return None if bound or event == "return" else on_event  # what it returns is the new f_trace

        frame.f_trace_lines = True
        frame.f_trace = on_event
        sys.settrace(_no_tracing)  # line events reach frame.f_trace only while one is set

    def _search_imported(self) -> None:
        found = []
        for module_name, module in list(sys.modules.items()):
            if module is None or module_name.split(".")[0] in _NOT_ENGINES + _FRAMEWORKS:
                continue
            if self.engine is None and module_name.split(".")[0] in sys.stdlib_module_names:
                continue
            try:
                namespace = vars(module)
            except TypeError:
                continue
            for value in list(namespace.values()):
                if isinstance(value, type) and value.__module__ == module_name:
                    found.append(value)
        found.sort(key=lambda cls: len(cls.__mro__))  # bases before their subclasses
        for cls in found:
            try:
                self._consider(cls, "found in sys.modules")
            except EngineSpecError:
                raise
            except Exception:  # a class too strange to read is not the user's engine
                continue

    def _consider(self, cls: type, how: str) -> None:
        if cls in self._hooked:
            return
        for recognised in self.classes:
            if issubclass(cls, recognised.cls):
                self._hook_subclass(cls, recognised.vocabulary)
                return
        if _is_ours(cls) or _is_hooked(cls):
            return
        if self.engine is not None:
            module, qualname = self.engine
            if cls.__qualname__ != qualname or cls.__module__ not in (module, "__main__"):
                return
            vocab, roles = match_vocabulary(survey(cls), self.attrs, trust_attrs=True)
            if vocab is None:
                missing = [r for r in ("value", "grad") if r not in roles]
                raise EngineSpecError(
                    f"{module}:{qualname} is named as the engine, but its {', '.join(missing)} "
                    f"attribute could not be found; name it, e.g. --attr {missing[0]}=NAME")
            self._hook(cls, vocab, f"named with engine={module}:{qualname}")
            return
        found = survey(cls)
        strict = is_library_module(cls.__module__)
        name = f"{cls.__module__}:{cls.__qualname__}"
        held = value_only_vocabulary(cls, found, self.attrs, sweep_named=bool(self.sweeps.named))
        if held is not None:  # a node carrying only a value: its gradients live in a dict
            self._hook(cls, held, how)
            return
        if found is None:
            if not strict:
                self.considered.append((name, "its code names no gradient"))
            return
        vocab, roles = match_vocabulary(found, self.attrs)
        if vocab is None or (strict and vocab.backward is None):
            if not strict:
                self.considered.append((name, _why_not(roles)))
                if len(roles) >= 2:
                    self.near_misses.append((name, roles))
            return
        self._hook(cls, vocab, how)

    # -- hooking and unhooking ----------------------------------------------------------
    def _patch(self, cls: type, name: str, new) -> None:
        had = name in cls.__dict__
        old = cls.__dict__.get(name)
        setattr(cls, name, new)
        self._patches.append((cls, name, had, old, new))

    def _hook(self, cls: type, vocab: Vocabulary, how: str) -> None:
        reporter = self.reporter
        self._hooked.add(cls)
        if not held_apart(vocab):
            self._patch(cls, vocab.grad, grad_hook_of(cls, vocab, reporter))
        if vocab.backward:
            self._patch(cls, vocab.backward, backward_hook_of(cls, vocab, reporter))
        pull = pull_method(cls, vocab)  # a grad() summing its consumers' grads on demand
        if pull:
            self._patch(cls, pull, PullHook(cls.__dict__[pull], reporter.pulls))
        self._patch(cls, *construction_hook_of(cls, vocab, reporter))
        reporter.add_type(cls, vocab)
        for klass in cls.__mro__[:-1]:  # the engine's own methods: the user's line is their caller's
            for value in klass.__dict__.values():
                for function in (value, getattr(value, "__func__", None)):
                    if isinstance(function, FunctionType):
                        reporter.skip.add(function.__code__)
        self.classes.append(Recognised(cls, vocab, how))
        self.sweeps.watch(cls, vocab)
        for name, hook in death_hook_of(cls, vocab, reporter):  # __del__, telling when a node dies
            self._patch(cls, name, hook)
        stack = list(cls.__subclasses__())
        while stack:
            sub = stack.pop()
            self._hook_subclass(sub, vocab)
            stack.extend(sub.__subclasses__())

    def _hook_subclass(self, cls: type, vocab: Vocabulary) -> None:
        """A subclass redefining a hooked name (an op's own ``backprop``) gets the hook too."""
        reporter = self.reporter
        self._hooked.add(cls)
        if vocab.grad in cls.__dict__:
            self._patch(cls, vocab.grad, grad_hook_of(cls, vocab, reporter))
        if vocab.backward and vocab.backward in cls.__dict__:
            self._patch(cls, vocab.backward, backward_hook_of(cls, vocab, reporter))
        if "__init__" in cls.__dict__ and "__new__" not in cls.__dict__ and not reads_frames(cls):
            self._patch(cls, "__init__", init_hook_of(cls, vocab, reporter))
        for value in cls.__dict__.values():
            if isinstance(value, FunctionType):
                reporter.skip.add(value.__code__)

    # -- telling the user -------------------------------------------------------------
    @property
    def nodes_seen(self) -> int:
        """How many nodes of the recognised classes were traced (made or met in a pass)."""
        return self.reporter.ids.issued

    @property
    def nothing_traced(self) -> bool:
        """True when no node of any engine was traced (``--strict`` makes that an error)."""
        return self.nodes_seen == 0

    def describe_search(self, *, engine_option: str = "--engine", attr_option: str = "--attr") -> str:
        """What was traced, or, when no node was, what was looked for and how to point the
        tool at the class."""
        if self.nodes_seen:
            return "Traced " + "; ".join(str(r) for r in self.classes) + "."
        if self.classes:
            unused = ", ".join(r.name for r in self.classes)
            return (f"Recognised {unused}, but no node of it was made while tracing. "
                    + self._what_was_looked_for(engine_option, attr_option))
        return self._what_was_looked_for(engine_option, attr_option)

    def _what_was_looked_for(self, engine_option: str, attr_option: str) -> str:
        if self.engine is not None:
            module, qualname = self.engine
            return (f"No class {qualname} was defined or imported from {module} while tracing. "
                    f"Check the spelling of {engine_option} {module}:{qualname} (the class's "
                    f"module, a colon, and its name as written in the class statement).")
        lines = ["No autodiff node class of the script was found. A node class is recognised "
                 "by the attributes its code sets on its instances:"]
        for role in ROLES:
            need = {"op": "optional", "backward": "required for installed libraries",
                    "parents": "optional: else the nodes a node holds or was made from"}.get(role, "required")
            lines.append(f"  {role:<9} one of {', '.join(CANDIDATES[role])} ({need})")
        for name, why in self.considered[:_SHOWN]:
            lines.append(f"Considered {name}: {why}.")
        if len(self.considered) > _SHOWN:
            lines.append(f"... and {len(self.considered) - _SHOWN} more classes.")
        lines.append(self.sweeps.describe())
        lines.append(f"Point the tool at your class with {engine_option} module:Class (use the "
                     f"script's name as module for a class it defines), and name its attributes "
                     f"with {attr_option} ROLE=NAME, e.g. {attr_option} grad=der {attr_option} "
                     f"backward=backprop.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Instrumentation(classes={[r.name for r in self.classes]}, active={self.active})"


@contextlib.contextmanager
def instrument(*, engine: Optional[str] = None, attrs: Optional[dict] = None,
               sweep: Optional[str] = None) -> Iterator[Instrumentation]:
    """Trace user-defined node classes while the block runs; restore them afterwards.

    Node classes already imported, or created in the block, that look like autodiff
    nodes report to :func:`autodiff_trace.active_tracer` (nothing when it is None).

    Args:
        engine: ``"module:Class"`` names the node class explicitly.
        attrs: overrides attribute names per role (value, grad, parents, backward, op),
            e.g. ``{"grad": "der", "backward": "backprop"}``.
        sweep: ``"module:function"`` names the function that fills a dict of gradients.

    Raises:
        EngineSpecError: ``engine`` or ``attrs`` is malformed, or the named class lacks
            a required attribute.
    """
    instrumentation = Instrumentation(engine=engine, attrs=attrs, sweep=sweep)
    instrumentation.start()
    try:
        yield instrumentation
    finally:
        instrumentation.stop()

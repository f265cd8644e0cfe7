"""Recognise an autodiff node class from the attributes its own code sets.

A node class is recognised by its vocabulary: the names it uses for a node's value,
its gradient, its parents, its backward function and (optionally) its op. The names
come from the class's code (``self.grad = 0`` in ``__init__``, ``__slots__``,
annotations), never from running it, so looking is free of side effects.
"""

from __future__ import annotations

import dis
import os
import sys
import sysconfig
from types import CodeType, FunctionType
from typing import Dict, Iterable, Iterator, NamedTuple, Optional, Set, Tuple

from ..core.sites import PACKAGE_DIR

__all__ = [
    "ROLES", "CANDIDATES", "EngineSpecError", "Vocabulary", "ClassSurvey",
    "survey", "match_vocabulary", "parse_engine_spec", "parse_attr_options", "check_attrs",
    "is_library_module", "reads_frames",
]

ROLES = ("value", "grad", "parents", "backward", "op")

# Names learners and libraries use for each role, most common first.
CANDIDATES: Dict[str, Tuple[str, ...]] = {
    "value": ("data", "value", "val", "_data", "_value", "v", "primal"),
    "grad": ("grad", "der", "_grad", "gradient", "adjoint", "derivative", "deriv", "grad_value", "g",
             "cotangent", "ct"),
    "parents": ("_prev", "parents", "_parents", "prev", "children", "_children",
                "inputs", "_inputs", "deps", "srcs"),
    "backward": ("_backward", "backward_fn", "backprop", "_backprop", "grad_fn", "_grad_fn",
                 "backward_function", "_backward_fn", "backward"),
    "op": ("_op", "op", "operation", "_operation", "op_name"),
}

# A method called ``backward`` is usually the whole pass (micrograd's), not one node's rule.
_NOT_A_RULE_METHOD = frozenset({"backward"})


class EngineSpecError(ValueError):
    """An ``engine`` or ``attrs`` option that cannot be used; the message says how to fix it."""


class Vocabulary(NamedTuple):
    """The attribute names one node class uses for each role."""

    value: str
    grad: str
    parents: Optional[str]  # None: parents are found by their role (see adapters.roles)
    backward: Optional[str]
    op: Optional[str]

    def __str__(self) -> str:
        """
        >>> str(Vocabulary("val", "der", "parents", "backprop", None))
        'value=val, grad=der, parents=parents, backward=backprop'
        """
        return ", ".join(f"{role}={name}" for role, name in zip(ROLES, self) if name)


class ClassSurvey(NamedTuple):
    """What a class's code says about its instances."""

    instance_attrs: Set[str]  # attributes its code stores, slots, annotations, properties
    rule_methods: Set[str]  # methods that could be a per-node backward rule
    own_attrs: Set[str] = frozenset()  # set on self in __init__, slots, annotations, class defaults


def _codes(code: CodeType) -> Iterator[CodeType]:
    """A code object and every code object nested in it (closures, comprehensions)."""
    stack = [code]
    while stack:
        code = stack.pop()
        yield code
        stack.extend(c for c in code.co_consts if isinstance(c, CodeType))


def _functions(value) -> Iterator[FunctionType]:
    """The plain functions behind a class-dict entry (methods, properties, static/class methods)."""
    for candidate in (value, getattr(value, "__func__", None), getattr(value, "fget", None),
                      getattr(value, "fset", None)):
        if isinstance(candidate, FunctionType):
            yield candidate


def stored_attributes(code: CodeType) -> Set[str]:
    """Attribute names the code (or code nested in it) assigns to.

    >>> def f(out, a): out.grad = 0; a.der += 1; print(out.val)
    >>> sorted(stored_attributes(f.__code__))
    ['der', 'grad']
    """
    names: Set[str] = set()
    for inner in _codes(code):
        names.update(i.argval for i in dis.get_instructions(inner) if i.opname == "STORE_ATTR")
    return names


def self_stores(code: CodeType) -> Set[str]:
    """Attribute names a method stores on its own instance (``self.grad = 0``).

    >>> class N:
    ...     def __init__(self, v, other): self.v, self.g = v, 0; other.grad = 1
    >>> sorted(self_stores(N.__init__.__code__))
    ['g', 'v']
    """
    if not code.co_argcount:
        return set()
    me = code.co_varnames[0]
    names: Set[str] = set()
    previous = None
    for ins in dis.get_instructions(code):
        if ins.opname == "STORE_ATTR" and previous is not None \
                and previous.opname == "LOAD_FAST" and previous.argval == me:
            names.add(ins.argval)
        previous = ins
    return names


def survey(cls: type) -> Optional[ClassSurvey]:
    """What ``cls`` and its bases (but not ``object``) tell about instance attributes.

    Cheap first: only when its code mentions a gradient-like and a parents-like name is
    the bytecode read. Returns None for a class that cannot be a node.
    """
    own = [k for k in getattr(cls, "__mro__", ()) if k is not object]
    mentioned: Set[str] = set()
    for klass in own:
        namespace = klass.__dict__
        mentioned.update(namespace)
        mentioned.update(_slot_names(namespace))
        mentioned.update(_annotated(namespace))
        for value in namespace.values():
            for function in _functions(value):
                for inner in _codes(function.__code__):
                    mentioned.update(inner.co_names)
    if mentioned.isdisjoint(CANDIDATES["grad"]) and not _pairs(mentioned):
        return None
    attrs: Set[str] = set()
    methods: Set[str] = set()
    own_attrs: Set[str] = set()
    for klass in own:
        namespace = klass.__dict__
        attrs.update(_slot_names(namespace))
        attrs.update(_annotated(namespace))
        own_attrs.update(_slot_names(namespace))
        own_attrs.update(_annotated(namespace))
        init = namespace.get("__init__")
        if isinstance(init, FunctionType):
            own_attrs.update(self_stores(init.__code__))
        for name, value in namespace.items():
            if isinstance(value, property) or not (callable(value) or name.startswith("__")):
                attrs.add(name)  # a property, or a class-level default such as grad = 0
                if not isinstance(value, property):
                    own_attrs.add(name)
            if isinstance(value, FunctionType) and name not in _NOT_A_RULE_METHOD:
                methods.add(name)
            for function in _functions(value):
                attrs.update(stored_attributes(function.__code__))
    return ClassSurvey(attrs, methods, own_attrs)


_FRAME_READERS = frozenset({"_getframe", "currentframe", "stack", "getouterframes", "extract_stack", "f_back"})


def reads_frames(cls: type) -> bool:
    """True when the class's own code looks at the frames that called it
    (``sys._getframe(1).f_code.co_name`` to name its op): a wrapped ``__init__`` would
    be the frame it sees."""
    for klass in getattr(cls, "__mro__", ())[:-1]:
        for value in klass.__dict__.values():
            for function in _functions(value):
                if function.__code__.co_filename.startswith(PACKAGE_DIR):
                    continue  # a hook of this package's, put in a base class already traced
                if any(not _FRAME_READERS.isdisjoint(inner.co_names) for inner in _codes(function.__code__)):
                    return True
    return False


def _slot_names(namespace) -> Tuple[str, ...]:
    slots = namespace.get("__slots__", ())
    if isinstance(slots, str):
        return (slots,)
    return tuple(s for s in slots if isinstance(s, str)) if isinstance(slots, (tuple, list)) else ()


def _annotated(namespace) -> Tuple[str, ...]:
    annotations = namespace.get("__annotations__")
    return tuple(k for k in annotations if isinstance(k, str)) if isinstance(annotations, dict) else ()


def match_vocabulary(found: Optional[ClassSurvey], attrs: Optional[dict] = None, *,
                     trust_attrs: bool = False) -> Tuple[Optional[Vocabulary], Dict[str, str]]:
    """The class's vocabulary if it has every required role, and the roles found.

    Args:
        found: the class's :func:`survey` (None: nothing known).
        attrs: role -> attribute name overrides, e.g. ``{"grad": "der"}``.
        trust_attrs: take overridden names as given even if the code never sets them
            (for a class the user named explicitly).
    """
    attrs = attrs or {}
    instance_attrs = found.instance_attrs if found else set()
    rule_methods = found.rule_methods if found else set()
    roles: Dict[str, str] = {}
    for role in ROLES:
        if role in attrs:
            name = attrs[role]
            if trust_attrs or name in instance_attrs or (role == "backward" and name in rule_methods):
                roles[role] = name
            continue
        for name in CANDIDATES[role]:
            if name in instance_attrs or (role == "backward" and name in rule_methods):
                roles[role] = name
                break
    if not all(role in roles for role in ("value", "grad")) and found is not None:
        paired = _paired_slots(found.own_attrs)
        if paired is not None and not {"value", "grad"} & set(attrs):
            roles["value"], roles["grad"] = paired
    if not all(role in roles for role in ("value", "grad")):
        return None, roles
    if "parents" not in roles and not trust_attrs and found is not None \
            and not {roles["value"], roles["grad"]} <= found.own_attrs:
        return None, roles  # without parents, a node must set its own value and grad
    return Vocabulary(roles["value"], roles["grad"], roles.get("parents"), roles.get("backward"),
                      roles.get("op")), roles


def _paired_slots(names: Set[str]) -> Optional[Tuple[str, str]]:
    """A value and its gradient named as a pair, ``x`` and ``dx`` (``v``/``dv``,
    ``out``/``out_grad``, ``y``/``ybar``), when the class sets exactly one such pair.

    >>> _paired_slots({"x", "dx", "name"}), _paired_slots({"x", "y"})
    (('x', 'dx'), None)
    """
    pairs = _pairs(names)
    return pairs[0] if len(pairs) == 1 else None


def _pairs(names) -> list:
    return [(name, grad) for name in sorted(n for n in names if n.isidentifier()) for grad in
            (f"d{name}", f"d_{name}", f"{name}_grad", f"grad_{name}", f"{name}bar", f"{name}_bar", f"{name}_adj")
            if grad in names]


def parse_engine_spec(spec: str) -> Tuple[str, str]:
    """``"module:Class"`` split in two; a clear error for anything else.

    >>> parse_engine_spec("micrograd.engine:Value")
    ('micrograd.engine', 'Value')
    """
    module, sep, qualname = spec.partition(":")
    if not sep or not module.strip() or not qualname.strip() or ":" in qualname:
        raise EngineSpecError(
            f"--engine expects module:Class (e.g. micrograd.engine:Value or my_script:Node), got {spec!r}")
    return module.strip(), qualname.strip()


def parse_attr_options(pairs: Optional[Iterable[str]]) -> Dict[str, str]:
    """``--attr KEY=NAME`` options as role -> attribute name; a clear error for a bad one.

    >>> parse_attr_options(["grad=der", "parents=_prev"])
    {'grad': 'der', 'parents': '_prev'}
    """
    attrs: Dict[str, str] = {}
    for pair in pairs or ():
        role, sep, name = pair.partition("=")
        if not sep or role not in ROLES or not name.isidentifier():
            raise EngineSpecError(f"--attr {pair!r} should read KEY=NAME with KEY one of "
                                  f"{', '.join(ROLES)}, e.g. --attr grad=der")
        attrs[role] = name
    return attrs


def check_attrs(attrs: Optional[dict]) -> dict:
    """Validate role -> attribute-name overrides; a clear error names the bad entry.

    >>> check_attrs({"grad": "der"})
    {'grad': 'der'}
    """
    attrs = dict(attrs or {})
    for role, name in attrs.items():
        if role not in ROLES:
            raise EngineSpecError(f"unknown attribute role {role!r}; the roles are {', '.join(ROLES)}")
        if not isinstance(name, str) or not name.isidentifier():
            raise EngineSpecError(f"attribute name for {role!r} must be a Python identifier, got {name!r}")
    return attrs


def _library_dirs() -> Tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if key in paths}
    return tuple(d + os.sep for d in dirs)


_LIBRARY_DIRS = _library_dirs()


def is_library_module(module_name: str) -> bool:
    """True for installed or standard-library modules, False for the user's own files."""
    if module_name == "__main__":
        return False
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if not filename:
        return module_name.split(".")[0] in sys.stdlib_module_names
    return os.path.realpath(filename).startswith(_LIBRARY_DIRS)

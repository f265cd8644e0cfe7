"""Reading a user's nodes by the role each object plays, never by running their code.

A node's parents are whatever nodes it holds when it is made: in an attribute named
for parents, in ``(parent, local)`` pairs, in the keys of a ``{parent: local}`` dict,
one object further in (``history.inputs``, ``grad_fn.inputs``), or, for a node made by
an op function or a gate's ``forward``, the nodes that function was called with.
Consumers (``children``, ``adjoints``: nodes made later) give parents the other way
round. Every read is static: instance dicts and slots only, never a property.
"""

from __future__ import annotations

import inspect
import sys
from types import FrameType, FunctionType, MemberDescriptorType, MethodType, ModuleType
from typing import Callable, Iterator, List, Optional

from .framecopy import argument_names

__all__ = ["MISSING", "LARGEST", "static_attr", "instance_items", "held_nodes", "tabled_nodes", "linking_object", "op_label", "called_with",
           "newer_held", "rule_owner"]

MISSING = object()
LARGEST = 256  # containers longer than this are a model's data, not one node's parents
_NOT_CONTAINERS = (str, bytes, int, float, complex, bool, type, ModuleType, FunctionType, MethodType)


def static_attr(obj, name: str, default=None):
    """``obj.name`` as stored: the instance dict, a slot, or a plain class value; a
    property or any other computed attribute gives ``default``, unevaluated.

    >>> class P:
    ...     x = 1
    ...     @property
    ...     def y(self): raise AssertionError
    >>> static_attr(P(), "x"), static_attr(P(), "y", "unread")
    (1, 'unread')
    """
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        namespace = None
    if type(namespace) is dict and name in namespace:
        return namespace[name]
    entry = inspect.getattr_static(type(obj), name, MISSING)
    load = getattr(type(entry), "load_static", None)  # one of our grad hooks
    if load is not None:
        value = load(entry, obj)
        return default if value is MISSING else value
    if type(entry) is MemberDescriptorType:
        try:
            return entry.__get__(obj, type(obj))
        except AttributeError:  # an empty slot
            return default
    if entry is MISSING or hasattr(type(entry), "__get__"):
        return default
    return entry


def instance_items(obj) -> Iterator[tuple]:
    """``(name, value)`` for every attribute the instance itself holds (dict and slots)."""
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        namespace = None
    if type(namespace) is dict:
        yield from list(namespace.items())
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            value = static_attr(obj, name, MISSING)
            if value is not MISSING:
                yield name, value


def _nodes_in(value, is_node: Callable, depth: int, found: list) -> None:
    """Nodes in ``value``: itself, the items (or pair heads) of a tuple, list or set, the
    keys of a dict, and (``depth`` > 0) the attributes of a plain object holding them."""
    if is_node(value):
        found.append(value)
        return
    if isinstance(value, _NOT_CONTAINERS) or value is None or callable(value):
        return
    if isinstance(value, dict):
        items = list(value)[:LARGEST] if len(value) <= LARGEST else ()
        found.extend(k for k in items if is_node(k))
        return
    if isinstance(value, (tuple, list, set, frozenset)):
        if len(value) > LARGEST:
            return
        for item in value:
            if is_node(item):
                found.append(item)
            elif isinstance(item, tuple) and item and is_node(item[0]):
                found.append(item[0])  # (parent, local derivative)
            elif isinstance(item, tuple) and len(item) == 2 and is_node(item[1]):
                found.append(item[1])  # (weight, node)
        return
    if depth > 0:
        for _, inner in instance_items(value):
            _nodes_in(inner, is_node, depth - 1, found)


def held_nodes(node, is_node: Callable, name: Optional[str] = None) -> List:
    """The nodes ``node`` holds: in attribute ``name`` if given (and stored), else in any
    attribute, one object deep. Each once, in the order found; never ``node`` itself."""
    found: list = []
    if name is not None:
        value = static_attr(node, name, MISSING)
        if value is not MISSING and not callable(value):
            _nodes_in(value, is_node, 1, found)
            return _unique(found, node)
    for _, value in instance_items(node):
        _nodes_in(value, is_node, 1, found)
    return _unique(found, node)


def tabled_nodes(node, is_node: Callable) -> List:
    """The nodes a module-level table of the node's class keeps for it, keyed by its id
    (``EDGES[id(self)] = [(parent, local), ...]``): int keys only, so no user ``__eq__`` runs."""
    module = sys.modules.get(type(node).__module__)
    namespace = getattr(module, "__dict__", None)
    if type(namespace) is not dict:
        return []
    found: list = []
    key = id(node)
    for table in list(namespace.values()):
        if type(table) is dict and key in table:
            _nodes_in(table[key], is_node, 1, found)
    return _unique(found, node)


def linking_object(node, is_node: Callable) -> Optional[object]:
    """The object (not a node, a list or a dict) through which ``node`` holds its parents:
    the op's context (``_ctx``, ``history``), whose class names the op."""
    for _, value in instance_items(node):
        if is_node(value) or value is None or callable(value) \
                or isinstance(value, (_NOT_CONTAINERS, dict, tuple, list, set, frozenset)):
            continue
        found: list = []
        _nodes_in(value, is_node, 1, found)
        if found:
            return value
    return None


def op_label(node, vocab, parents: tuple, creator, skip) -> str:
    """The op's own label (micrograd's ``_op``), else the op function that made the
    node (``add``; ``__mul__`` gives ``mul``), else the node's class name."""
    if vocab.op:
        op = static_attr(node, vocab.op)
        if isinstance(op, str) and op:
            return op
    if not parents:
        return ""
    if creator in skip:
        return creator.co_name.strip("_") or creator.co_name
    return type(node).__name__


def called_with(frame: FrameType, is_node: Callable) -> List:
    """The nodes an op function (or a non-node object's method, a gate's ``forward``) was
    called with: its arguments that are nodes or tuples of nodes."""
    code = frame.f_code
    if code.co_name == "<module>":
        return []
    names = argument_names(code)  # a **kwargs dict is neither a node nor a tuple: passed over
    local = frame.f_locals
    if names and names[0] == "self" and is_node(local.get("self")):
        return []  # a node's own method making a constant: not an op on its arguments
    found: list = []
    for name in names:
        value = local.get(name)
        if is_node(value):
            found.append(value)
        elif isinstance(value, tuple) and len(value) <= LARGEST:
            found.extend(v for v in value if is_node(v))
    return _unique(found, None)


def newer_held(node, is_node: Callable, newer: Callable) -> Iterator:
    """Consumers: nodes ``node`` holds in a list that were made after it."""
    for _, value in instance_items(node):
        if isinstance(value, list) and value and len(value) <= 4 * LARGEST:
            found: list = []
            _nodes_in(value, is_node, 0, found)
            yield from (n for n in found if newer(n))


def rule_owner(frame: FrameType, target, is_node: Callable, has_parent: Callable,
               levels: int = 3) -> Optional[object]:
    """The node whose rule made a write to ``target``: a node in the writing frame (or
    the frames just above it, or held by a non-node ``self``) that has ``target`` as a
    parent; the local declared last wins (the loop's ``node`` over the function's ``root``)."""
    while frame is not None and levels > 0 and frame.f_code.co_name != "<module>":
        local = frame.f_locals
        candidates = []
        for name in reversed(frame.f_code.co_varnames):
            value = local.get(name)
            if is_node(value):
                candidates.append(value)
            elif name == "self" and value is not None:
                candidates.extend(v for _, v in instance_items(value) if is_node(v))
        for candidate in candidates:
            if candidate is not target and has_parent(candidate, target):
                return candidate
        frame, levels = frame.f_back, levels - 1
    return None


def _unique(found: list, owner) -> list:
    seen, unique = {id(owner)}, []
    for item in found:
        if id(item) not in seen:
            seen.add(id(item))
            unique.append(item)
    return unique

"""Engines whose gradients are held apart from the nodes, read from their code alone.

Some engines write no gradient on a node: a Wengert list keeps adjoints in a dict keyed
by variable id, a gradient tape sweeps into a local dict keyed by node, a recursion over
paths returns a ``{node: grad}`` dict. This module answers, from code and never by
running it: is a class a node that carries only a value (it sets a value on itself and
overloads arithmetic)? Which functions of an engine's file are sweeps (they store into a
subscript inside a loop or a recursion)? Does a line assign over an entry or add to it?
Which node does a dict key name (the node itself, an id attribute, or ``id(node)``)?
"""

from __future__ import annotations

import ast
import dis
import linecache
from types import CodeType, FunctionType
from typing import Dict, Iterator, Optional, Set, Tuple

from .detect import (
    CANDIDATES, ClassSurvey, EngineSpecError, Vocabulary, is_library_module, match_vocabulary, self_stores,
)
from .roles import instance_items

__all__ = ["HELD_APART", "held_apart", "parse_sweep_spec", "value_only_vocabulary", "sweeps_in", "may_write",
           "stores_entry", "stored_entries", "assigns_over_entry", "keeps_its_dict", "KeyResolver"]

# The grad "attribute" of a node whose gradient lives in a dict: never set on a class.
HELD_APART = "(in a dict)"

# A node that carries only a value is still an operand: it overloads arithmetic.
_ARITHMETIC = ("__add__", "__mul__", "__sub__", "__radd__", "__rmul__", "__pow__", "__truediv__")
_STORES = frozenset({"STORE_SUBSCR", "DELETE_SUBSCR"})
_MUTATORS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"})


def held_apart(vocab: Vocabulary) -> bool:
    """True for the vocabulary of a node class whose gradients live in a dict."""
    return vocab.grad == HELD_APART


def parse_sweep_spec(spec: str) -> Tuple[str, str]:
    """``"module:function"`` naming an engine's sweep, split in two; a clear error otherwise.

    >>> parse_sweep_spec("tape:Tape.gradient")
    ('tape', 'Tape.gradient')
    """
    module, sep, qualname = spec.partition(":")
    if not sep or not module.strip() or not qualname.strip() or ":" in qualname:
        raise EngineSpecError(f"--sweep expects module:function, the function that fills the dict of "
                              f"gradients (e.g. engine:grad or my_script:Tape.gradient), got {spec!r}")
    return module.strip(), qualname.strip()


def value_only_vocabulary(cls: type, found: Optional[ClassSurvey] = None, attrs: Optional[dict] = None,
                          *, sweep_named: bool = False) -> Optional[Vocabulary]:
    """The vocabulary of a class of the user's own that sets a value on itself in its
    ``__init__`` and overloads arithmetic, but has no gradient attribute (``found``: its
    survey, ``attrs`` the names given), in a file that holds a sweep (see
    :func:`sweeps_in`) unless one is named; None otherwise."""
    if is_library_module(cls.__module__) or "grad" in match_vocabulary(found, attrs)[1]:
        return None
    own = [k for k in cls.__mro__ if k is not object]
    init = next((k.__dict__["__init__"] for k in own if "__init__" in k.__dict__), None)
    if not isinstance(init, FunctionType):
        return None
    stores = self_stores(init.__code__)
    value = next((name for name in CANDIDATES["value"] if name in stores), None)
    if value is None or not any(name in k.__dict__ for k in own for name in _ARITHMETIC):
        return None
    files = {v.__code__.co_filename for k in own for v in vars(k).values() if isinstance(v, FunctionType)}
    if not sweep_named and not any(sweeps_in(f, must_return=False) for f in files):
        return None  # an arithmetic type of the script's (a money amount), not a node
    return Vocabulary(value, HELD_APART, None, None, None)


def _codes(code: CodeType) -> Iterator[CodeType]:
    stack = [code]
    while stack:
        code = stack.pop()
        yield code
        stack.extend(c for c in code.co_consts if isinstance(c, CodeType))


def _is_sweep(code: CodeType, must_return: bool) -> bool:
    """Stores into a subscript, inside a loop or a recursion (and, with ``must_return``,
    returns a local it stores into, the dict of gradients it built, or starts that dict
    from its first argument, ``{self: 1.0}``: it writes the leaves' grads itself)."""
    instructions, stored = _stores(code)
    if not any(ins.opname == "STORE_SUBSCR" for ins in instructions):
        return False
    loops = any(i.opname.startswith("JUMP_BACKWARD") for i in instructions)
    recurses = code.co_name in code.co_names
    if not (loops or recurses):
        return False
    if not must_return:
        return True
    return _returns_stored(instructions, stored) or _seeds_from_argument(code, instructions, stored)


def _stores(code: CodeType) -> Tuple[list, Set[str]]:
    """The code's instructions, and the names loaded on the lines that store into a subscript."""
    instructions = list(dis.get_instructions(code))
    line_of = [ins.positions.lineno if ins.positions else None for ins in instructions]
    store_lines = {line for ins, line in zip(instructions, line_of) if ins.opname == "STORE_SUBSCR"}
    return instructions, {ins.argval for ins, line in zip(instructions, line_of)
                          if line in store_lines and ins.opname in ("LOAD_FAST", "LOAD_DEREF")}


def _returns_stored(instructions: list, stored: Set[str]) -> bool:
    return any(ins.opname == "RETURN_VALUE" and prev.opname == "LOAD_FAST" and prev.argval in stored
               for prev, ins in zip(instructions, instructions[1:]))


def _seeds_from_argument(code: CodeType, instructions: list, stored: Set[str]) -> bool:
    """Starts a dict it stores into with one entry keyed by its first argument or an
    attribute of it: ``grads = {self: 1.0}``, ``derivatives = {variable.unique_id: d}``."""
    if not code.co_argcount:
        return False
    first = code.co_varnames[0]
    for i, ins in enumerate(instructions):
        if ins.opname != "BUILD_MAP" or ins.argval != 1 or i + 1 >= len(instructions):
            continue
        store = instructions[i + 1]
        if store.opname not in ("STORE_FAST", "STORE_DEREF") or store.argval not in stored:
            continue
        key = instructions[max(i - 3, 0):i - 1]  # the key's loads, then the value's one
        if key and key[-1].opname == "LOAD_ATTR":
            key = key[:-1]
        if key and key[-1].opname in ("LOAD_FAST", "LOAD_DEREF") and key[-1].argval == first \
                and instructions[i - 1].opname in ("LOAD_CONST", "LOAD_FAST", "LOAD_DEREF"):
            return True
    return False


def keeps_its_dict(code: CodeType) -> bool:
    """True for a sweep of a node class with a grad attribute that starts its dict from
    its first argument and returns none of it (``grads = {self: 1.0}``): the dict holds
    the pass's gradients of inner nodes, and the sweep writes the leaves' grads itself."""
    found = _keeps.get(id(code))
    if found is None or found[0] is not code:
        instructions, stored = _stores(code)
        found = _keeps[id(code)] = (code, _seeds_from_argument(code, instructions, stored)
                                    and not _returns_stored(instructions, stored))
    return found[1]


_keeps: Dict[int, Tuple[CodeType, bool]] = {}


def sweeps_in(filename: str, *, must_return: bool) -> Set[Tuple[str, int]]:
    """``(name, first line)`` of every function in the file that is a sweep, read from its
    source (the file is compiled, never run); empty when it cannot be read."""
    source = "".join(linecache.getlines(filename))
    key = (filename, must_return, hash(source))
    if key not in _sweeps:
        try:
            module = compile(source, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return set()
        _sweeps[key] = {(code.co_name, code.co_firstlineno) for code in _codes(module)
                        if code is not module and code.co_name not in ("<module>", "__init__")
                        and _is_sweep(code, must_return)}
    return set(_sweeps[key])


_sweeps: Dict[Tuple[str, bool, int], Set[Tuple[str, int]]] = {}


_lines: Dict[int, Tuple[CodeType, Set[int], Set[int]]] = {}


def _writing_lines(code: CodeType) -> Tuple[CodeType, Set[int], Set[int]]:
    entry = _lines.get(id(code))
    if entry is None:
        writes, stores, current = set(), set(), None
        for ins in dis.get_instructions(code):
            current = ins.positions.lineno if ins.positions and ins.positions.lineno else current
            if current is not None and (ins.opname in _STORES or ins.opname in ("LOAD_METHOD", "LOAD_ATTR")
                                        and ins.argval in _MUTATORS):
                writes.add(current)
            if ins.opname == "STORE_SUBSCR" and current is not None:
                stores.add(current)
        entry = _lines[id(code)] = (code, writes, stores)
    return entry


def may_write(code: CodeType, line: int) -> bool:
    """True when the line itself can change a dict: it stores into (or deletes) a subscript,
    or calls a dict's ``update``, ``setdefault``, ``pop``, ... (a function the line calls
    with a dict is seen when it is called)."""
    return line in _writing_lines(code)[1]


def stores_entry(code: CodeType, line: int) -> bool:
    """True when the line itself stores into a subscript (``adj[i] += ...``)."""
    return line in _writing_lines(code)[2]


_entries: Dict[Tuple[str, int], Optional[tuple]] = {}


def stored_entries(filename: str, line: int) -> Optional[tuple]:
    """``(container, key)`` paths of the subscripts the line's statement stores into, each
    a name, an attribute of one (``tape.adjoint``, ``output.id``), ``id(name)`` or a
    constant; None when a target is anything else or the line cannot be read alone.

    >>> import linecache; linecache.cache["<e>"] = (0, None, ["adj[out.id] += d * g[i]\\n"], "<e>")
    >>> stored_entries("<e>", 1)
    ((('name', 'adj'), ('attr', ('name', 'out'), 'id')),)
    """
    key = (filename, line)
    if key not in _entries:
        _entries[key] = _stored(linecache.getline(filename, line).strip())
    return _entries[key]


def _stored(text: str) -> Optional[tuple]:
    try:
        statement = ast.parse(text).body[0]
    except (SyntaxError, IndexError, ValueError):
        return None
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, ast.AugAssign) else []
    found = []
    for target in targets:
        if not isinstance(target, ast.Subscript):
            continue
        container, key = _path(target.value), _path(target.slice)
        if container is None or key is None:
            return None
        found.append((container, key))
    return tuple(found) or None


def _path(node) -> Optional[tuple]:
    if isinstance(node, ast.Name):
        return ("name", node.id)
    if isinstance(node, ast.Attribute):
        inner = _path(node.value)
        return None if inner is None or inner[0] == "const" else ("attr", inner, node.attr)
    if isinstance(node, ast.Constant):
        return ("const", node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "id" \
            and len(node.args) == 1 and not node.keywords:
        inner = _path(node.args[0])
        return None if inner is None else ("id", inner)
    return None


_assigns: Dict[Tuple[str, int], bool] = {}


def assigns_over_entry(filename: str, line: int) -> bool:
    """True when the line assigns an entry (``adj[i] = d * g``) rather than adding to it
    (``adj[i] += ...``, ``g[p] = g.get(p, 0.0) + ...``, ``g[p] = g[p] + ...``); False
    when the line cannot be read alone, so as never to accuse.

    >>> import linecache; linecache.cache["<s>"] = (0, None, ["a[i] = d * g\\n", "a[i] += d\\n",
    ...     "a[p] = a.get(p, 0.0) + t\\n"], "<s>")
    >>> [assigns_over_entry("<s>", n) for n in (1, 2, 3)]
    [True, False, False]
    """
    key = (filename, line)
    if key not in _assigns:
        _assigns[key] = _assigns_over(linecache.getline(filename, line).strip())
    return _assigns[key]


def _assigns_over(text: str) -> bool:
    try:
        statement = ast.parse(text).body[0]
    except (SyntaxError, IndexError, ValueError):
        return False
    if not isinstance(statement, ast.Assign):
        return False
    targets = [t for t in statement.targets if isinstance(t, ast.Subscript)]
    if not targets:
        return False
    for target in targets:
        whole, container, key = ast.unparse(target), ast.unparse(target.value), ast.unparse(target.slice)
        for node in ast.walk(statement.value):
            if isinstance(node, ast.Subscript) and ast.unparse(node) == whole:
                return False
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("get", "setdefault") and ast.unparse(node.func.value) == container \
                    and node.args and ast.unparse(node.args[0]) == key:
                return False
    return True


class KeyResolver:
    """The node a dict key names: the node itself, the value of an attribute every node
    holds a different int in (``var.id``), or ``id(node)``. The index of ints is rebuilt
    only when nodes were made since it was last built."""

    def __init__(self, reporter) -> None:
        self.reporter = reporter
        self._built_at = -1
        self._by_attr: Dict[str, Dict[int, object]] = {}
        self._order: Tuple[str, ...] = ()
        self._by_identity: Dict[int, object] = {}

    def node(self, key, *, ints: bool = True):
        """The node ``key`` names, or None."""
        if self.reporter.is_node(key):
            return key
        if not ints or type(key) is not int:
            return None
        found = self._lookup(key)
        if found is None and self._built_at != self.reporter.ids.issued:
            self._build()
            found = self._lookup(key)
        return found

    def _lookup(self, key: int):
        for name in self._order:
            found = self._by_attr[name].get(key)
            if found is not None:
                return found
        return self._by_identity.get(key)

    def _build(self) -> None:
        by_attr: Dict[str, Dict[int, object]] = {}
        clashes: Set[str] = set()
        identity: Dict[int, object] = {}
        for _, node in self.reporter.ids.live():
            identity[id(node)] = node
            for name, value in instance_items(node):
                if type(value) is int and name not in clashes:
                    index = by_attr.setdefault(name, {})
                    if value in index:
                        clashes.add(name)
                    index[value] = node
        for name in clashes:
            by_attr.pop(name, None)
        self._by_attr, self._by_identity = by_attr, identity
        self._order = tuple(sorted(by_attr, key=lambda n: ("id" not in n.lower(), n)))
        self._built_at = self.reporter.ids.issued


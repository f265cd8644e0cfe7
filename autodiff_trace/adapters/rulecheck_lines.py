"""Where a derivative rule lives: the line a ``wrong_derivative`` finding names.

A rule that adds into its parents' grads (micrograd's closures, ``mul_rule(node)``)
is named at its write. A rule that returns local grads for the engine's loop to
add (``Mul.backward``) is named at its ``return`` line. An engine that stores local
derivatives when the node is made (``self.children.append((other.value, z))``) is
named at the op's line that stores the one for that parent.
"""

from __future__ import annotations

import ast
import dis
import inspect
import linecache
import textwrap
import tokenize
from types import CodeType, FunctionType, SimpleNamespace
from typing import Dict, FrozenSet, Optional

from ..core.sites import format_site
from .roles import LARGEST as _LARGEST, instance_items, linking_object, static_attr

__all__ = ["rule_code", "own_rule", "context_rule", "stored_rule", "site_at", "writes_inside", "return_line",
           "storing_line", "asked_methods", "op_closure", "rule_site"]

_sites: Dict[CodeType, FrozenSet[str]] = {}
_returns: Dict[CodeType, Optional[int]] = {}
_asked: Dict[tuple, tuple] = {}


def rule_code(node, backward_attr: Optional[str], is_node=None) -> Optional[CodeType]:
    """The code of the node's backward function, read as stored (a bound method's function's);
    without one, that of the op context it is linked through (see :func:`context_rule`)."""
    if not backward_attr:
        return context_rule(node, is_node) if is_node is not None else None
    fn = static_attr(node, backward_attr)
    if fn is None:
        fn = getattr(type(node), backward_attr, None)
    fn = getattr(fn, "fn", fn)  # a reporting wrapper around the user's function
    if fn is not None and not hasattr(fn, "__code__") and not hasattr(fn, "__func__"):
        for name in ("backward", "apply", "__call__"):  # a grad_fn object: MulBackward(...)
            method = vars(type(fn)).get(name)
            if isinstance(method, FunctionType):
                return method.__code__
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    return code if isinstance(code, CodeType) else None


def own_rule(cls: type) -> Optional[CodeType]:
    """An op class's rule method (``Mul.backward(self, grad)``): its one method of its own,
    not a dunder, taking an argument besides ``self``; None when there is not exactly one."""
    found = [v.__code__ for k, v in vars(cls).items()
             if isinstance(v, FunctionType) and not k.startswith("__") and v.__code__.co_argcount >= 2]
    return found[0] if len(found) == 1 else None


def context_rule(node, is_node) -> Optional[CodeType]:
    """The rule of the op context a node is linked through (``ret._ctx = Mul(...)``):
    that class's ``backward``, a plain, static or class method."""
    holder = linking_object(node, is_node)
    if holder is None:
        return None
    for name in ("backward", "_backward", "backprop", "vjp"):
        entry = inspect.getattr_static(type(holder), name, None)
        code = getattr(getattr(entry, "__func__", entry), "__code__", None)
        if isinstance(code, CodeType):
            return code
    return None


def stored_rule(node, parent) -> Optional[CodeType]:
    """The code of the local-derivative function ``node`` stores for ``parent``: the
    function paired with it (``[(parent, lambda: other.val)]``, ``{parent: fn}``), if any."""
    for _, held in instance_items(node):
        if isinstance(held, dict) and len(held) <= _LARGEST:
            pairs = list(held.items())
        elif isinstance(held, (list, tuple)) and len(held) <= _LARGEST:
            pairs = [item for item in held if isinstance(item, tuple) and len(item) == 2]
        else:
            continue
        for first, fn in pairs:
            code = getattr(getattr(fn, "__func__", fn), "__code__", None)
            if first is parent and isinstance(code, CodeType):
                return code
    return None


def op_closure(node, op_code: Optional[CodeType]) -> Optional[CodeType]:
    """The code of a function the node holds that its op defined (``lambda ct: (ct * b, ct * a)``
    stored by ``__mul__``): the rule, whose line a finding names."""
    if op_code is None:
        return None
    nested = {c for c in op_code.co_consts if isinstance(c, CodeType)}
    for _, held in instance_items(node):
        code = getattr(getattr(held, "__func__", held), "__code__", None)
        if code in nested:
            return code
    return None


def site_at(code: CodeType, line: int) -> str:
    """``"engine.py:14"``, written as the tracer writes every site."""
    return format_site(SimpleNamespace(f_code=code, f_lineno=line))[0]


def rule_site(rule: CodeType, sites: list) -> str:
    """The write among ``sites`` made inside ``rule`` (or code nested in it), else the
    rule's ``return`` line: where a wrong local derivative is named."""
    inside = [s for s in sites if writes_inside(rule, s)]
    return inside[0] if inside else site_at(rule, return_line(rule))


def writes_inside(code: CodeType, site: str) -> bool:
    """Is ``site`` a line of ``code`` (or of a function nested in it)?"""
    sites = _sites.get(code)
    if sites is None:
        found, stack = set(), [code]
        while stack:
            c = stack.pop()
            found.update(site_at(c, line) for _, _, line in c.co_lines() if line is not None)
            stack.extend(k for k in c.co_consts if isinstance(k, CodeType))
        sites = _sites[code] = frozenset(found)
    return site in sites


def return_line(code: CodeType) -> int:
    """The line of the function's one ``return`` of a value, else its ``def`` line.

    >>> def rule(grad):
    ...     return grad * 2
    >>> return_line(rule.__code__) - rule.__code__.co_firstlineno
    1
    """
    if code not in _returns:
        lines = set()
        instructions = list(dis.get_instructions(code))
        for i, ins in enumerate(instructions):
            if ins.opname == "RETURN_VALUE" and i and not (
                    instructions[i - 1].opname == "LOAD_CONST" and instructions[i - 1].argval is None):
                lines.add(ins.positions.lineno if ins.positions else None)
            elif ins.opname == "RETURN_CONST" and ins.argval is not None:
                lines.add(ins.positions.lineno if ins.positions else None)
        lines.discard(None)
        _returns[code] = lines.pop() if len(lines) == 1 else None
    return _returns[code] or code.co_firstlineno


def storing_line(code: CodeType, made_at: int, arg_name: str) -> int:
    """In an op that stores local derivatives, the line of the statement that made the node
    holding the pair for ``arg_name`` (``(self.index, other.value)``), else the first line
    after it that starts with ``arg_name.`` (``self.children.append(...)``), else the line
    that made the node (``return Node(t, ((a, 1 - t * t),))``)."""
    paired = _pair_line(code, made_at, arg_name)
    if paired is not None:
        return paired
    last = max((line for _, _, line in code.co_lines() if line is not None), default=made_at)
    prefix = f"{arg_name}."
    for line in range(made_at + 1, last + 1):
        if linecache.getline(code.co_filename, line).lstrip().startswith(prefix):
            return line
    return made_at


def _pair_line(code: CodeType, made_at: int, arg_name: str) -> Optional[int]:
    """In the statement of ``code`` running at ``made_at``, the line of a pair whose first
    item is ``arg_name`` or read from it (``(self.index, w)``, ``(x, lambda: 1 - t * t)``),
    not a plain tuple of names (``(self, other)``); None when there is none."""
    statement = _statement_at(code, made_at)
    if statement is None:
        return None
    for node in ast.walk(statement):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 and _reads(node.elts[0], arg_name) \
                and not all(isinstance(e, ast.Name) for e in node.elts):
            return node.lineno
    return None


def _reads(expr: ast.AST, name: str) -> bool:
    """``name`` itself, or an attribute or item read from it (``self.index``)."""
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return isinstance(expr, ast.Name) and expr.id == name


def _statement_at(code: CodeType, line: int) -> Optional[ast.stmt]:
    """The innermost statement of the function ``code`` that spans ``line``, parsed from its source."""
    lines = linecache.getlines(code.co_filename)
    start = code.co_firstlineno - 1
    if not lines or start >= len(lines):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(inspect.getblock(lines[start:]))))
    except (SyntaxError, IndentationError, tokenize.TokenError):
        return None
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.lineno + start <= line <= node.end_lineno + start:
            if found is None or node.lineno >= found.lineno and node.end_lineno <= found.end_lineno:
                found = node
    if found is not None:
        ast.increment_lineno(found, start)
    return found


def asked_methods(rule: CodeType, cls: type) -> tuple:
    """Methods of the node's class that its rule calls on the node with no arguments
    (``self.local_grads()``): where a rule shared by every op gets each op's local derivatives."""
    key = (rule, cls)
    if key not in _asked:
        found = []
        if rule.co_argcount:
            instructions = list(dis.get_instructions(rule))
            for ins, after in zip(instructions, instructions[1:]):
                if ins.opname == "LOAD_FAST" and ins.argval == rule.co_varnames[0] \
                        and after.opname in ("LOAD_METHOD", "LOAD_ATTR") and after.argval != rule.co_name:
                    method = inspect.getattr_static(cls, after.argval, None)
                    if isinstance(method, FunctionType) and method.__code__.co_argcount == 1 \
                            and method not in found:
                        found.append(method)
        _asked[key] = tuple(found)
    return _asked[key]

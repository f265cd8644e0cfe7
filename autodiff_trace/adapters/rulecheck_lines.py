"""Where a derivative rule lives: the line a ``wrong_derivative`` finding names.

A rule that adds into its parents' grads (micrograd's closures, ``mul_rule(node)``)
is named at its write. A rule that returns local grads for the engine's loop to
add (``Mul.backward``) is named at its ``return`` line. An engine that stores local
derivatives when the node is made (``self.children.append((other.value, z))``) is
named at the op's line that stores the one for that parent.
"""

from __future__ import annotations

import dis
import linecache
from types import CodeType, FunctionType, SimpleNamespace
from typing import Dict, FrozenSet, Optional

from ..core.sites import format_site
from .roles import static_attr

__all__ = ["rule_code", "own_rule", "site_at", "writes_inside", "return_line", "storing_line"]

_sites: Dict[CodeType, FrozenSet[str]] = {}
_returns: Dict[CodeType, Optional[int]] = {}


def rule_code(node, backward_attr: Optional[str]) -> Optional[CodeType]:
    """The code of the node's backward function, read as stored (a bound method's function's)."""
    if not backward_attr:
        return None
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


def site_at(code: CodeType, line: int) -> str:
    """``"engine.py:14"``, written as the tracer writes every site."""
    return format_site(SimpleNamespace(f_code=code, f_lineno=line))[0]


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
    """In an op that stores local derivatives, the first line after the node was made
    that starts with ``arg_name.`` (``self.children.append(...)``), else the line that
    made the node (``return Node(t, ((a, 1 - t * t),))``)."""
    last = max((line for _, _, line in code.co_lines() if line is not None), default=made_at)
    prefix = f"{arg_name}."
    for line in range(made_at + 1, last + 1):
        if linecache.getline(code.co_filename, line).lstrip().startswith(prefix):
            return line
    return made_at

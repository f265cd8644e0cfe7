"""What a line of user code does, read from its bytecode: cached per code object.

Three questions the adapters ask about code they did not write: does this write
to a gradient assign over it (``a.der = out.der``) or add to it (``+=``)? Is this
backward function a no-op (micrograd's ``lambda: None`` on a leaf)? Does this
function build backward rules (so it is an op, and the user's line is its caller)?
"""

from __future__ import annotations

import dis
import functools
import linecache
from types import CodeType, FrameType
from typing import Dict, List, Optional, Tuple

from ..core.sites import format_site
from .detect import stored_attributes

__all__ = ["write_site", "assigns_over", "is_noop", "builds_rules", "returns_what_it_makes", "makes_for_its_caller",
           "WRAPPERS"]

# Keyed by id(code); the code object is kept in the value so its id is never reused.
_instructions: Dict[int, Tuple[CodeType, List[dis.Instruction], Dict[int, int]]] = {}
_writes: Dict[Tuple[int, int], Tuple[str, bool]] = {}
_noops: Dict[int, Tuple[CodeType, bool]] = {}
_rule_builders: Dict[Tuple[int, str], Tuple[CodeType, bool]] = {}

# Instructions that end the statement before the one being read.
_STATEMENT_ENDS = frozenset({
    "POP_TOP", "STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF", "STORE_ATTR",
    "STORE_SUBSCR", "RESUME", "RETURN_VALUE", "RETURN_CONST", "NOP",
})
_NO_OP_NAMES = frozenset({"RESUME", "NOP", "CACHE", "EXTENDED_ARG"})


def _read(code: CodeType) -> Tuple[List[dis.Instruction], Dict[int, int]]:
    entry = _instructions.get(id(code))
    if entry is None:
        instructions = list(dis.get_instructions(code))
        entry = _instructions[id(code)] = (
            code, instructions, {ins.offset: i for i, ins in enumerate(instructions)})
    return entry[1], entry[2]


def write_site(frame: FrameType) -> Tuple[str, bool]:
    """``("file.py:14", replaced)`` for the attribute write the frame is executing."""
    code, lasti = frame.f_code, frame.f_lasti
    key = (id(code), lasti)
    hit = _writes.get(key)
    if hit is None:
        _read(code)  # keeps the code object alive while its id is a key
        hit = _writes[key] = (format_site(frame)[0], assigns_over(code, lasti))
    return hit


def assigns_over(code: CodeType, offset: int) -> bool:
    """True when the ``STORE_ATTR`` at ``offset`` replaces the attribute's value rather
    than updating it: not ``x.g += ...``, and no read of the same ``x.g`` on its right.

    >>> def rules(a, out):
    ...     a.der = out.der
    ...     a.der += out.der
    >>> [assigns_over(rules.__code__, i.offset)
    ...  for i in dis.get_instructions(rules) if i.opname == "STORE_ATTR"]
    [True, False]
    """
    instructions, index_of = _read(code)
    i = index_of.get(offset)
    if i is None or instructions[i].opname != "STORE_ATTR":
        return False  # setattr() or a C caller: we cannot tell, so do not accuse
    store = instructions[i]
    before = [ins for ins in instructions[max(0, i - 3):i] if ins.opname not in _NO_OP_NAMES]
    if before and before[-1].opname in ("SWAP", "ROT_TWO") and len(before) >= 2:
        op = before[-2]
        if op.opname.startswith("INPLACE_") or (op.opname == "BINARY_OP" and op.argrepr.endswith("=")):
            return False  # augmented assignment: x.g += ...
    target = _source_of(code, store)
    line = _line_of(store)
    j = i - 1
    while j >= 0:
        ins = instructions[j]
        branching = ins.opname.startswith(("POP_JUMP", "JUMP"))
        if ins.opname in _STATEMENT_ENDS or branching and (line is None or _line_of(ins) != line):
            break  # a branch inside the line (``g if x.g is None else x.g + g``) is still its right side
        if ins.opname == "LOAD_ATTR" and ins.argval == store.argval and not _only_tested(instructions, j):
            source = _source_of(code, ins)
            if target is None or source is None:
                if _same_loader(instructions, i, j):
                    return False
            elif source == target:
                return False  # x.g = x.g + ...: an update written out in full
        if ins.is_jump_target and (line is None or _line_of(ins) != line):
            break
        j -= 1
    return True


def _line_of(ins: dis.Instruction) -> Optional[int]:
    pos = getattr(ins, "positions", None)
    return None if pos is None else pos.lineno


def _only_tested(instructions: List[dis.Instruction], load: int) -> bool:
    """Is the value loaded at ``load`` only tested (``x.g is None``), not added to?"""
    after = [ins.opname for ins in instructions[load + 1:load + 4] if ins.opname not in _NO_OP_NAMES]
    return bool(after) and (after[0].startswith(("POP_JUMP", "JUMP_IF")) or
                            after[0] == "LOAD_CONST" and len(after) > 1 and after[1] in ("IS_OP", "COMPARE_OP"))


def _same_loader(instructions: List[dis.Instruction], store: int, load: int) -> bool:
    """Without source: do the instructions just before both load the same name?"""
    a, b = instructions[store - 1], instructions[load - 1]
    return a.opname.startswith("LOAD_") and (a.opname, a.argval) == (b.opname, b.argval)


def _source_of(code: CodeType, ins: dis.Instruction) -> Optional[str]:
    """The source text an instruction spans (``a.grad``), or None when unknown."""
    pos = getattr(ins, "positions", None)
    if pos is None or pos.lineno is None or pos.col_offset is None or pos.end_col_offset is None:
        return None
    lines = [linecache.getline(code.co_filename, n).encode("utf-8")
             for n in range(pos.lineno, (pos.end_lineno or pos.lineno) + 1)]
    if not any(lines):
        return None
    if len(lines) == 1:
        return lines[0][pos.col_offset:pos.end_col_offset].decode("utf-8", "replace")
    text = [lines[0][pos.col_offset:], *lines[1:-1], lines[-1][:pos.end_col_offset]]
    return b"".join(text).decode("utf-8", "replace")


def is_noop(fn) -> bool:
    """True for a backward function that does nothing (``lambda: None``, ``def f(): pass``).

    >>> is_noop(lambda: None), is_noop(lambda: print())
    (True, False)
    """
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if not isinstance(code, CodeType):
        return False
    entry = _noops.get(id(code))
    if entry is None:
        work = [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in _NO_OP_NAMES]
        noop = work in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])
        entry = _noops[id(code)] = (code, noop)
    return entry[1]


_returning: dict = {}


def makes_for_its_caller(creator: FrameType, grad_attr: str, has_parents: bool, may_link: bool, skip) -> bool:
    """Is ``creator`` an op making a node for its caller, whose line names the node: an op
    function making a node with parents (``add(a, b)``: one building rules, or one returning
    the node it made), one that names its result to link it afterwards (``ret = Tensor(...)``;
    ``ret._ctx = ctx``; ``return ret``, when the node class ``may_link`` so), or a
    comprehension inside such an op wrapping numbers?"""
    code = creator.f_code
    if code.co_name in _COMPREHENSIONS:
        return creator.f_back is not None and creator.f_back.f_code in skip
    if code.co_name == "<module>":
        return False
    if has_parents:
        return builds_rules(code, grad_attr) or returns_what_it_makes(creator)
    return may_link and returns_what_it_makes(creator, named_first=True)


_COMPREHENSIONS = frozenset({"<listcomp>", "<genexpr>", "<dictcomp>", "<setcomp>"})


def _unbound_partialmethod_code() -> CodeType:
    class Probe:
        def op(self):
            pass
        wrapped = functools.partialmethod(op)
    return Probe.wrapped.__code__


# The standard library's wrappers an op may be called through (``Tensor.__add__ = Tensor.add``
# with ``add`` a ``partialmethod``): the user's line is their caller's.
WRAPPERS = (_unbound_partialmethod_code(),)


def returns_what_it_makes(frame: FrameType, named_first: bool = False) -> bool:
    """True when the frame is making a node it returns: an op function such as
    ``def mul(a, b): return Var(a.value * b.value, (a, b), ...)``, or one that names it
    first (``ret = Tensor(...)``; ``ret._ctx = ctx``; ``return ret``; only that form when
    ``named_first``)."""
    code = frame.f_code
    key = (code.co_filename, code.co_name, frame.f_lineno)
    hit = _returning.get(key)
    if hit is None:
        line = linecache.getline(code.co_filename, frame.f_lineno, frame.f_globals).strip()
        name, sep, _ = line.partition("=")
        hit = _returning[key] = ("return" if line.startswith("return ") else
                                 "named" if sep and name.strip() in _returned_locals(code) else "")
    return hit == "named" if named_first else bool(hit)


def _returned_locals(code: CodeType) -> set:
    """Local names a function returns as they are (``return ret``)."""
    instructions, _ = _read(code)
    work = [ins for ins in instructions if ins.opname not in _NO_OP_NAMES]
    return {a.argval for a, b in zip(work, work[1:]) if a.opname == "LOAD_FAST" and b.opname == "RETURN_VALUE"}


def builds_rules(code: CodeType, grad_attr: str) -> bool:
    """True when a function defines a nested function that writes ``grad_attr``: an op
    such as ``add`` whose backward closure does ``a.grad += out.grad``."""
    key = (id(code), grad_attr)
    entry = _rule_builders.get(key)
    if entry is None:
        nested = [c for c in code.co_consts if isinstance(c, CodeType)]
        entry = _rule_builders[key] = (code, any(grad_attr in stored_attributes(c) for c in nested))
    return entry[1]

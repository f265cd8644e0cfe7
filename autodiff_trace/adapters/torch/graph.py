"""Autograd nodes and leaves as trace nodes: their ids, their names, the graph under a root.

An autograd node keeps its id in ``node.metadata`` (``id()`` is reused across passes
and nodes take no weak references). A leaf tensor keeps one id for the whole run,
whichever ``AccumulateGrad`` node stands for it in each step's graph, so a
parameter is the same node from one step to the next.
"""

from __future__ import annotations

import os
import sys
import weakref
from types import FrameType
from typing import Dict, List, Optional, Tuple

import torch

from ...core.sites import PACKAGE_DIR, user_frame
from .summary import described, norm, op_name

__all__ = ["KEY", "Leaf", "Registry", "walk", "LIBRARY_CODE", "EVERYTHING"]

KEY = "autodiff_trace"  # the key of our id in an autograd node's metadata
_ACCUMULATE = "AccumulateGrad"


class _LibraryCode(set):
    """The code a user's line is looked for past (torch, installed packages, the stdlib), as
    a plain set of code objects, so the tracer's frame walk tests membership at C speed;
    :meth:`learn` adds the library code under a frame before the tracer walks it."""

    def __init__(self) -> None:
        super().__init__()
        dirs = {os.path.dirname(os.path.dirname(torch.__file__)), os.path.dirname(os.__file__)}
        self._prefixes = tuple(d + os.sep for d in dirs) + (PACKAGE_DIR, "<frozen")
        self._users: set = set()  # code known to be the user's

    def is_library(self, code) -> bool:
        return code in self or (code not in self._users and code.co_filename.startswith(self._prefixes))

    def learn(self, frame: Optional[FrameType]) -> None:
        """Walk out from ``frame`` to the first user code, adding library code on the way."""
        while frame is not None:
            code = frame.f_code
            if code in self:
                frame = frame.f_back
            elif code in self._users:
                return
            elif code.co_filename.startswith(self._prefixes):
                self.add(code)
                frame = frame.f_back
            else:
                self._users.add(code)
                return

    def __hash__(self) -> int:  # a set is not hashable; this one is a singleton
        return id(self)


class _Everything:
    """Every code object: a node reported with it has no user line."""

    def __contains__(self, code) -> bool:
        return True


LIBRARY_CODE = _LibraryCode()
EVERYTHING = _Everything()


class Leaf:
    """A leaf tensor across passes: what its grad held when the last pass that wrote it ended."""

    __slots__ = ("node", "name", "ref", "grad_after", "version", "grad_ref", "grad_version", "pass_no",
                 "site", "__weakref__")

    def __init__(self, node: int, name: str, tensor: torch.Tensor) -> None:
        self.node, self.name = node, name
        self.ref = weakref.ref(tensor)
        self.grad_after = 0.0  # norm of .grad after the last pass that wrote it
        self.version = -1  # the tensor's version counter then: it moves when the tensor is updated
        self.grad_ref = None  # a weak reference to that .grad tensor
        self.grad_version = -1
        self.pass_no = 0  # the pass that wrote it last
        self.site: Optional[str] = None  # where that pass's backward() was called

    def remember(self, grad: Optional[torch.Tensor], grad_norm: float, pass_no: int, site) -> None:
        tensor = self.ref()
        self.grad_after, self.pass_no, self.site = grad_norm, pass_no, site
        self.version = -1 if tensor is None else tensor._version
        self.grad_ref = None if grad is None else weakref.ref(grad)
        self.grad_version = -1 if grad is None else grad._version

    def grad_now(self) -> Tuple[Optional[torch.Tensor], float]:
        """The leaf's ``.grad`` and its norm, without recomputing a norm the trace knows."""
        tensor = self.ref()
        grad = None if tensor is None else tensor.grad
        if grad is None:
            return None, 0.0
        if self.grad_ref is not None and self.grad_ref() is grad and grad._version == self.grad_version:
            return grad, self.grad_after
        return grad, norm(grad)


class Registry:
    """Ids, names and creation sites of the nodes of one run."""

    def __init__(self) -> None:
        self.issued = 0
        self.leaves: Dict[int, Leaf] = {}  # id(tensor) -> Leaf
        self.leaf_of: Dict[int, Leaf] = {}  # node id -> Leaf
        self.made: Dict[int, Tuple[str, Optional[str]]] = {}  # op node id -> (name, site)
        self._param_names: Dict[int, str] = {}  # id(parameter or module) -> "model.0.weight", "model.0"
        self._modules: Dict[int, Tuple[weakref.ref, str]] = {}  # id(module) -> (it, its name)

    def new_id(self) -> int:
        self.issued += 1
        return self.issued

    def id_of(self, fn) -> Optional[int]:
        return fn.metadata.get(KEY)

    def name(self, node: int) -> str:
        leaf = self.leaf_of.get(node)
        if leaf is not None:
            return leaf.name
        made = self.made.get(node)
        return made[0] if made else f"#{node}"

    def site(self, node: int) -> Optional[str]:
        made = self.made.get(node)
        return made[1] if made else None

    # -- reporting new nodes ------------------------------------------------------------
    def report(self, tracer, fn, skip, op: Optional[str] = None, value: float = 0.0,
               output: Optional[torch.Tensor] = None, module: Optional[str] = None) -> int:
        """Give ``fn`` and every node under it an id, reporting the new ones, parents first.

        ``op``, ``value`` and ``output`` are the torch function that made ``fn``, the norm of
        its output and the output, when the forward was seen; nodes made inside it report
        0.0 (not seen). ``skip`` is passed to the tracer to find the user's line; ``module``
        is the name of the model part the call ran in (``model.0``), for every new op node.
        """
        stack: List[Tuple[object, bool]] = [(fn, False)]
        while stack:
            node, expanded = stack.pop()
            metadata = node.metadata
            if KEY in metadata:
                continue
            if type(node).__name__ == _ACCUMULATE:
                self._report_leaf(tracer, node, skip)
                continue
            inputs = [nxt for nxt, _ in node.next_functions if nxt is not None]
            if not expanded:
                new = [(nxt, False) for nxt in inputs if KEY not in nxt.metadata]
                if new:  # its inputs first; a node whose inputs all have ids goes out at once
                    stack.append((node, True))
                    stack.extend(new)
                    continue
            node_id = metadata[KEY] = self.new_id()
            parents = tuple(meta[KEY] for meta in (nxt.metadata for nxt in inputs) if KEY in meta)
            self.made[node_id] = (op_name(node), None)
            mine = node is fn
            tracer.node_created(node_id, op if mine and op else op_name(node), value if mine else 0.0,
                                parents, skip=skip, obj=output if mine else None, on_emit=self._settled,
                                module=module, tensor=described(output) if mine and output is not None else None)
        return fn.metadata[KEY]

    def _settled(self, event) -> None:
        """The tracer has named the node (after its line's assignment) and placed it."""
        if event.node in self.made:
            self.made[event.node] = (event.name, event.site)

    def _report_leaf(self, tracer, acc, skip) -> None:
        tensor = acc.variable
        leaf = self.leaves.get(id(tensor))
        if leaf is None or leaf.ref() is not tensor:
            leaf = Leaf(self.new_id(), self._leaf_name(tensor), tensor)
            self.leaves[id(tensor)] = self.leaf_of[leaf.node] = leaf
            weakref.finalize(tensor, self._forget, id(tensor), leaf.node)
            owner = leaf.name.rpartition(".")[0] if isinstance(tensor, torch.nn.Parameter) else ""
            tracer.node_created(leaf.node, "", norm(tensor), (), leaf.name, skip=skip, module=owner or None,
                                tensor=described(tensor))
        acc.metadata[KEY] = leaf.node

    def _forget(self, key: int, node: int) -> None:
        leaf = self.leaf_of.pop(node, None)
        if leaf is not None and self.leaves.get(key) is leaf:
            del self.leaves[key]

    def forget_made(self) -> None:
        """Drop what is kept about op nodes (their graphs are gone after a pass)."""
        self.made.clear()

    # -- names ----------------------------------------------------------------------------
    def module_name(self, module: torch.nn.Module, frame: Optional[FrameType]) -> str:
        """The name the script knows a module by (``model.0``, ``net.encoder``), looked up in
        the variables of the user's frames from ``frame`` out; else its class's name."""
        entry = self._modules.get(id(module))
        if entry is None or entry[0]() is not module:
            name = self._param_names.get(id(module))
            if name is None:
                self._param_names = _names_in_scope(frame)
                name = self._param_names.get(id(module)) or type(module).__name__
            entry = self._modules[id(module)] = (weakref.ref(module), name)
        return entry[1]

    def _leaf_name(self, tensor: torch.Tensor) -> str:
        name = self._param_names.get(id(tensor))
        if name is None:
            LIBRARY_CODE.learn(sys._getframe(1))
            self._param_names = _names_in_scope(user_frame(LIBRARY_CODE))
            name = self._param_names.get(id(tensor))
        return name or f"leaf{tuple(tensor.shape)}"


def _names_in_scope(frame: Optional[FrameType]) -> Dict[int, str]:
    """id(tensor) -> the name the user knows it by, from the variables of the user's frames:
    ``model.0.weight`` for a parameter of a module ``model``, ``w`` for a tensor ``w``, and
    id(module) -> ``model``, ``model.0`` for the module and its parts.
    The outermost frames come first: the script's own names beat a method's ``self``."""
    frames = []
    while frame is not None:
        if not LIBRARY_CODE.is_library(frame.f_code):
            frames.append(frame)
        frame = frame.f_back
    names: Dict[int, str] = {}
    seen_globals = set()
    for f in reversed(frames):
        spaces = [f.f_locals]
        if id(f.f_globals) not in seen_globals:
            seen_globals.add(id(f.f_globals))
            spaces.insert(0, f.f_globals)
        for space in spaces:
            for var, value in list(space.items()):
                if var.startswith("__"):
                    continue
                if isinstance(value, torch.Tensor):
                    names.setdefault(id(value), var)
                elif isinstance(value, torch.nn.Module):
                    for pname, param in value.named_parameters():
                        names.setdefault(id(param), f"{var}.{pname}")
                    for mname, part in value.named_modules():
                        names.setdefault(id(part), f"{var}.{mname}" if mname else var)
    return names


def walk(roots) -> Tuple[List[object], Dict[int, List[int]]]:
    """The nodes under ``roots`` in a topological order, roots first (no recursion), and,
    for each node's id, the ids of the nodes that send it a gradient."""
    post: List[object] = []
    senders: Dict[int, List[int]] = {}
    seen = set()
    stack: List[Tuple[object, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            post.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        me = node.metadata.get(KEY)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                senders.setdefault(nxt.metadata.get(KEY), []).append(me)
                if id(nxt) not in seen:
                    stack.append((nxt, False))
    post.reverse()
    return post, senders

"""The forward as it runs: every autograd node reported where the user's line made it.

A ``TorchFunctionMode`` sees each torch function the script calls (``model(x)``
reaches it as ``linear``, ``relu``, ...). When the result carries a new autograd
node, the node (and any made inside the call) is reported with the user's line, so
the tracer names it after the assignment (``out = model(x)`` names ``out``). A
``.detach()`` of a tensor that has a graph is remembered with its line, and so is
every node made from the detached tensor: that is where a graph was cut.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Dict, List, Optional

import torch
from torch.overrides import TorchFunctionMode

from ...core.sites import format_site, user_frame
from ...core.tracer import active_tracer
from .graph import KEY, LIBRARY_CODE, Registry
from .summary import norm

__all__ = ["Cut", "ForwardRecorder"]

_Tensor = torch.Tensor
_DETACH = (torch.Tensor.detach, torch.detach)
_MODULE_CALL = torch.nn.Module._call_impl.__code__  # the frame of every module call
_stack_depth = torch._C._len_torch_function_stack
_stack_at = torch._C._get_function_stack_at


class Cut:
    """A ``.detach()`` of a tensor with a graph: where, the node it cut off, what used it."""

    __slots__ = ("site", "source", "users")

    def __init__(self, site: Optional[str], source) -> None:
        self.site = site
        self.source = source  # the autograd node of the detached tensor, until the next pass ends
        self.users: List[int] = []  # ids of nodes computed from the detached tensor


class ForwardRecorder(TorchFunctionMode):
    """Reports the nodes the forward makes to the active tracer; records where graphs are cut."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry
        self.cuts: Dict[int, tuple] = {}  # id(detached tensor) -> (weak reference, Cut), while it lives
        self.used: List[Cut] = []  # the cuts whose detached tensor went into a new node
        self.aside_in: set = set()  # the threads where it stepped aside (see ``step_aside``)

    def step_aside(self) -> bool:
        """Leave the mode stack while code that builds no graph runs (an optimizer's step,
        ``zero_grad``): each torch call there, ``p.grad`` included, would pay the mode's
        dispatch. False when another mode is on top of ours: then it stays."""
        depth = _stack_depth()
        if depth and _stack_at(depth - 1) is self:
            torch._C._pop_torch_function_stack()
            self.aside_in.add(threading.get_ident())
            return True
        return False

    def step_back(self) -> None:
        """Back on the mode stack, if this thread stepped aside (a step that raised never
        came back: the next traced entry point calls this)."""
        thread = threading.get_ident()
        if thread in self.aside_in:
            self.aside_in.discard(thread)
            torch._C._push_on_torch_function_stack(self)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        tracer = active_tracer()
        if tracer is None:
            return result
        if result.__class__ is _Tensor or isinstance(result, _Tensor):
            fn = result.grad_fn
            if fn is not None:
                if KEY not in fn.metadata:
                    self._made(tracer, func, fn, result, args)
            elif func in _DETACH and args and isinstance(args[0], _Tensor) and args[0].grad_fn is not None:
                self._cut(result, args[0].grad_fn)
        elif isinstance(result, (tuple, list)):
            for item in result:
                if isinstance(item, _Tensor) and item.grad_fn is not None and KEY not in item.grad_fn.metadata:
                    self._made(tracer, func, item.grad_fn, item, args)
        return result

    def _made(self, tracer, func, fn, output: torch.Tensor, args) -> None:
        frame = sys._getframe(2)
        LIBRARY_CODE.learn(frame)
        name = getattr(func, "__name__", "")
        op = None if not name or name.startswith("_") else name  # __mul__: the node's own op, mul
        module = None
        while frame is not None:  # the innermost module call under way, if any
            if frame.f_code is _MODULE_CALL:
                part = frame.f_locals.get("self")
                if isinstance(part, torch.nn.Module):
                    module = self.registry.module_name(part, frame)
                break
            frame = frame.f_back
        node = self.registry.report(tracer, fn, LIBRARY_CODE, op, norm(output), output, module)
        if self.cuts:
            self._note_users(node, args)

    def _cut(self, detached: torch.Tensor, source) -> None:
        LIBRARY_CODE.learn(sys._getframe(2))
        frame = user_frame(LIBRARY_CODE)
        cut = Cut(None if frame is None else format_site(frame)[0], source)
        key = id(detached)
        cuts = self.cuts

        def gone(ref, key=key) -> None:
            if cuts.get(key, (None,))[0] is ref:
                del cuts[key]
        self.cuts[key] = (weakref.ref(detached, gone), cut)

    def _note_users(self, node: int, args) -> None:
        for arg in args:
            items = arg if isinstance(arg, (list, tuple)) else (arg,)
            for item in items:
                entry = self.cuts.get(id(item))
                if entry is not None and entry[0]() is item:
                    if not entry[1].users:
                        self.used.append(entry[1])
                    entry[1].users.append(node)

    def take_cuts(self) -> List[Cut]:
        """The cuts used so far; the recorder forgets them (and the graphs they hold)."""
        used, self.used = self.used, []
        self.cuts.clear()
        return used

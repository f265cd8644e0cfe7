"""Switch PyTorch tracing on and off: the forward recorder, the patched entry points.

While on, ``Tensor.backward``, ``torch.autograd.backward`` and ``torch.autograd.grad``
are wrappers that trace the pass when a tracer listens (and only call the original
otherwise), and ``zero_grad`` of optimizers and modules reports the reset it makes.
``stop`` puts back exactly what was there.
"""

from __future__ import annotations

import functools
import sys
from typing import List, Optional, Tuple

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ...core.tracer import active_tracer
from .forward import ForwardRecorder
from .graph import Registry
from .passes import PassTracer
from .rules import GenericDuplicates

__all__ = ["TorchTracing"]

_MISSING = object()


def _first_tensor(value) -> Optional[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        return next((v for v in value if isinstance(v, torch.Tensor)), None)
    return None


def _as_list(value) -> list:
    return [value] if isinstance(value, torch.Tensor) else list(value or ())


def _argument(args, kwargs, position: int, *names):
    if len(args) > position:
        return args[position]
    return next((kwargs[n] for n in names if n in kwargs), None)


class TorchTracing:
    """PyTorch tracing for one run: ``start()`` patches, ``stop()`` restores."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.recorder = ForwardRecorder(self.registry)
        self.passes = PassTracer(self.registry, self.recorder)
        self.duplicates = self.passes.duplicates = GenericDuplicates(self.passes.passes)
        self._patches: List[Tuple[object, str, object, object]] = []
        self._hooks: list = []  # the optimizer step hooks' handles
        self._filtered: list = []  # tracers given the duplicates filter
        self._running = False
        self._warned = False
        self.active = False

    def start(self) -> "TorchTracing":
        self.recorder.__enter__()
        self.active = True
        autograd = torch.autograd
        self._patch(autograd, "backward", self._pass_entry(
            autograd.backward, roots=(0, "tensors"), seed=(1, "grad_tensors", "grad_variables")))
        self._patch(autograd, "grad", self._pass_entry(
            autograd.grad, roots=(0, "outputs"), seed=(2, "grad_outputs"), accumulates=False))
        self._patch(torch.Tensor, "backward", self._pass_entry(
            torch.Tensor.backward, roots=(0, "self"), seed=(1, "gradient")))
        self._patch(torch.optim.Optimizer, "zero_grad", self._zero_entry(
            torch.optim.Optimizer.zero_grad,
            lambda opt: [p for group in opt.param_groups for p in group["params"]]))
        self._patch(torch.nn.Module, "zero_grad", self._zero_entry(
            torch.nn.Module.zero_grad, lambda module: module.parameters()))
        recorder = self.recorder  # an optimizer's step builds no graph: the recorder steps aside
        self._hooks = [register_optimizer_step_pre_hook(lambda *_: recorder.step_aside() and None),
                       register_optimizer_step_post_hook(self._after_step)]
        return self

    def stop(self) -> None:
        """Restore every entry point (unless someone replaced ours since) and leave the forward."""
        if not self.active:
            return
        self.active = False
        tracer = active_tracer()
        if tracer is not None:
            try:
                self.passes.finish(tracer)
            except Exception as exc:
                self._warn(exc)
        for owner, name, old, new in reversed(self._patches):
            if owner.__dict__.get(name) is new:
                if old is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, old)
        self._patches.clear()
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self.recorder.step_back()
        stack = torch.overrides._get_current_function_mode_stack()
        if stack and stack[-1] is self.recorder:
            self.recorder.__exit__(None, None, None)
        for tracer in self._filtered:
            if self.duplicates in tracer.filters:
                tracer.filters = [f for f in tracer.filters if f is not self.duplicates]
        self._filtered.clear()

    def _patch(self, owner, name: str, new) -> None:
        self._patches.append((owner, name, owner.__dict__.get(name, _MISSING), new))
        setattr(owner, name, new)

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            print(f"autodiff_trace: a PyTorch pass could not be traced ({type(exc).__name__}: {exc}); "
                  f"the script runs on untraced", file=sys.stderr)

    # -- the wrappers -----------------------------------------------------------------------
    def _pass_entry(self, original, *, roots: tuple, seed: tuple, accumulates: bool = True):
        tracing = self

        @functools.wraps(original)
        def entry(*args, **kwargs):
            tracer = active_tracer()
            if tracer is None or tracing._running:
                return original(*args, **kwargs)
            tracing.recorder.step_back()  # after an optimizer step that raised
            tracing._running = True
            try:
                try:
                    tracing._filter(tracer)
                    root_tensors = _as_list(_argument(args, kwargs, *roots))
                    seed_tensor = _first_tensor(_argument(args, kwargs, *seed))
                except Exception as exc:
                    tracing._warn(exc)
                    return original(*args, **kwargs)
                return tracing.passes.run(tracer, lambda: original(*args, **kwargs), root_tensors,
                                          seed_tensor, accumulates, tracing._warn)
            finally:
                tracing._running = False
        return entry

    def _zero_entry(self, original, params_of):
        tracing = self

        @functools.wraps(original)
        def zero_grad(owner, *args, **kwargs):
            tracing.recorder.step_back()  # after an optimizer step that raised
            aside = tracing.recorder.step_aside()  # zeroing builds no graph
            try:
                result = original(owner, *args, **kwargs)
            finally:
                if aside:
                    tracing.recorder.step_back()
            tracer = active_tracer()
            if tracer is not None and not tracing._running:
                try:
                    tracing.passes.check_zeroed(tracer, tracing.passes.leaves_of(params_of(owner)))
                except Exception as exc:
                    tracing._warn(exc)
            return result
        return zero_grad

    def _after_step(self, *_) -> None:
        """An optimizer step is over: the recorder comes back, and a pass that added to stale
        gradients is a finding if the step used them."""
        self.recorder.step_back()
        tracer = active_tracer()
        if tracer is not None and self.passes.pending_stale and not self._running:
            try:
                self.passes.settle_stale(tracer, set())
            except Exception as exc:
                self._warn(exc)

    def _filter(self, tracer) -> None:
        """The tracer drops the generic findings our rules replace in torch's passes."""
        if self.duplicates not in tracer.filters:
            tracer.filters = [*tracer.filters, self.duplicates]
            self._filtered.append(tracer)

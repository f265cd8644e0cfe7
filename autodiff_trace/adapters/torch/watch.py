"""Install torch tracing when the script imports torch, without ever importing it ourselves.

A ``sys.meta_path`` finder sees ``import torch`` before it happens; it lets the
normal finders locate torch and wraps the loader so that, once torch's own
``__init__`` has run, the tracing is switched on. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Optional

__all__ = ["TorchWatch", "watch_torch"]

_watching: list = []  # the watches started and not stopped, innermost last


class _Loader(importlib.abc.Loader):
    """Torch's own loader, then a callback once the module is fully executed."""

    def __init__(self, loader, on_loaded) -> None:
        self.loader, self.on_loaded = loader, on_loaded

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.on_loaded()

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


class _TorchImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it only wraps the loader the other finders give torch."""

    def __init__(self, on_loaded) -> None:
        self.on_loaded = on_loaded
        self.searching = False

    def find_spec(self, fullname, path, target=None):
        if fullname != "torch" or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.searching = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, self.on_loaded)
        return spec


class TorchWatch:
    """Torch tracing for the span of a traced run: on when torch is imported, off at ``stop``."""

    def __init__(self) -> None:
        self.tracing = None  # the TorchTracing, once torch is imported
        self._finder: Optional[_TorchImportFinder] = None

    def start(self) -> "TorchWatch":
        _watching.append(self)
        if len(_watching) > 1:  # an enclosing watch traces torch already
            return self
        if "torch" in sys.modules and hasattr(sys.modules["torch"], "autograd"):
            self._activate()
        else:
            self._finder = _TorchImportFinder(self._activate)
            sys.meta_path.insert(0, self._finder)
        return self

    def _activate(self) -> None:
        self._remove_finder()
        if self.tracing is not None or self not in _watching:
            return
        tracing = None
        try:
            from .tracing import TorchTracing  # imports torch, which the script has just imported

            tracing = TorchTracing()
            self.tracing = tracing.start()
        except Exception as exc:  # never break the script's import of torch
            if tracing is not None:
                tracing.stop()  # whatever was patched before the failure is put back
            print(f"autodiff_trace: PyTorch will not be traced ({type(exc).__name__}: {exc})",
                  file=sys.stderr)

    def _remove_finder(self) -> None:
        if self._finder is not None and self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        self._finder = None

    def stop(self) -> None:
        """Remove the import hook and, if torch was traced, every patch and hook."""
        self._remove_finder()
        if self in _watching:
            _watching.remove(self)
        if self.tracing is not None:
            tracing, self.tracing = self.tracing, None
            tracing.stop()

    def __enter__(self) -> "TorchWatch":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def watch_torch() -> TorchWatch:
    """A started :class:`TorchWatch`; call ``stop()`` (or use it as a context manager)."""
    return TorchWatch().start()

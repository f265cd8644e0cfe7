"""Tracing PyTorch's autograd while a script runs, when (and only when) it imports torch.

Importing this package does not import torch: :func:`watch_torch` installs the
tracing once the traced script imports torch itself (or at once, if it already
has). ``docs/torch.md`` describes what is reported and how.
"""

from .watch import TorchWatch, watch_torch

__all__ = ["TorchWatch", "watch_torch"]

"""Tensors as the trace sees them: dtype, shape and norm (finite or not), never the data.

Every float an event carries for a tensor is its 2-norm; a norm is NaN or infinite
exactly when the tensor holds a NaN or an infinity (an overflow of the norm itself
is recomputed in float64), so the norm also says whether the tensor is finite.
"""

from __future__ import annotations

import math
import re
from typing import Optional

import torch

__all__ = ["described", "norm", "PassNorms", "op_name", "quiet"]

quiet = torch._C.DisableTorchFunction  # our own tensor maths must not reach the forward recorder

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_BATCHED = (torch.float32, torch.float64)
_STRIDED = torch.strided
_SHARED_FROM = 4096  # elements: from this size, a tensor shares its norm with views of it


_vector_norm = torch.linalg.vector_norm


def norm(tensor: Optional[torch.Tensor]) -> float:
    """The 2-norm of a tensor as a float; 0.0 for None (PyTorch's "no gradient yet")."""
    if tensor is None:
        return 0.0
    with quiet():
        t = tensor.detach()
        if t.layout is not torch.strided:
            t = t.coalesce().values() if t.is_sparse else t.to_dense()
        if t.dtype in _LOW_PRECISION:
            t = t.float()
        value = _vector_norm(t).item()
        if value == math.inf:
            value = _overflowed(t)
    return value


def _overflowed(t: torch.Tensor) -> float:
    """The norm of a tensor whose float norm came out infinite: infinite when it holds an
    infinity, else (only the squares overflowed) recomputed in float64.

    >>> _overflowed(torch.tensor([3e38, 3e38])) > 4e38, _overflowed(torch.tensor([1.0, float("inf")]))
    (True, inf)
    """
    if t.dtype == torch.float64 and not bool(t.isinf().any()):
        return _vector_norm(t / t.abs().max()).item() * t.abs().max().item()
    return _vector_norm(t, dtype=torch.float64).item()


class PassNorms:
    """Norms within one pass; a large tensor's is computed once per set of elements: the
    gradient a ``TBackward`` node receives and the transposed view it hands a weight's
    ``AccumulateGrad`` are the same numbers, so they share one norm.

    >>> g = torch.tensor([[3.0, 0.0], [4.0, 0.0]]); norms = PassNorms()
    >>> norms.of(g), norms.of(g.t()), len(norms.known)
    (5.0, 5.0, 1)
    """

    def __init__(self) -> None:
        self.known: dict = {}
        self._measured: dict = {}  # id(tensor) -> norm, for the tensors measure() was given

    @staticmethod
    def _key(tensor: torch.Tensor):
        """The same key for two tensors exactly when they hold the same elements."""
        if tensor.is_sparse or tensor.layout != torch.strided:
            return None
        return (tensor.data_ptr(), tensor.dtype, tuple(sorted(zip(tensor.shape, tensor.stride()))))

    def measure(self, tensors) -> None:
        """Take the norms of many tensors at once: one call per dtype rather than one per tensor.
        Only a large tensor is looked up by its elements (a small one costs less to reduce
        twice than to key); each tensor object is reduced once."""
        known, measured = self.known, self._measured
        groups: dict = {}  # dtype -> {id(tensor) or elements key: tensor}
        sharing: list = []  # (id(tensor), elements key) of the large tensors
        for tensor in tensors:
            if tensor is None or tensor.layout is not _STRIDED:
                continue
            dtype = tensor.dtype
            if dtype not in _BATCHED:
                continue  # of() measures these one by one
            if tensor.numel() < _SHARED_FROM:
                groups.setdefault(dtype, {})[id(tensor)] = tensor
                continue
            key = self._key(tensor)
            sharing.append((id(tensor), key))
            if key not in known:
                groups.setdefault(dtype, {})[key] = tensor
        with quiet(), torch.no_grad():  # no graph: the gradients need no detach
            for group in groups.values():
                values = torch.stack(torch._foreach_norm(list(group.values()))).tolist()
                for (key, tensor), value in zip(group.items(), values):
                    if value == math.inf:
                        value = norm(tensor)
                    if key.__class__ is int:
                        measured[key] = value
                    else:
                        known[key] = value
        measured.update((tensor_id, known[key]) for tensor_id, key in sharing)

    def of(self, tensor: Optional[torch.Tensor]) -> float:
        """The norm of a tensor: as measured (the tensors given to measure() stay alive for
        the pass, so their ids are theirs), else computed now."""
        if tensor is None:
            return 0.0
        value = self._measured.get(id(tensor))
        if value is not None:
            return value
        key = self._key(tensor)
        if key is None:
            return norm(tensor)
        value = self.known.get(key)
        if value is None:
            value = self.known[key] = norm(tensor)
        return value

    def total(self, tensors) -> float:
        """The norm of several tensors taken together (the gradients a node received).

        >>> PassNorms().total((torch.tensor([3.0]), None, torch.tensor([4.0])))
        5.0
        """
        return math.sqrt(sum(self.of(t) ** 2 for t in tensors if t is not None))


def described(tensor: torch.Tensor) -> str:
    """The dtype and shape of a tensor, as node_created's ``tensor`` field holds them.

    >>> described(torch.zeros(64, 512)), described(torch.tensor(1.0, dtype=torch.float64))
    ('float32[64, 512]', 'float64[]')
    """
    return f"{str(tensor.dtype).removeprefix('torch.')}[{', '.join(map(str, tensor.shape))}]"


_op_names: dict = {}


def op_name(fn) -> str:
    """The op of an autograd node, from its class: ``AddmmBackward0`` gives ``addmm``.

    >>> op_name((torch.ones(2, requires_grad=True) * 2).sum().grad_fn)
    'sum'
    """
    cls = type(fn)
    name = _op_names.get(cls)
    if name is None:
        stem = re.sub(r"Backward\d*$", "", cls.__name__) or cls.__name__
        name = _op_names[cls] = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()
    return name

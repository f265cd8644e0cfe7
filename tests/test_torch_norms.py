"""A PyTorch pass's gradient norms: taken in one batch after the pass, each tensor's own."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install '.[torch]'")
from autodiff_trace.adapters.torch.summary import PassNorms  # noqa: E402


class TestPassNorms:
    """A pass's gradient norms, taken in one batch, are each tensor's own 2-norm."""

    def test_small_and_large_tensors_and_views_get_their_own_norm(self):
        """Small and large tensors, a transposed view and a slice each measure as torch's norm."""
        large = torch.randn(128, 64)
        tensors = [torch.randn(3, 4), large, large.t(), large[:10], torch.randn(7, dtype=torch.float64),
                   torch.zeros(0), None]
        norms = PassNorms()
        norms.measure(tensors)
        for tensor in tensors[:-1]:
            assert norms.of(tensor) == pytest.approx(tensor.norm().item(), rel=1e-6, abs=1e-12)
        assert norms.of(None) == 0.0

    def test_a_large_view_shares_its_tensors_norm(self):
        """A large gradient and its transposed view are reduced once."""
        large = torch.randn(128, 64)
        norms = PassNorms()
        norms.measure([large, large.t()])
        assert len(norms.known) == 1 and norms.of(large.t()) == norms.of(large)

    def test_non_finite_gradients_measure_as_non_finite(self):
        """An infinity measures as inf, a NaN as NaN, and squares that overflow float32 as finite."""
        infinite, missing = torch.tensor([1.0, float("inf")]), torch.full((5000,), float("nan"))
        overflowing = torch.full((3,), 3e38)
        norms = PassNorms()
        norms.measure([infinite, missing, overflowing])
        assert norms.of(infinite) == float("inf") and norms.of(missing) != norms.of(missing)
        assert norms.of(overflowing) == pytest.approx(3e38 * 3 ** 0.5, rel=1e-6)

"""Correct PyTorch training code gets no finding: the patterns a gradient rule must not mistake for bugs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install '.[torch]'")
from torch import nn  # noqa: E402

from test_torch import findings, script_events, traced_events  # noqa: E402


def data(steps: int, batch: int = 8):
    torch.manual_seed(0)
    return [(torch.randn(batch, 3), torch.randn(batch, 1)) for _ in range(steps)]


class TestOptimizers:
    """Every optimizer step after zeroing is silent, however the zeroing is done."""

    def test_sequential_with_adam(self):
        """nn.Sequential, Adam, zero_grad() at the top of each step."""
        def run():
            model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            for x, y in data(4):
                optimizer.zero_grad()
                nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
        events = traced_events(run)
        assert [e.kind for e in events].count("backward_started") == 4 and findings(events) == []

    def test_zero_grad_without_set_to_none(self):
        """zero_grad(set_to_none=False) zeroes in place: the next pass starts from zero."""
        def run():
            model = nn.Linear(3, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in data(3):
                optimizer.zero_grad(set_to_none=False)
                nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
        assert findings(traced_events(run)) == []

    def test_zero_grad_after_the_step(self):
        """step() then zero_grad() at the end of the loop body."""
        def run():
            model = nn.Linear(3, 1)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
            for x, y in data(3):
                nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
                optimizer.zero_grad()
        assert findings(traced_events(run)) == []


class TestAccumulation:
    """Gradients added up over micro-batches on purpose, then stepped and zeroed."""

    def test_step_and_zero_every_k_micro_batches(self):
        """backward() on every micro-batch, step() and zero_grad() every fourth: silent."""
        def run():
            model = nn.Linear(3, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, (x, y) in enumerate(data(12)):
                (nn.functional.mse_loss(model(x), y) / 4).backward()
                if (i + 1) % 4 == 0:
                    optimizer.step()
                    optimizer.zero_grad()
        events = traced_events(run)
        assert [e.kind for e in events].count("backward_started") == 12 and findings(events) == []

    def test_zero_at_the_start_of_each_group(self):
        """zero_grad() before the first micro-batch of a group, step() after the last."""
        def run():
            model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            for i, (x, y) in enumerate(data(9)):
                if i % 3 == 0:
                    optimizer.zero_grad()
                nn.functional.mse_loss(model(x), y).backward()
                if i % 3 == 2:
                    optimizer.step()
        assert findings(traced_events(run)) == []


class TestManualUpdates:
    """Plain tensors updated by hand under torch.no_grad()."""

    def test_update_then_zero_in_place(self):
        """w -= lr * w.grad, then w.grad.zero_(): silent."""
        def run():
            torch.manual_seed(0)
            w = torch.randn(3, 1, requires_grad=True)
            for x, y in data(4):
                ((x @ w - y) ** 2).mean().backward()
                with torch.no_grad():
                    w -= 0.1 * w.grad
                    w.grad.zero_()
        assert findings(traced_events(run)) == []

    def test_update_then_drop_the_gradient(self):
        """w.data -= lr * w.grad, then w.grad = None: silent."""
        def run():
            torch.manual_seed(0)
            w = torch.randn(3, 1, requires_grad=True)
            b = torch.zeros(1, requires_grad=True)
            for x, y in data(4):
                ((x @ w + b - y) ** 2).mean().backward()
                with torch.no_grad():
                    for p in (w, b):
                        p -= 0.1 * p.grad
                        p.grad = None
        assert findings(traced_events(run)) == []


class TestGraphsKept:
    """retain_graph and create_graph used as meant."""

    def test_backward_again_after_zeroing(self):
        """A retained graph gone through again after zero_grad() adds nothing twice: silent."""
        def run():
            model = nn.Linear(3, 1)
            x, y = data(1)[0]
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward(retain_graph=True)
            model.zero_grad()
            loss.backward()
        assert findings(traced_events(run)) == []

    def test_autograd_grad_twice_on_a_retained_graph(self):
        """torch.autograd.grad writes no .grad: asking twice adds nothing up."""
        def run():
            model = nn.Linear(3, 1)
            x, y = data(1)[0]
            loss = nn.functional.mse_loss(model(x), y)
            first = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
            second = torch.autograd.grad(loss, list(model.parameters()))
            assert all(torch.equal(a, b) for a, b in zip(first, second))
        assert findings(traced_events(run)) == []

    def test_a_gradient_penalty(self):
        """create_graph=True, then backward() through the gradient's own graph: silent."""
        def run():
            model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in data(2):
                optimizer.zero_grad()
                x.requires_grad_(True)
                out = model(x)
                (grad_x,) = torch.autograd.grad(out.sum(), x, create_graph=True)
                loss = nn.functional.mse_loss(out, y) + grad_x.pow(2).mean()
                loss.backward()
                optimizer.step()
        assert findings(traced_events(run)) == []


class TestDetachOnPurpose:
    """A .detach() that cuts off parameters which learn in another pass."""

    def test_a_gan_step(self):
        """The discriminator's pass sees the generator through fake.detach(); the generator's own
        pass reaches it: nothing is cut off for good."""
        def run():
            torch.manual_seed(0)
            generator, critic = nn.Linear(2, 3), nn.Linear(3, 1)
            g_opt = torch.optim.SGD(generator.parameters(), lr=0.01)
            d_opt = torch.optim.SGD(critic.parameters(), lr=0.01)
            for _ in range(3):
                real, z = torch.randn(8, 3), torch.randn(8, 2)
                fake = generator(z)
                d_opt.zero_grad()
                (critic(fake.detach()).mean() - critic(real).mean()).backward()
                d_opt.step()
                g_opt.zero_grad()
                (-critic(fake).mean()).backward()
                g_opt.step()
        assert findings(traced_events(run)) == []

    def test_a_frozen_encoder(self):
        """Features detached from an encoder whose parameters are frozen: nothing meant to learn is cut."""
        def run():
            encoder, head = nn.Linear(3, 4), nn.Linear(4, 1)
            encoder.requires_grad_(False)
            optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
            for x, y in data(2):
                optimizer.zero_grad()
                nn.functional.mse_loss(head(encoder(x).detach()), y).backward()
                optimizer.step()
        assert findings(traced_events(run)) == []


class TestExamples:
    """The examples of correct loops stay silent."""

    @pytest.mark.parametrize("name", ["torch_correct", "torch_accumulate"])
    def test_a_correct_example(self, name):
        """examples/torch_correct.py and torch_accumulate.py: passes traced, no finding."""
        events = script_events(name)
        assert "backward_started" in [e.kind for e in events] and findings(events) == []

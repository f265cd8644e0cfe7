"""PyTorch as a source: unmodified scripts traced, their gradient bugs named at the line."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install '.[torch]'")
from torch import nn  # noqa: E402

from autodiff_trace import trace  # noqa: E402
from autodiff_trace.adapters import instrument  # noqa: E402
from autodiff_trace.adapters.torch import watch_torch  # noqa: E402
from autodiff_trace.analysis.diagnoser import Diagnoser  # noqa: E402
from trace_lines import line_objects  # noqa: E402
from processes import Launched, RunsAhead  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TRACE_BACKWARD = str(Path(sys.executable).parent / "trace-backward")
SCRIPTS = ["torch_correct", "torch_forgot_zero_grad", "torch_sqrt_zero", "torch_detached",
           "torch_retain_twice", "torch_accumulate"]


def traced_events(run) -> list:
    """The events of ``run()`` traced as trace-backward traces a script (with the generic rules)."""
    with trace(analyzers=[Diagnoser()]) as t, instrument(), contextlib.redirect_stdout(io.StringIO()):
        run()
    return t.events


def script_events(name: str) -> list:
    return traced_events(lambda: runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__"))


def findings(events) -> list:
    return [e for e in events if e.kind == "diagnostic"]


def line_of(name: str, text: str) -> int:
    """The number of the first line of an example that contains ``text``."""
    lines = (EXAMPLES / f"{name}.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def ends_at(site: str, line: int) -> bool:
    return site is not None and site.endswith(f":{line}")


class TestOptional:
    """torch is loaded only by the script being traced."""

    def test_importing_the_adapters_does_not_import_torch(self):
        """`import autodiff_trace.adapters` leaves torch unimported."""
        code = "import sys, autodiff_trace.adapters; print('torch' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "False"

    def test_every_entry_point_is_restored(self):
        """After tracing, backward, grad, zero_grad and the function-mode stack are as they were."""
        before = (torch.autograd.backward, torch.autograd.grad, torch.Tensor.backward,
                  torch.optim.Optimizer.zero_grad, nn.Module.zero_grad)
        with trace():
            watch = watch_torch()
            assert torch.autograd.backward is not before[0]
            watch.stop()
        after = (torch.autograd.backward, torch.autograd.grad, torch.Tensor.backward,
                 torch.optim.Optimizer.zero_grad, nn.Module.zero_grad)
        assert after == before
        assert torch.overrides._get_current_function_mode_stack() == []


    def test_an_optimizer_step_that_raises_leaves_tracing_whole(self):
        """A step that raises: the next step's forward is still recorded with its line, and
        stopping leaves the mode stack empty."""
        class Failing(torch.optim.SGD):
            def step(self, closure=None):
                raise RuntimeError("step failed")

        def run():
            model = nn.Linear(3, 1)
            optimizer = Failing(model.parameters(), lr=0.1)
            for _ in range(2):
                optimizer.zero_grad()
                loss = model(torch.randn(4, 3)).pow(2).mean()
                loss.backward()
                with pytest.raises(RuntimeError, match="step failed"):
                    optimizer.step()
        events = traced_events(run)
        sites = [e.site for e in events if e.kind == "node_created" and e.op == "linear"]
        assert len(sites) == 2 and all(site and "test_torch.py:" in site for site in sites)
        assert torch.overrides._get_current_function_mode_stack() == []


class TestPass:
    """A backward() call becomes a pass: nodes fired in order and each leaf's ledger."""

    def run_two_steps(self):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(5, 3)
        grads = []
        for _ in range(2):
            optimizer.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            grads.append({f"model.{n}": p.grad.norm().item() for n, p in model.named_parameters()})
            optimizer.step()
        self.model, self.grads = model, grads

    def test_parameters_are_named_as_the_script_knows_them(self):
        """A module in the script's variables names its parameters: model.0.weight, model.2.bias."""
        events = traced_events(lambda: self.run_two_steps())
        leaves = {e.name for e in events if e.kind == "node_created" and e.op == ""}
        # the module is a local of run_two_steps, so its names come from there
        assert leaves == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}

    def test_the_ledger_holds_each_parameters_gradient_norm(self):
        """Every parameter gets one write per pass whose contribution is its gradient's norm."""
        events = traced_events(lambda: self.run_two_steps())
        names = {e.node: e.name for e in events if e.kind == "node_created"}
        writes = [e for e in events if e.kind == "grad_accumulated"]
        assert len(writes) == 8
        for write in writes:
            expected = self.grads[write.pass_no - 1][names[write.target]]
            assert write.contribution == pytest.approx(expected, rel=1e-5)
            assert write.grad_before == 0 and write.grad_after == pytest.approx(expected, rel=1e-5)

    def test_nodes_fire_from_the_loss_down(self):
        """The first node to fire is the loss; every fired node is in the pass's order."""
        events = traced_events(lambda: self.run_two_steps())
        start = next(e for e in events if e.kind == "backward_started")
        fired = [e.node for e in events if e.kind == "backward_fn_fired" and e.pass_no == start.pass_no]
        assert fired[0] == start.root and set(fired) <= set(start.order)

    def test_zero_grad_is_reported_when_it_happens(self):
        """optimizer.zero_grad() after a pass reports the reset of every parameter's gradient."""
        events = traced_events(lambda: self.run_two_steps())
        kinds = [e.kind for e in events if e.kind in ("grads_zeroed", "backward_started")]
        assert kinds == ["backward_started", "grads_zeroed", "backward_started"]
        zeroed = next(e for e in events if e.kind == "grads_zeroed")
        assert len(zeroed.nodes) == 4 and all(g > 0 for g in zeroed.grads_before)

    def test_an_in_place_zero_is_seen_at_the_next_pass(self):
        """p.grad.zero_() is reported as zeroing before the next pass starts."""
        def run():
            w = torch.ones(3, requires_grad=True)
            (w * 2).sum().backward()
            w.grad.zero_()
            (w * 3).sum().backward()
        events = traced_events(run)
        kinds = [e.kind for e in events if e.kind in ("grads_zeroed", "backward_started")]
        assert kinds == ["backward_started", "grads_zeroed", "backward_started"]

    def test_autograd_grad_is_a_pass_that_writes_no_grad(self):
        """torch.autograd.grad fires nodes but leaves every .grad alone, and is not a finding."""
        def run():
            w = torch.ones(3, requires_grad=True)
            torch.autograd.grad((w * w).sum(), [w])
        events = traced_events(run)
        assert [e.kind for e in events].count("backward_started") == 1
        assert not [e for e in events if e.kind == "grad_accumulated"] and not findings(events)

    def test_untraced_runs_call_the_original(self):
        """With no tracer listening, backward() gives the same gradient and no event."""
        watch = watch_torch()
        try:
            w = torch.ones(2, requires_grad=True)
            (w * 5).sum().backward()
        finally:
            watch.stop()
        assert w.grad.tolist() == [5.0, 5.0]

    def test_a_fresh_gradient_is_taken_into_grad_not_copied(self):
        """As untraced, .grad becomes the very tensor the pass computed (no copy per parameter)."""
        layer = nn.Linear(8, 8)
        computed = {}
        layer.weight.register_hook(lambda g: computed.__setitem__("data", g.data_ptr()))

        def run():
            layer.zero_grad()
            layer(torch.randn(2, 8)).sum().backward()
        traced_events(run)
        assert layer.weight.grad.data_ptr() == computed["data"]

    def test_an_update_in_a_post_accumulate_hook_keeps_the_ledger_right(self):
        """A hook that steps each parameter and drops its .grad: each write is still the
        gradient the pass computed."""
        torch.manual_seed(0)
        layer = nn.Linear(3, 2)
        computed = {}

        def step_now(p):
            computed.setdefault(id(p), []).append(p.grad.norm().item())
            p.data -= 0.1 * p.grad
            p.grad = None

        layer.weight.register_post_accumulate_grad_hook(step_now)
        layer.bias.register_post_accumulate_grad_hook(step_now)

        def run():
            x = torch.randn(4, 3)
            for _ in range(2):
                layer(x).pow(2).sum().backward()
        events = traced_events(run)
        names = {e.node: e.name for e in events if e.kind == "node_created"}
        expected = {"layer.weight": computed[id(layer.weight)], "layer.bias": computed[id(layer.bias)]}
        writes = [e for e in events if e.kind == "grad_accumulated"]
        assert len(writes) == 4
        for write in writes:
            assert write.contribution == pytest.approx(expected[names[write.target]][write.pass_no - 1], rel=1e-5)
        assert findings(events) == []


class TestFindings:
    """Each example's bug is named once, at the line to change."""

    def test_forgot_zero_grad_is_a_stale_gradient_at_the_backward_call(self):
        """The loop without zero_grad() gets a stale_gradient at loss.backward() in every pass after
        the first (one cause once grouped), naming the loop."""
        name = "torch_forgot_zero_grad"
        found = findings(script_events(name))
        assert [(f.finding, f.pass_no) for f in found] == [("stale_gradient", n) for n in (2, 3, 4, 5)]
        assert len({f.site for f in found}) == 1
        assert ends_at(found[0].site, line_of(name, "loss.backward()"))
        assert "loop at" in found[0].message and f":{line_of(name, 'for step')}" in found[0].message
        assert set(found[0].names) == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}

    def test_sqrt_at_zero_names_the_sqrt_line(self):
        """The NaN gradient is traced to the sqrt node and the forward line that made it."""
        name = "torch_sqrt_zero"
        found = findings(script_events(name))
        assert [f.finding for f in found] == ["non_finite"]
        assert ends_at(found[0].site, line_of(name, "torch.sqrt("))
        assert found[0].names[0] == "distance" and "sqrt" in found[0].hint

    def test_a_detached_encoder_never_reached_names_the_detach_line(self):
        """The encoder's parameters are named, with the line of the .detach() that cut them off."""
        name = "torch_detached"
        found = findings(script_events(name))
        assert [f.finding for f in found] == ["grad_never_reached"]
        assert ends_at(found[0].site, line_of(name, "features = "))
        assert set(found[0].names) == {"net.encoder.weight", "net.encoder.bias"}

    def test_backward_twice_on_a_retained_graph(self):
        """The second loss.backward() on the retained graph is named, and the first one with it."""
        name = "torch_retain_twice"
        found = findings(script_events(name))
        assert [f.finding for f in found] == ["backward_twice"]
        assert ends_at(found[0].site, line_of(name, "loss.backward()  #"))
        assert f":{line_of(name, 'retain_graph=True')}" in found[0].message


class TestFindingsDecidedLater:
    """A finding that depends on what the script does next is made once that is known."""

    def test_a_critic_never_zeroed_is_stale(self):
        """A GAN loop with no critic zero_grad(): the critic's step uses what each generator pass
        added to the critic's gradients, so those generator passes are stale."""
        def run():
            torch.manual_seed(0)
            generator, critic = nn.Linear(2, 3), nn.Linear(3, 1)
            g_opt = torch.optim.SGD(generator.parameters(), lr=0.01)
            d_opt = torch.optim.SGD(critic.parameters(), lr=0.01)
            for _ in range(3):
                fake = generator(torch.randn(8, 2))
                (critic(fake.detach()).mean() - critic(torch.randn(8, 3)).mean()).backward()
                d_opt.step()
                g_opt.zero_grad()
                (-critic(fake).mean()).backward()
                g_opt.step()
        found = findings(traced_events(run))
        assert {f.finding for f in found} == {"stale_gradient"}
        assert [f.pass_no for f in found] == [2, 4]  # the last generator pass's additions are never used
        assert all("critic.weight" in f.names and set(f.names) <= {"critic.weight", "critic.bias"}
                   for f in found)

    def test_a_manual_update_that_never_zeroes_is_stale(self):
        """w -= lr * w.grad with no zeroing: each pass after an update adds to the used gradient."""
        def run():
            torch.manual_seed(0)
            w = torch.randn(3, requires_grad=True)
            for _ in range(4):
                (w * torch.randn(3)).sum().pow(2).backward()
                with torch.no_grad():
                    w -= 0.1 * w.grad
        found = findings(traced_events(run))
        assert {f.finding for f in found} == {"stale_gradient"} and {2, 3} <= {f.pass_no for f in found}

    def test_a_generator_cut_off_in_every_pass_never_learns(self):
        """Both GAN passes see the generator through .detach(): it is named at the end of the run."""
        def run():
            torch.manual_seed(0)
            generator, critic = nn.Linear(2, 3), nn.Linear(3, 1)
            optimizer = torch.optim.SGD([*generator.parameters(), *critic.parameters()], lr=0.01)
            for _ in range(2):
                optimizer.zero_grad()
                fake = generator(torch.randn(8, 2)).detach()
                (critic(fake).mean() - critic(torch.randn(8, 3)).mean()).backward()
                optimizer.step()
        found = findings(traced_events(run))
        assert [f.finding for f in found] == ["grad_never_reached"]
        assert set(found[0].names) == {"generator.weight", "generator.bias"}


class TestSilence:
    """Correct programs get no finding (more in test_torch_silence.py)."""

    def test_a_correct_training_loop(self):
        """nn.Sequential, SGD and zero_grad() every step: no finding."""
        assert findings(script_events("torch_correct")) == []

    def test_gradients_added_up_on_purpose(self):
        """Two backward passes per step, then step() and zero_grad(): accumulation is not stale."""
        def run():
            model = nn.Linear(3, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(3):
                for _ in range(2):
                    model(torch.randn(4, 3)).pow(2).mean().backward()
                optimizer.step()
                optimizer.zero_grad()
        assert findings(traced_events(run)) == []

    def test_two_losses_on_one_retained_graph(self):
        """loss1.backward(retain_graph=True) then loss2.backward(): two roots, no finding."""
        def run():
            model = nn.Linear(3, 2)
            out = model(torch.randn(4, 3))
            out[:, 0].sum().backward(retain_graph=True)
            out[:, 1].pow(2).sum().backward()
        assert findings(traced_events(run)) == []

    def test_a_detach_between_steps(self):
        """Truncated backpropagation (h = h.detach() each step) cuts nothing the pass needs."""
        def run():
            cell = nn.Linear(4, 4)
            optimizer = torch.optim.SGD(cell.parameters(), lr=0.01)
            h = torch.zeros(1, 4)
            for _ in range(3):
                optimizer.zero_grad()
                h = torch.tanh(cell(h) + 1.0)
                h.sum().backward()
                optimizer.step()
                h = h.detach()
        assert findings(traced_events(run)) == []


@pytest.fixture(scope="module")
def command_runs(tmp_path_factory):
    """Each example run plainly and under trace-backward: (plain, traced, output folder)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def start(name: str) -> tuple:
        script = str(EXAMPLES / f"{name}.py")
        out = tmp_path_factory.mktemp(name)
        return (Launched([sys.executable, script], text=False, cwd=ROOT, env=env),
                Launched([TRACE_BACKWARD, "--out", str(out), "--sink", "json", "--quiet", script],
                         text=False, cwd=ROOT, env=env), out)

    def finish(started: tuple) -> tuple:
        plain, traced, out = started
        return plain.result(), traced.result(), out

    with RunsAhead(SCRIPTS, start, finish) as runs:
        yield runs


@pytest.mark.slow
class TestCommand:
    """`trace-backward examples/torch_*.py` runs end to end and leaves the script's output alone."""

    @pytest.mark.parametrize("name", SCRIPTS)
    def test_the_output_is_byte_identical(self, command_runs, name):
        """What the script prints is the same, byte for byte, traced or not."""
        plain, traced, _ = command_runs(name)
        assert traced.returncode == plain.returncode == 0, traced.stderr.decode()
        assert traced.stdout == plain.stdout

    @pytest.mark.parametrize("name, kind", [("torch_correct", None), ("torch_accumulate", None),
                                            ("torch_forgot_zero_grad", "stale_gradient"),
                                            ("torch_sqrt_zero", "non_finite"),
                                            ("torch_detached", "grad_never_reached"),
                                            ("torch_retain_twice", "backward_twice")])
    def test_the_trace_file_holds_the_passes_and_the_finding(self, command_runs, name, kind):
        """trace.jsonl has the passes and exactly the expected finding."""
        _, _, out = command_runs(name)
        lines = line_objects(out / "trace.jsonl")
        kinds = [line["kind"] for line in lines]
        assert "backward_started" in kinds and "grad_accumulated" in kinds
        assert sorted({line["finding"] for line in lines if line["kind"] == "diagnostic"}) == ([kind] if kind else [])

"""The model folded a captured run at a time holds what folding the same events one by one holds,
and the diagnostics read from it find the same: silent on a correct program, a stale gradient
where zeroing is forgotten."""

from __future__ import annotations

import random

from autodiff_trace import Value, trace
from autodiff_trace.analysis.diagnoser import Diagnoser
from autodiff_trace.core.captured import FIRED, WRITE
from autodiff_trace.core.events import BackwardStarted
from autodiff_trace.core.model import TraceModel
from autodiff_trace.core.passes import PassInfo
from autodiff_trace.core.runs import Run
from autodiff_trace.core.tracefile import load_events
from autodiff_trace.sinks.jsonl import JsonlSink


def small_training(steps: int, zero_from: int) -> None:
    """A two-layer network trained a few steps; grads zeroed before each pass from ``zero_from`` on."""
    rng = random.Random(3)
    params = [Value(rng.uniform(-1, 1)) for _ in range(12)]
    data = [([rng.uniform(-1, 1), rng.uniform(-1, 1)], rng.choice((-1.0, 1.0))) for _ in range(8)]
    for step in range(steps):
        if step >= zero_from:
            for p in params:
                p.grad = 0.0
        total = Value(0.0)
        for x, y in data:
            hidden = [(params[2 * i] * x[0] + params[2 * i + 1] * x[1]).relu() for i in range(4)]
            score = sum((h * w for h, w in zip(hidden, params[8:])), Value(0.0))
            total = total + (1 + -y * score).relu()
        loss = total * (1.0 / len(data))
        loss.backward()
        for p in params:
            p.data -= 0.05 * p.grad


def wide_sum() -> None:
    """Thousands of nodes made inside expressions: each named op#id, whole batches of them."""
    xs = [Value(float(i % 7) - 3.0) for i in range(1500)]
    total = sum((x * x for x in xs), Value(0.0))
    total.backward()


def diagnosed(path, program) -> tuple:
    """The diagnoser's model (folded from captured runs) and the findings, tracing ``program``."""
    diagnoser = Diagnoser()
    with trace([JsonlSink(path)], analyzers=[diagnoser], record=False):
        program()
    return diagnoser.model, [e for e in load_events(path) if e.kind == "diagnostic"]


def contents(model: TraceModel) -> tuple:
    """Everything a view reads of the model's nodes and passes."""
    nodes = [(n, info.name, info.op, info.value, info.parents, info.site, info.grad)
             for n in model.nodes for info in (model.nodes[n],)]
    passes = [(p.pass_no, p.root, list(p.order), sorted(p.grads_before.items()), list(p.fired),
               [w._replace(t=0.0) for w in p.writes], p.began_zeroed) for p in model.passes]
    return nodes, passes, sorted(model.name_uses.items())


class TestFoldedByRuns:
    def test_the_model_holds_what_one_by_one_folding_holds(self, tmp_path):
        """Nodes (named op#id or not), grads, each pass's order, firings and writes: the same."""
        for name, program in (("training", lambda: small_training(3, zero_from=1)), ("sum", wide_sum)):
            path = tmp_path / f"{name}.jsonl"
            model, _ = diagnosed(path, program)
            again = TraceModel.from_events(e for e in load_events(path) if e.kind != "diagnostic")
            assert model.events > 1000
            assert contents(model) == contents(again)

    def test_a_correct_training_stays_silent(self, tmp_path):
        """Grads zeroed before every pass: no finding at all."""
        _, findings = diagnosed(tmp_path / "trace.jsonl", lambda: small_training(3, zero_from=0))
        assert findings == []

    def test_a_forgotten_zeroing_is_one_stale_gradient(self, tmp_path):
        """The first pass begins from zeroed grads (nothing to read); the second does not."""
        model, findings = diagnosed(tmp_path / "trace.jsonl", lambda: small_training(2, zero_from=2))
        assert [p.began_zeroed for p in model.passes] == [True, False]
        assert [f.finding for f in findings] == ["stale_gradient"]


class TestBeganZeroed:
    @staticmethod
    def started(grads) -> PassInfo:
        return PassInfo(BackwardStarted(0, 0.0, 1, 3, 1.0, (3, 2, 1), tuple(grads)))

    def test_only_grads_of_plus_zero_count(self):
        """0.0 everywhere: zeroed; a -0.0, a non-zero grad or an int: read as they are."""
        assert self.started([0.0, 0.0, 0.0]).began_zeroed
        assert not self.started([0.0, -0.0, 0.0]).began_zeroed
        assert not self.started([0.0, 2.5, 0.0]).began_zeroed
        assert not self.started([0, 0, 0]).began_zeroed

    def test_the_grads_read_the_same_either_way(self):
        """A pass begun zeroed still answers grads_before for each node."""
        assert self.started([0.0, 0.0, 0.0]).grads_before == {3: 0.0, 2: 0.0, 1: 0.0}
        assert self.started([0.0, 2.5, 0.0]).grads_before == {3: 0.0, 2: 2.5, 1: 0.0}


class TestRunDistinct:
    def test_a_node_fired_twice_in_a_run_is_seen(self):
        """distinct() says whether every item of a column differs; a column of no events has none alike."""
        batch = [(FIRED, 1, 5, 1.0, 1.0), (WRITE, 1, 4, 5, 1.0, 1.0, 0.0, 1.0, False, None),
                 (FIRED, 1, 4, 1.0, 1.0), (FIRED, 1, 5, 1.0, 1.0)]
        assert not Run(batch, 0, 4, 10, 0.0).distinct(FIRED, 2)
        assert Run(batch, 0, 3, 10, 0.0).distinct(FIRED, 2)
        assert Run(batch, 1, 2, 11, 0.0).distinct(FIRED, 2)

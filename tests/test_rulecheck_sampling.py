"""What the derivative-rule check reads to sample an op's new nodes (is the op resting, is
it unsure) is kept on the op and recomputed whenever one of its rules' checks changes."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
import textwrap
from pathlib import Path

from autodiff_trace import trace
from autodiff_trace.adapters import instrument
from autodiff_trace.adapters.rulecheck import RuleCheck
from autodiff_trace.adapters.rulecheck_state import AGREEING_CHECKS, MAX_TRIES, Op

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "engines"))
from rulechecking import engine  # noqa: E402

TRAINING = textwrap.dedent('''
    x, y = Value(1.5), Value(-0.75)
    for step in range(40):
        loss = ((x * y + x).tanh() * y * x * y * x + x * x).tanh()
        x.grad = y.grad = 0.0
        loss.backward()
        x.data -= 0.01 * x.grad
        y.data -= 0.01 * y.grad
    print(round(loss.data, 9))
    ''')


def as_the_rules_say(op: Op) -> tuple:
    """(resting, unsure) computed from the op's rules, as sampling must see them."""
    rules = list(op.rules.values())
    resting = sum(r.pending for r in rules) >= AGREEING_CHECKS or (bool(rules) and all(r.done for r in rules))
    return resting, any(r.unsure - r.judged for r in rules)


def run_checking_state(tmp_path: Path, source: str, monkeypatch) -> tuple:
    """Run ``source`` traced; whenever the check is told of a node, closes a firing or
    flushes its queue, compare each op's kept state with its rules, before and after.
    Returns (findings, mismatches, nodes seen)."""
    mismatches, seen = [], [0]

    def compare(check: RuleCheck, when: str) -> None:
        for key, op in check.ops.items():
            if (op.resting, op.unsure) != as_the_rules_say(op):
                mismatches.append((when, key, op.resting, op.unsure, as_the_rules_say(op)))

    def watched(name: str):
        original = getattr(RuleCheck, name)

        def method(self, *args):
            seen[0] += name == "node_made"
            compare(self, f"before {name}")
            result = original(self, *args)
            compare(self, f"after {name}")
            return result
        return method

    for name in ("node_made", "_close", "flush"):
        monkeypatch.setattr(RuleCheck, name, watched(name))
    script = tmp_path / "train.py"
    script.write_text(source)
    with contextlib.redirect_stdout(io.StringIO()), trace() as t, instrument():
        runpy.run_path(str(script), run_name="__main__")
    findings = [e for e in t.events if e.kind == "diagnostic"]
    return findings, mismatches, seen[0]


class TestAnOpsSamplingState:
    """An op's ``resting`` and ``unsure`` follow its rules once it is restated."""

    def test_a_new_op_is_neither_resting_nor_unsure(self):
        """No rule yet: its nodes are sampled at the usual rate."""
        op = Op()
        assert (op.resting, op.unsure) == (False, False)

    def test_enough_queued_checks_make_it_rest(self):
        """As many checks queued as agreement needs: no more of its nodes are remembered."""
        op = Op()
        op.rule(None).pending = AGREEING_CHECKS
        op.restate()
        assert op.resting
        op.rules[None].pending = 0
        op.restate()
        assert not op.resting

    def test_every_rule_done_makes_it_rest_and_a_new_rule_wakes_it(self):
        """A rule out of tries is done; a rule seen for the first time is not, at once."""
        op = Op()
        op.rule(None).tries = MAX_TRIES
        op.restate()
        assert op.resting
        op.rule("another rule")
        assert not op.resting

    def test_an_operand_not_judged_makes_it_unsure_until_judged(self):
        """An operand lost in rounding: sampled densely until a check judges it."""
        op = Op()
        rule = op.rule(None)
        rule.unsure.add(0)
        op.restate()
        assert op.unsure
        rule.judged.add(0)
        op.restate()
        assert not op.unsure


class TestTheStateIsKeptCurrent:
    """Through a whole traced training, sampling never reads a state its rules disagree with."""

    def test_a_wrong_rule_is_still_named_and_the_state_always_current(self, tmp_path, monkeypatch):
        """A broken tanh over forty passes: named once; every op's state matches its rules."""
        findings, mismatches, seen = run_checking_state(
            tmp_path, engine(tanh_local="(1 - t)") + TRAINING, monkeypatch)
        assert [f.finding for f in findings if f.finding == "wrong_derivative"] == ["wrong_derivative"]
        assert seen >= 10 * 40 and mismatches == []  # every node of every pass

    def test_a_correct_engine_stays_silent_and_the_state_always_current(self, tmp_path, monkeypatch):
        """Correct rules over forty passes: no finding; every op's state matches its rules."""
        findings, mismatches, seen = run_checking_state(tmp_path, engine() + TRAINING, monkeypatch)
        assert [f for f in findings if f.severity in ("error", "warning")] == []
        assert seen >= 10 * 40 and mismatches == []  # every node of every pass

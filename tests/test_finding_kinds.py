"""Specification of each finding kind: what a gradient bug produces, in which words, and
which correct programs stay silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodiff_trace import Value, zero_grad
from autodiff_trace.analysis.causes import group
from autodiff_trace.analysis.diagnoser import diagnose
from autodiff_trace.core.events import Finding, GradsZeroed

from diagnosing import brief, diagnostics, line_of, run, traced_script
from streams import Stream

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class TestStaleGradient:
    """A pass that begins with grads left by an earlier one, located at the backward call."""

    def test_second_backward_names_every_stale_node_at_the_call(self):
        """The nodes holding grads are one finding at the second call, which names the first."""
        def script():
            x = Value(3.0, name="x")
            sq = x * x
            y = sq + 1
            y.backward()
            y.backward()
        (d,) = diagnostics(run(script))
        first = d.site[:d.site.rindex(":")] + f":{int(d.site.rpartition(':')[2]) - 1}"
        assert (d.pass_no, d.names, d.severity) == (2, ("x", "y", "sq"), "warning")  # leaves first
        assert d.message == (f"3 nodes (x, sq and y) held gradients from pass 1 when backward pass 2 began at "
                             f"{d.site} (`y.backward()`); nothing zeroed them between the backward call at "
                             f"{first} and the one at {d.site}")
        assert d.hint.startswith(f"zero the gradients just before the backward call at {d.site}")

    def test_zero_grad_between_passes_clears_the_warning(self):
        """Zeroing before the second pass leaves nothing to report."""
        def script():
            x = Value(3.0, name="x")
            y = x * x
            y.backward()
            zero_grad(y)
            y.backward()
        assert diagnostics(run(script)) == []

    def test_grad_from_before_the_trace_is_named_as_such(self):
        """A grad the trace never saw written is said to come from before the trace."""
        s = Stream()
        s.node(1, "w", 1.0, site="model.py:3")
        s.grads[1] = 0.5
        s.start(root=1, order=(1,))
        assert [f.message for f in diagnose(s.events)][0] == (
            "w.grad was 0.5 when backward pass 1 began: it was left from before this trace began")

    def test_zeroed_grads_forget_their_last_write(self):
        """After grads_zeroed, a grad written outside a pass is not blamed on the earlier pass."""
        s = Stream()
        s.node(1, "w", 0.5)
        s.start(root=1, order=(1,))
        s.write(1, None, 1.0)
        s.finish(1)
        s._emit(GradsZeroed, (1,), (1.0,))
        s.pass_no, s.grads[1] = 0, 0.0
        s.write(1, None, 4.0, "train.py:9")
        s.pass_no = 1
        s.start(root=1, order=(1,))
        assert diagnose(s.events)[0].message == (
            "w.grad was 4 when backward pass 2 began: it was left from a write outside any backward pass "
            "(train.py:9)")


class TestFiredOutsideGraph:
    """A node whose backward function runs in a pass whose root cannot reach it."""

    def test_node_of_no_pass_says_so_and_that_it_wrote_nothing(self):
        """A stray node that belongs to no pass's graph and writes nothing is still an error."""
        s = Stream()
        s.node(1, "a", 1.0)
        s.node(2, "b", 2.0, (1,), "exp", "model.py:9")
        s.node(3, "c", 3.0, (1,), "sin")
        s.start(root=3, order=(3, 1))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(1, 3, 0.5)
        s.fire(2)
        s.finish(3)
        assert brief(diagnose(s.events)) == [
            ("fired_outside_graph", "error", ("b",),
             "b (model.py:9) fired in backward pass 1 although that pass's root c does not depend on it; "
             "it is not part of any backward pass's graph and wrote no gradient"),
        ]


class TestFiredTwice:
    """A node firing more than once in a pass, pushing again what it pushed already."""

    def test_second_firing_is_an_error_reported_once(self):
        """The node is named with both firing numbers, and a third firing adds nothing."""
        s = Stream()
        s.node(1, "a", 2.0)
        s.node(2, "b", 4.0, (1,), "**2", "f.py:2")
        s.start(root=2, order=(2, 1))
        s.write(2, None, 1.0)
        for _ in range(3):
            s.fire(2)
            s.write(1, 2, 4.0, local=4.0)
        s.finish(2)
        assert brief(diagnose(s.events)) == [
            ("fired_twice", "error", ("b",),
             "b's backward function ran twice in backward pass 1 (firings 1 and 2), so it pushed its "
             "gradient to its parents twice"),
        ]

    def test_firing_again_with_only_what_is_new_is_path_by_path_propagation(self):
        """A node reached by two paths that passes on only each path's share is correct, and silent."""
        s = Stream()
        s.node(1, "a", 2.0)
        s.node(2, "b", 4.0, (1,), "**2", "f.py:2")
        s.node(3, "c", 8.0, (2, 2), "add", "f.py:3")
        s.start(root=3, order=(3, 2, 1))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(2, 3, 1.0)
        s.fire(2)
        s.write(1, 2, 4.0)
        s.write(2, 3, 1.0)
        s.fire(2)
        s.write(1, 2, 4.0)
        s.finish(3)
        assert diagnose(s.events) == []

    def test_leaf_firing_twice_is_harmless(self):
        """A node with no parents has nowhere to push, so repeated firing is not reported."""
        s = Stream()
        s.node(1, "a", 2.0)
        s.start(root=1, order=(1,))
        s.write(1, None, 1.0)
        s.fire(1)
        s.fire(1)
        s.finish(1)
        assert diagnose(s.events) == []


class TestFiredTooEarly:
    """A node firing before a node that uses it has fired, never passing the rest on."""

    def test_late_consumer_is_named_with_what_it_added(self):
        """With c = a * b and b = a + 1 visited c, a, b, a passed on a partial grad and b is named."""
        s = Stream()
        s.node(1, "x", 1.0)
        s.node(2, "a", 2.0, (1,), "**2", "f.py:2")
        s.node(3, "const", 1.0, (), "const")
        s.node(4, "b", 3.0, (2, 3), "add", "f.py:3")
        s.node(5, "c", 6.0, (2, 4), "mul", "f.py:4")
        s.start(root=5, order=(5, 2, 4, 1, 3))
        s.write(5, None, 1.0)
        s.fire(5)
        s.write(2, 5, 3.0)
        s.write(4, 5, 2.0)
        s.fire(2)
        s.write(1, 2, 6.0)
        s.fire(4)
        s.write(2, 4, 2.0)
        s.write(3, 4, 2.0)
        s.finish(5)
        assert brief(diagnose(s.events)) == [
            ("fired_too_early", "error", ("a", "b"),
             "a fired too early in backward pass 1: b, which uses it, fired after it and added 2 to "
             "a.grad, so a had passed on an incomplete gradient (3)"),
        ]

    def test_our_engine_never_fires_early(self):
        """Our engine's order is topological, so a diamond graph gives no finding."""
        def script():
            x = Value(1.5, name="x")
            a = x.sin()
            b = a * a + a.exp()
            b.backward()
        assert diagnostics(run(script)) == []


class TestOverwrittenGrad:
    """A write that assigned where it should have added, at the = line."""

    def test_message_shows_the_closure_line_and_the_fixed_line(self, tmp_path):
        """The source line is read from the file, and the hint gives it back with +=."""
        script = tmp_path / "engine.py"
        script.write_text("def backward():\n    a.grad = out.grad * 1\n")
        site = f"{script}:2"
        s = Stream()
        s.node(1, "x", 5.0)
        s.node(2, "z", 10.0, (1, 1), "add")
        s.start(root=2, order=(2, 1))
        s.write(2, None, 1.0, replaced=True)
        s.fire(2)
        s.write(1, 2, 1.0, site, replaced=True)
        s.write(1, 2, 1.0, site, replaced=True)
        s.finish(2)
        (finding,) = diagnose(s.events)
        assert finding == Finding(
            1, "overwritten_grad", "error",
            f"z's backward function set x.grad to 1 at {site} (`a.grad = out.grad * 1`), replacing 1 "
            f"instead of adding to it, which would give 2",
            (1, 2), ("x", "z"), site,
            "write `a.grad += out.grad * 1`: a node used in several places must collect every contribution")

    def test_every_write_from_one_line_in_every_pass_is_one_finding(self, tmp_path):
        """Writes from one = line in two passes: reported when first seen, then updated with the count."""
        script = tmp_path / "engine.py"
        script.write_text("def backward():\n    a.grad = out.grad * 1\n")
        site = f"{script}:2"
        s = Stream()
        s.node(1, "x", 5.0)
        s.node(2, "z", 10.0, (1, 1), "add")
        for _ in range(2):
            s.start(root=2, order=(2, 1))
            s.write(2, None, 1.0, replaced=True)
            s.fire(2)
            s.write(1, 2, 1.0, site, replaced=True)
            s.write(1, 2, 1.0, site, replaced=True)
            s.finish(2)
        found = [f for f in diagnose(s.events) if f.finding == "overwritten_grad"]
        assert {f.site for f in found} == {site}
        assert found[-1].message.startswith(f"a backward function assigned a grad instead of adding to it at "
                                            f"{site} (`a.grad = out.grad * 1`) 3 times in backward passes 1 and 2")

    def test_overwrite_example_says_what_adding_would_give(self):
        """In the overwrite example the rule assigns 8 over the 1 already there; += would give 9."""
        found = traced_script(EXAMPLES / "overwrite_bug.py")
        assert [f.finding for f in found if f.severity != "info"] == ["overwritten_grad"]
        (finding,) = [f for f in found if f.finding == "overwritten_grad"]
        assert finding.site.endswith(f":{line_of(EXAMPLES / 'overwrite_bug.py', 'a.der = out.der')}")
        assert "set x.grad to 8" in finding.message
        assert "replacing 1 instead of adding to it, which would give 9" in finding.message
        assert finding.hint.startswith("write `a.der += out.der")

    def test_seeding_the_root_or_resetting_a_grad_is_not_an_overwrite(self):
        """``out.grad = 1`` over a stale root grad seeds; ``p.grad = 0`` in a rule resets: neither is a bug."""
        s = Stream()
        s.node(1, "r", 1.0)
        s.node(2, "q", 1.0, (1,), "exp")
        s.grads[1] = 1.0
        s.start(root=2, order=(2, 1))
        s.write(2, None, 1.0, replaced=True)
        s.fire(2)
        s.write(1, 2, 0.0, "opt.py:3", replaced=True)
        s.finish(2)
        assert [f.finding for f in diagnose(s.events)] == ["stale_gradient"]


class TestNonFinite:
    """The first NaN or infinity, with what produced it; what follows is counted."""

    def test_overflowing_value_is_named_with_its_operands_and_followers_counted(self):
        """Value(1e308) * 10 is the origin; the two values computed from it form one summary."""
        def script():
            big = Value(1e308, name="big")
            y = big * 10
            z = y - y
            z * 2
        found = diagnostics(run(script))
        y_site = found[0].site
        assert brief(found) == [
            ("non_finite", "error", ("y",),
             f"y became inf at {y_site}: mul(big = 1e+308, 10) overflows the largest float (about 1.8e308)"),
            ("non_finite", "info", (),
             "2 more node values became non-finite, each computed from the non-finite numbers reported above"),
        ]

    def test_infinite_derivative_of_sqrt_at_zero_is_the_origin_of_the_grad(self):
        """sqrt at 0 has a finite value but an infinite derivative: the leaf's grad origin is named."""
        def script():
            s = Value(0.0, name="s")
            r = s.sqrt()
            q = r * 3
            q.backward()
        (finding,) = diagnostics(run(script))
        assert (finding.finding, finding.names, finding.message) == (
            "non_finite", ("s", "r"),
            f"s.grad became inf in backward pass 1: the derivative of r = sqrt(s = 0) with respect "
            f"to s is inf ({finding.site})")

    def test_hand_built_nan_grad_is_reported_once_and_its_carriers_summarised(self):
        """A NaN written by a user engine is the origin; the grads it flows into are counted."""
        s = Stream()
        s.node(1, "x", 1.0)
        s.node(2, "h", 2.0, (1,), "tanh")
        s.node(3, "out", 3.0, (2,), "log", "net.py:7")
        s.start(root=3, order=(3, 2, 1))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(2, 3, float("nan"), "net.py:20")
        s.fire(2)
        s.write(1, 2, float("nan"), "net.py:14")
        s.finish(3)
        assert brief(diagnose(s.events)) == [
            ("non_finite", "error", ("h", "out"),
             "h.grad became nan in backward pass 1: out's backward function wrote nan (net.py:20)"),
            ("non_finite", "info", (),
             "1 more grad became non-finite, each carrying the non-finite numbers reported above"),
        ]


class TestGradNeverReached:
    """A leaf the root depends on that received nothing."""

    def test_leaf_without_a_write_is_reported_as_information(self):
        """A closure that forgets one parent leaves that leaf unreached."""
        s = Stream()
        s.node(1, "w", 0.5, site="net.py:1")
        s.node(2, "b", 0.1, site="net.py:2")
        s.node(3, "out", 0.6, (1, 2), "add")
        s.start(root=3, order=(3, 1, 2))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(1, 3, 1.0)
        s.finish(3)
        assert diagnose(s.events) == [Finding(
            1, "grad_never_reached", "info",
            "b received no gradient in backward pass 1 although out depends on it, so b.grad stayed 0",
            (2,), ("b",), "net.py:2",
            "if this branch is not detached on purpose, check that every op between out and b has a "
            "backward function that writes to all its parents")]


class TestGradientMismatch:
    """The opt-in numerical check inside the analyzer."""

    @pytest.mark.parametrize("example", ["forgot_zero_grad.py", "micrograd_mlp.py", "worked_example.py",
                                         "decorator_demo.py"])
    def test_examples_get_no_false_finding_with_check_grads(self, example, tmp_path):
        """The examples' correct parts give no gradient_mismatch: the check uses each pass's own values."""
        found = traced_script(EXAMPLES / example, str(tmp_path), check_grads=True)  # argv[1]: where to write
        assert [f.message for f in found if f.finding == "gradient_mismatch"] == []

    def test_correct_engine_passes_the_check(self):
        """Our engine's gradients agree with central differences, so nothing is reported."""
        def script():
            x = Value(0.7, name="x")
            y = Value(-1.3, name="y")
            out = (x * y).tanh() + (x ** 3) / (y * y + 1) + x.sigmoid().log()
            out.backward()
        assert diagnostics(run(script, check_grads=True)) == []

    def test_training_loop_updating_leaves_in_place_passes_the_check(self):
        """Leaves changed by ``p.data -= lr * p.grad`` are checked at the values the pass's graph used."""
        def script():
            w, b = Value(0.5, name="w"), Value(-0.2, name="b")
            for x in (1.0, -2.0, 0.5):
                loss = ((w * x + b).tanh() - 0.3) ** 2
                zero_grad([w, b])
                loss.backward()
                for p in (w, b):
                    p.data -= 0.5 * p.grad
        assert diagnostics(run(script, check_grads=True)) == []

    def test_wrong_rule_after_an_in_place_update_is_still_found(self):
        """Pass 2's graph was built from w = 2 (not the 1 it was made with); its wrong rule is caught."""
        s = Stream()
        s.node(1, "w", 1.0, site="u.py:1")
        s.node(2, "p", 3.0, (1, 1), "add")  # the recorded graph of pass 1 is w + w
        s.start(root=2, order=(2, 1))
        s.write(2, None, 1.0)
        s.fire(2)
        s.write(1, 2, 2.0)
        s.finish(2)
        s.node(3, "q", 4.0, (1, 1), "*")  # w * w with w = 2 by now: micrograd's one-element parent set
        s.grads[1] = 0.0
        s.start(root=3, order=(3, 1))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(1, 3, 2.0)  # should be 2 w = 4
        s.finish(3)
        findings = diagnose(s.events, check_grads=True)
        assert [(f.finding, f.pass_no) for f in findings if f.finding != "stale_gradient"] == [
            ("gradient_mismatch", 2)]
        assert "central differences give d q/d w = 4" in findings[-1].message

    def test_wrong_local_derivative_is_reported_with_both_numbers(self):
        """A user engine's wrong rule for mul shows as a mismatch per leaf."""
        s = Stream()
        s.node(1, "a", 2.0, site="u.py:1")
        s.node(2, "b", 3.0, site="u.py:2")
        s.node(3, "p", 6.0, (1, 2), "mul")
        s.start(root=3, order=(3, 1, 2))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(1, 3, 2.0)  # should be b = 3
        s.write(2, 3, 2.0)
        s.finish(3)
        assert brief(diagnose(s.events, check_grads=True)) == [
            ("gradient_mismatch", "error", ("a",),
             "backward pass 1 added 2 to a.grad, but central differences give d p/d a = 3"),
        ]

    def test_unknown_op_skips_every_pass_with_one_reason(self):
        """An op outside the rule table cannot be recomputed: one finding says why, for every pass."""
        s = Stream()
        s.node(1, "a", 2.0)
        s.node(2, "m", 6.0, (1,), "mystery", "u.py:4")
        for _ in range(2):
            s.start(root=2, order=(2, 1))
            s.write(2, None, 1.0)
            s.fire(2)
            s.write(1, 2, 1.0)
            s.finish(2)
            s.grads = dict.fromkeys(s.grads, 0.0)
        causes = group(f for f in diagnose(s.events, check_grads=True) if f.finding == "check_skipped")
        assert [(c["site"], c["passes"], c["message"]) for c in causes] == [
            ("u.py:4", [1, 2], "backward passes 1 and 2 could not be checked numerically: no derivative rule "
                               "is known for the op 'mystery' with 1 operand(s)")]

"""Specification of the diagnostics: which findings each gradient bug produces, and their words."""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
from pathlib import Path

import pytest

from autodiff_trace import Value, trace, zero_grad
from autodiff_trace.analysis.diagnoser import Diagnoser, diagnose, format_number, source_line
from autodiff_trace.core.events import Finding, GradsZeroed, to_dict

from streams import Stream

# The seed notebook's code cells, verbatim, as the script examples/notebook_bug.py
# (comments and all, so that line numbers match): the script whose lines the hand-built
# stream's sites name. Run as is, it prints "1 2 0" and then "1 22 18".
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK_BUG = (EXAMPLES / "notebook_bug.py").read_text(encoding="utf-8")


def at(code: str) -> str:
    """``notebook_bug.py:NN``, the site of the one line of the notebook holding ``code``."""
    lines = [n for n, text in enumerate(NOTEBOOK_BUG.splitlines(), 1) if text.split("#")[0].strip() == code]
    assert len(lines) == 1, code
    return f"notebook_bug.py:{lines[0]}"


def notebook_events() -> list:
    """The notebook's run as an engine adapter reports it, hand-built event by event.

    This stream stands in for the adapter, so the findings are specified without it;
    the test beside it checks that the adapter reports the same stream. Ids follow
    creation order; ``add(x,y)`` twice on one line makes add#4 and add#5, and the
    ``mul`` around them, the line's result, is named ``z`` like pass 1's root. Each
    pass's ``order`` is computed from its root by following parents; the engine
    itself visits ``reversed(order)`` of its module-level list, which in pass 2 still
    holds pass 1's ``z``.
    """
    s = Stream()
    s.node(1, "x", 5.0, site=at("x = Node(5)"))
    s.node(2, "y", 4.0, site=at("y = Node(4)"))
    s.node(3, "z", 10.0, (1, 1), "add", at("z = add(x,x)"))
    s.start(root=3, order=(3, 1))
    s.write(3, None, 1.0, at("out_node.grad = 1"), replaced=True)
    s.fire(3)
    s.write(1, 3, 1.0, at("a.grad += out.grad * 1"))
    s.write(1, 3, 1.0, at("b.grad += out.grad * 1"))
    s.finish(3)
    line = at("z = mul(add(x,y),add(x,y))")
    s.node(4, "add#4", 9.0, (1, 2), "add", line)
    s.node(5, "add#5", 9.0, (1, 2), "add", line)
    s.node(6, "z", 81.0, (4, 5), "mul", line)
    s.start(root=6, order=(6, 4, 5, 1, 2))
    s.write(6, None, 1.0, at("out_node.grad = 1"), replaced=True)
    s.fire(6)  # the global order is now [x, z, y, add#4, add#5, mul#6], visited reversed
    s.write(4, 6, 9.0, at("a.grad += out.grad * b.value"))
    s.write(5, 6, 9.0, at("b.grad += out.grad * a.value"))
    for add in (5, 4):
        s.fire(add)
        s.write(1, add, 9.0, at("a.grad += out.grad * 1"))
        s.write(2, add, 9.0, at("b.grad += out.grad * 1"))
    s.fire(3)  # pass 1's z, still in the global list, holding its grad of 1
    s.write(1, 3, 1.0, at("a.grad += out.grad * 1"))
    s.write(1, 3, 1.0, at("b.grad += out.grad * 1"))
    s.finish(6)
    assert (s.grads[6], s.grads[1], s.grads[2]) == (1.0, 22.0, 18.0)  # the notebook's "1 22 18"
    return s.events


def renumbered(events) -> list:
    """The events with node ids 1, 2, ... in order of creation (names like ``mul#22`` too)."""
    new_id = {}
    for e in events:
        if e.kind == "node_created":
            new_id[e.node] = len(new_id) + 1
    ids = lambda nodes: tuple(new_id[n] for n in nodes)  # noqa: E731
    fields = {"node": new_id.get, "root": new_id.get, "target": new_id.get,
              "fired_by": lambda n: None if n is None else new_id[n],
              "parents": ids, "order": ids, "nodes": ids,
              "name": lambda name: re.sub(r"#(\d+)$", lambda m: f"#{new_id[int(m.group(1))]}", name)}
    return [e._replace(**{f: fields[f](getattr(e, f)) for f in e._fields if f in fields}) for e in events]


def comparable(events) -> list:
    """The events without times, and with sites reduced to ``file.py:NN`` (any folder)."""
    plain = []
    for e in events:
        e = e._replace(seq=0, t=0.0)
        if e.kind == "backward_finished":
            e = e._replace(duration=0.0)
        if getattr(e, "site", None):
            e = e._replace(site=os.path.basename(e.site))
        plain.append(e)
    return plain


def brief(findings) -> list:
    """(kind, severity, node names, message) of each finding, for exact comparison."""
    return [(f.finding, f.severity, f.names, f.message) for f in findings]


class TestNotebookAcceptance:
    """The seed notebook's story, told by the findings."""

    def test_notebook_script_prints_what_the_notebook_printed(self):
        """The reproduced script prints the notebook's two lines, so the hand-built stream has a faithful source."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(NOTEBOOK_BUG, "notebook_bug.py", "exec"), {})
        assert out.getvalue() == "1 2 0\n1 22 18\n"

    def test_findings_tell_the_two_bugs_and_the_fresh_answer(self):
        """Stale x.grad, pass 1's z firing in pass 2, and 22 where this graph gives 18: exactly these."""
        assert brief(diagnose(notebook_events())) == [
            ("stale_gradient", "warning", ("x",),
             f"x.grad was 2.0 when backward pass 2 began (left from pass 1, {at('b.grad += out.grad * 1')}); "
             "zero the gradients before each backward"),
            ("fired_outside_graph", "error", ("z #3", "x"),
             f"z #3 ({at('z = add(x,x)')}) fired in backward pass 2 although that pass's root z #6 "
             f"({at('z = mul(add(x,y),add(x,y))')}) does not depend on it; it is left over from "
             "pass 1's graph and, passing on its grad of 1.0, added 2.0 more to x.grad"),
            ("polluted_grad", "error", ("x", "z #3"),
             "x.grad ended backward pass 2 at 22.0, but the writes from this pass's own graph add up to "
             "18.0: 2.0 was left from pass 1 and 2.0 came from z #3, which is not part of this graph"),
        ]

    def test_each_finding_carries_its_pass_site_and_hint(self):
        """Every finding belongs to pass 2 and points at the line that matters, with a fix."""
        findings = diagnose(notebook_events())
        assert [(f.pass_no, f.nodes, f.site) for f in findings] == [
            (2, (1,), at("b.grad += out.grad * 1")),
            (2, (3, 1), at("z = add(x,x)")),
            (2, (1, 3), at("x = Node(5)")),
        ]
        assert findings[1].hint == ("the list of nodes to visit outlives the pass (a module-level order "
                                    "list or visited set, say); build it afresh from the root inside each "
                                    "backward call")
        assert findings[2].hint == ("with gradients zeroed before the pass and only this graph's backward "
                                    "functions firing, x.grad would be 18.0")

    def test_numerical_check_puts_x_at_18(self):
        """With the check on, x's 20.0 added in pass 2 (22.0 in all) is set against d z/d x = 18.0."""
        findings = diagnose(notebook_events(), check_grads=True)
        mismatches = [f for f in findings if f.finding == "gradient_mismatch"]
        assert brief(mismatches) == [
            ("gradient_mismatch", "error", ("x",),
             "backward pass 2 added 20.0 to x.grad (now 22.0), but central differences give "
             "d z #6/d x = 18.0"),
        ]

    def test_adapter_on_the_real_script_reports_the_hand_built_stream(self, tmp_path, monkeypatch):
        """Run under the engine adapter, the script reports the same events (ids renumbered from 1)."""
        adapters = pytest.importorskip("autodiff_trace.adapters")
        (tmp_path / "notebook_bug.py").write_text(NOTEBOOK_BUG)
        monkeypatch.chdir(tmp_path)
        with trace() as t, adapters.instrument():
            with contextlib.redirect_stdout(io.StringIO()):
                runpy.run_path("notebook_bug.py", run_name="__main__")
        assert comparable(renumbered(t.events)) == comparable(notebook_events())

    def test_dicts_read_from_json_give_the_same_findings(self):
        """diagnose() accepts the events' JSON dicts, as a trace file holds them."""
        events = notebook_events()
        assert diagnose([to_dict(e) for e in events]) == diagnose(events)


def run(script, **options):
    """Run ``script`` (a function using our engine) under a Diagnoser; return the tracer."""
    with trace(analyzers=[Diagnoser(**options)]) as t:
        script()
    return t


def diagnostics(t) -> list:
    return [e for e in t.events if e.kind == "diagnostic"]


class TestStaleGradient:
    """A pass that begins with grads left by an earlier one."""

    def test_second_backward_without_zeroing_names_every_stale_node_leaves_first(self):
        """Each node holding a grad is named once, with its number and source pass; constants are not."""
        def script():
            x = Value(3.0, name="x")
            sq = x * x
            y = sq + 1
            y.backward()
            y.backward()
        found = diagnostics(run(script))
        assert [(d.pass_no, d.names, d.severity) for d in found] == [
            (2, ("x",), "warning"), (2, ("y",), "warning"), (2, ("sq",), "warning")]
        assert found[0].message == ("x.grad was 6.0 when backward pass 2 began (left from pass 1); "
                                    "zero the gradients before each backward")

    def test_finding_follows_the_backward_started_event(self):
        """The tracer delivers the finding right after the event that revealed it."""
        def script():
            x = Value(3.0, name="x")
            y = x * 2
            y.backward()
            x.grad = 0.0
            y.backward()
        kinds = [e.kind for e in run(script).events]
        started = kinds.index("backward_started", kinds.index("backward_finished"))
        assert kinds[started:started + 3] == ["backward_started", "diagnostic", "grad_accumulated"]

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
            "w.grad was 0.5 when backward pass 1 began (left from before this trace began); "
            "zero the gradients before each backward")

    def test_limit_lists_a_few_and_counts_the_rest(self):
        """Beyond the limit, one summary finding says how many were left out."""
        def script():
            xs = [Value(float(i), name=f"x{i}") for i in range(5)]
            total = xs[0]
            for v in xs[1:]:
                total = total + v
            total.backward()
            total.backward()
        found = diagnostics(run(script, limit=2))
        assert [d.names for d in found[:2]] == [("x4",), ("x3",)]  # leaves, in the pass's order
        assert found[2].message == ("not listed: 7 more stale_gradient findings in backward pass 2 "
                                    "(the limit is 2 per pass)")
        assert len(found) == 3


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
    """A node firing more than once in a pass."""

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
    """A node firing before a node that uses it has fired."""

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
             "a fired too early in backward pass 1: b, which uses it, fired after it and added 2.0 to "
             "a.grad, so a had passed on an incomplete gradient (3.0)"),
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
    """A write that assigned where it should have added."""

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
            f"z's backward function set x.grad to 1.0 at {site} (`a.grad = out.grad * 1`), replacing 1.0 "
            f"instead of adding to it, which would give 2.0",
            (1, 2), ("x", "z"), site,
            "write `a.grad += out.grad * 1`: a node used in several places must collect every contribution")

    def test_overwrite_example_says_what_adding_would_give(self):
        """In the overwrite example the rule assigns 8 over the 1 already there; += would give 9."""
        from autodiff_trace.adapters import instrument

        example = EXAMPLES / "overwrite_bug.py"
        with trace(analyzers=[Diagnoser()]) as t, instrument():
            runpy.run_path(str(example), run_name="__main__")
        (finding,) = [e for e in t.events if e.kind == "diagnostic"]
        assert finding.finding == "overwritten_grad"
        assert "set x.grad to 8.0" in finding.message
        assert "replacing 1.0 instead of adding to it, which would give 9.0" in finding.message
        assert finding.hint.startswith("write `a.der += out.der")

    def test_seeding_the_root_by_assignment_is_not_an_overwrite(self):
        """``out.grad = 1`` over a stale root grad is how engines seed, not a bug."""
        s = Stream()
        s.node(1, "r", 1.0)
        s.grads[1] = 1.0
        s.start(root=1, order=(1,))
        s.write(1, None, 1.0, replaced=True)
        s.finish(1)
        assert [f.finding for f in diagnose(s.events)] == ["stale_gradient"]


class TestNonFinite:
    """The first NaN or infinity, with what produced it; what follows is counted."""

    def test_overflowing_value_is_named_with_its_operands_and_followers_counted(self):
        """Value(1e308) * 10 is the origin; the two values computed from it form one summary."""
        def script():
            big = Value(1e308, name="big")
            y = big * 10
            z = y - y
            w = z * 2
        found = diagnostics(run(script))
        y_site = found[0].site
        assert brief(found) == [
            ("non_finite", "error", ("y",),
             f"y became inf at {y_site}: mul(big = 1e+308, 10.0) overflows the largest float (about 1.8e308)"),
            ("non_finite", "info", (),
             "2 more node values became non-finite, each computed from the non-finite values reported above"),
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
            f"s.grad became inf in backward pass 1: the derivative of r = sqrt(s = 0.0) with respect "
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
             "1 more grad became non-finite in backward pass 1, each carrying the non-finite numbers "
             "reported above"),
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
            "b received no gradient in backward pass 1 although out depends on it, so b.grad stayed 0.0",
            (2,), ("b",), "net.py:2",
            "if this branch is not detached on purpose, check that every op between out and b has a "
            "backward function that writes to all its parents")]


class TestGradientMismatch:
    """The opt-in numerical check inside the analyzer."""

    def test_correct_engine_passes_the_check(self):
        """Our engine's gradients agree with central differences, so nothing is reported."""
        def script():
            x = Value(0.7, name="x")
            y = Value(-1.3, name="y")
            out = (x * y).tanh() + (x ** 3) / (y * y + 1) + x.sigmoid().log()
            out.backward()
        assert diagnostics(run(script, check_grads=True)) == []

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
             "backward pass 1 added 2.0 to a.grad, but central differences give d p/d a = 3.0"),
        ]

    def test_unknown_op_skips_the_check_with_a_reason(self):
        """An op outside the rule table cannot be recomputed, and the finding says why."""
        s = Stream()
        s.node(1, "a", 2.0)
        s.node(2, "m", 6.0, (1,), "mystery")
        s.start(root=2, order=(2, 1))
        s.write(2, None, 1.0)
        s.fire(2)
        s.write(1, 2, 1.0)
        s.finish(2)
        assert [f.message for f in diagnose(s.events, check_grads=True)] == [
            "backward pass 1 could not be checked numerically: no derivative rule is known for the op "
            "'mystery' with 1 operand(s)"]


class TestDiagnoseApi:
    """The plain function and the analyzer's options."""

    def test_pass_cut_short_is_still_finished_at_close(self):
        """A stream ending mid-pass still gets its end-of-pass findings."""
        s = Stream()
        s.node(1, "w", 0.5)
        s.node(2, "out", 0.6, (1,), "exp")
        s.start(root=2, order=(2, 1))
        s.write(2, None, 1.0)
        assert [f.finding for f in diagnose(s.events)] == ["grad_never_reached"]

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
            "w.grad was 4.0 when backward pass 2 began (left by a write outside any backward pass, "
            "train.py:9); zero the gradients before each backward")

    def test_non_event_is_a_one_line_type_error(self):
        """Passing something that is not an event names the item and what to pass instead."""
        with pytest.raises(TypeError, match=r"^diagnose\(\): item 0 is a int, not an event; pass "
                                            r"trace\(\)\.events or load_events\(path\)$"):
            diagnose([3])

    @pytest.mark.parametrize("options, message", [
        ({"rtol": -1}, r"Diagnoser\(rtol=-1\): expected a finite number >= 0"),
        ({"limit": 0}, r"Diagnoser\(limit=0\): expected a whole number >= 1"),
    ])
    def test_bad_option_is_a_one_line_value_error(self, options, message):
        """An impossible option is refused with its name and the expected range."""
        with pytest.raises(ValueError, match=message):
            Diagnoser(**options)

    def test_format_number_and_source_line(self, tmp_path):
        """Numbers print like floats; a site reads its line, a missing file gives None."""
        path = tmp_path / "m.py"
        path.write_text("a = 1\n  b.grad = 2\n")
        assert (format_number(22), source_line(f"{path}:2"), source_line("nowhere.py:3")) == (
            "22.0", "b.grad = 2", None)

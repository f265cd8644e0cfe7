"""Specification of the diagnostics: which findings each gradient bug produces, and their words."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import pytest

from autodiff_trace import Value, trace
from autodiff_trace.analysis.diagnoser import Diagnoser, diagnose, source_line
from autodiff_trace.analysis.causes import group
from autodiff_trace.core.events import to_dict

from diagnosing import brief, diagnostics, line_of, run, traced_script
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


class TestNotebookAcceptance:
    """The seed notebook's story, told by the findings: stale 2, z #3 re-fired, 22 instead of 18."""

    def test_notebook_script_prints_what_the_notebook_printed(self):
        """The reproduced script prints the notebook's two lines, so the hand-built stream has a faithful source."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(NOTEBOOK_BUG, "notebook_bug.py", "exec"), {})
        assert out.getvalue() == "1 2 0\n1 22 18\n"

    def test_traced_script_tells_the_two_bugs_at_the_lines_to_change(self):
        """Run as trace-backward runs it: the stale x at the second backward call, pass 1's z at the
        module-level list that re-fires it, and 22 where this graph gives 18."""
        script = EXAMPLES / "notebook_bug.py"
        found = traced_script(script)
        line = lambda code: f"{line_of(script, code)}"  # noqa: E731
        assert [(f.finding, f.severity, f.names, f.site.rpartition(":")[2]) for f in found] == [
            ("stale_gradient", "warning", ("x",), line("backward(z)") if False else "61"),
            ("fired_outside_graph", "error", ("z #3", "x"), line("order = []")),
            ("polluted_grad", "error", ("x", "z #3"), line("order = []")),
        ]
        stale, outside, polluted = found
        assert stale.message == (f"x.grad was 2 when backward pass 2 began at {stale.site} (`backward(z)`): it "
                                 f"still held the gradient from pass 1, begun at {stale.site[:-2]}58, and "
                                 f"nothing zeroed it in between")
        assert outside.message.endswith("does not depend on it; it is left over from pass 1's graph and, "
                                        "passing on its grad of 1, added 2 more to x.grad")
        assert outside.hint == (f"`order` is made once, at {outside.site}, and outlives the pass, so the loop at "
                                f"{outside.site[:-2]}50 (`for node in reversed(order):`) visits nodes of earlier "
                                f"graphs: build it afresh from the root inside each backward call (and any "
                                f"visited set kept with it)")
        assert polluted.message == ("x.grad ended backward pass 2 at 22, but the writes from this pass's own graph "
                                    "add up to 18: 2 was left from pass 1 and 2 came from z #3, which is not part "
                                    "of this graph")

    def test_replayed_events_tell_the_same_story_without_the_call_lines(self):
        """From events alone (no call stack), the same three findings, located at the nodes."""
        assert brief(diagnose(notebook_events())) == [
            ("stale_gradient", "warning", ("x",),
             "x.grad was 2 when backward pass 2 began: it still held the gradient from pass 1, and nothing "
             "zeroed it in between"),
            ("fired_outside_graph", "error", ("z #3", "x"),
             f"z #3 ({at('z = add(x,x)')}) fired in backward pass 2 although that pass's root z #6 "
             f"({at('z = mul(add(x,y),add(x,y))')}) does not depend on it; it is left over from "
             "pass 1's graph and, passing on its grad of 1, added 2 more to x.grad"),
            ("polluted_grad", "error", ("x", "z #3"),
             "x.grad ended backward pass 2 at 22, but the writes from this pass's own graph add up to "
             "18: 2 was left from pass 1 and 2 came from z #3, which is not part of this graph"),
        ]
        assert [f.site for f in diagnose(notebook_events())] == [None, at("z = add(x,x)"), at("x = Node(5)")]

    def test_numerical_check_puts_x_at_18(self):
        """With the check on, x's 20 added in pass 2 (22 in all) is set against d z/d x = 18."""
        findings = diagnose(notebook_events(), check_grads=True)
        assert brief([f for f in findings if f.finding == "gradient_mismatch"]) == [
            ("gradient_mismatch", "error", ("x",),
             "backward pass 2 added 20 to x.grad (now 22), but central differences give d z #6/d x = 18"),
        ]

    def test_dicts_read_from_json_give_the_same_findings(self):
        """diagnose() accepts the events' JSON dicts, as a trace file holds them."""
        events = notebook_events()
        assert diagnose([json.loads(json.dumps(to_dict(e))) for e in events]) == diagnose(events)


class TestOneFindingPerCause:
    """Occurrences of one kind at one line are one finding, updated as they recur."""

    def test_forgetting_zero_grad_is_one_finding_at_the_backward_call(self):
        """examples/forgot_zero_grad.py: 17 parameters in passes 2 and 3 are one stale_gradient, at loss.backward()."""
        script = EXAMPLES / "forgot_zero_grad.py"
        causes = group(traced_script(script))
        site = f"examples/forgot_zero_grad.py:{line_of(script, 'loss.backward()')}"
        assert [(c["finding"], c["site"], c["passes"], len(c["nodes"])) for c in causes] == [
            ("stale_gradient", site, [2, 3], 17)]
        assert causes[0]["message"] == (
            f"17 parameters (w0…w16) held gradients from the previous pass when backward passes 2 and 3 "
            f"began; nothing zeroed them between the backward calls at {site}")

    def test_the_first_occurrence_is_reported_live_and_later_ones_update_it(self):
        """Pass 2 reports the stale grads as it begins; pass 3 adds one update with the same kind and site."""
        def script():
            w = Value(0.5, name="w")
            for _ in range(3):
                loss = w * w
                loss.backward()
        t = run(script)
        kinds = [e.kind for e in t.events]
        found = diagnostics(t)
        assert [(d.pass_no, d.names) for d in found] == [(2, ("w",)), (3, ("w",))]
        assert found[0].site == found[1].site and source_line(found[0].site) == "loss.backward()"
        assert kinds[kinds.index("diagnostic") - 1] == "backward_started"
        assert "when backward passes 2 and 3 began" in found[1].message
        assert len(group(found)) == 1

    def test_findings_json_holds_one_object_per_cause_with_its_occurrences(self, tmp_path):
        """FindingsSink writes each cause once, with one occurrence per pass."""
        from autodiff_trace.sinks.findings import FindingsSink

        sink = FindingsSink(tmp_path)

        def script():
            w = Value(0.5, name="w")
            for _ in range(3):
                (w * w).backward()
        with trace([sink], analyzers=[Diagnoser()]):
            script()
        (cause,) = json.loads((tmp_path / "findings.json").read_text())
        assert (cause["finding"], cause["passes"], [o["pass_no"] for o in cause["occurrences"]]) == (
            "stale_gradient", [2, 3], [2, 3])
        assert (tmp_path / "findings.txt").read_text().startswith("WARNING stale_gradient (passes 2, 3) [")

    def test_causes_over_the_limit_are_counted_in_one_summary(self):
        """With limit=1, a second cause of the same kind is counted, not listed."""
        def script():
            x = Value(3.0, name="x")
            y = x * 2
            y.backward()
            y.backward()
            y.backward()
        found = diagnostics(run(script, limit=1))
        assert [d.message for d in found][-1] == ("not listed: 1 more stale_gradient cause in this trace "
                                                  "(the limit is 1 per kind)")


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

    def test_source_line_reads_a_site(self, tmp_path):
        """A site reads its line; a missing file gives None."""
        path = tmp_path / "m.py"
        path.write_text("a = 1\n  b.grad = 2\n")
        assert (source_line(f"{path}:2"), source_line("nowhere.py:3")) == ("b.grad = 2", None)

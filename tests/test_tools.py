"""The autodiff-trace command: render, diff, html, export and stats on saved traces."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autodiff_trace import Value, add, backward, load_events, mul, trace
from autodiff_trace.views.chrome import BACKWARD_TID, write_chrome_trace
from autodiff_trace.frontends.cli import app, trace_backward
from autodiff_trace.core.model import TraceModel
from autodiff_trace.views.player import build_player
from autodiff_trace.replay.tracediff import diff_traces

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

OUR_ENGINE = """
    from autodiff_trace import Value, add, mul, backward
    x = Value(5)
    y = Value(4)
    z = add(x, x)
    backward(z)
    z = mul(add(x, y), add(x, y))
    backward(z)
"""


def run_script(folder: Path, script: Path, *options: str):
    """Trace ``script`` with trace-backward into ``folder``; returns the CliRunner result."""
    result = runner.invoke(trace_backward, ["--out", str(folder), "--no-live", *options, str(script)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The learner's notebook engine, traced live with the report, the SVGs and the trace."""
    folder = tmp_path_factory.mktemp("notebook")
    result = run_script(folder, EXAMPLES / "notebook_bug.py", "--sink", "rich", "--sink", "svg",
                        "--sink", "json")
    return folder, result.stdout


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """The notebook's sequence of operations under autodiff_trace's own engine."""
    folder = tmp_path_factory.mktemp("ours")
    script = folder / "ours.py"
    script.write_text(textwrap.dedent(OUR_ENGINE))
    run_script(folder / "out", script, "--sink", "json", "--quiet")
    return folder / "out" / "trace.jsonl"


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], prog_name="autodiff-trace")


class TestRender:
    def test_rich_replay_prints_the_live_report(self, notebook):
        """--to rich prints exactly the report the live run printed (less the script's own prints)."""
        folder, live = notebook
        result = invoke("render", folder / "trace.jsonl", "--to", "rich")
        assert result.exit_code == 0, result.output
        report = "".join(line for line in live.splitlines(keepends=True)
                         if line not in ("1 2 0\n", "1 22 18\n"))
        assert result.stdout == report
        assert "x #1  leaf  value 5  grad 2 → 11 → 20 → 21 → 22  ⚠ stale" in result.stdout

    def test_svg_replay_equals_the_live_pictures(self, notebook, tmp_path):
        """--to svg writes byte-identical pass_N.svg files to the ones the live run wrote."""
        folder, _ = notebook
        result = invoke("render", folder / "trace.jsonl", "--to", "svg", "--out", tmp_path)
        assert result.exit_code == 0, result.output
        for name in ("pass_1.svg", "pass_2.svg"):
            assert (tmp_path / name).read_bytes() == (folder / name).read_bytes()

    def test_pass_option_draws_one_pass(self, notebook, tmp_path):
        """--pass 2 draws pass 2 only."""
        folder, _ = notebook
        result = invoke("render", folder, "--to", "svg", "--pass", "2", "--out", tmp_path)
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in tmp_path.glob("*.svg")) == ["pass_2.svg"]

    def test_pass_option_limits_the_rich_report(self, notebook):
        """--to rich --pass 1 prints only the first pass's report."""
        folder, _ = notebook
        result = invoke("render", folder / "trace.jsonl", "--pass", "1")
        assert "backward pass 1 from z #3" in result.stdout
        assert "backward pass 2" not in result.stdout

    def test_html_target_writes_the_player(self, notebook, tmp_path):
        """--to html writes trace.html into the output folder."""
        folder, _ = notebook
        result = invoke("render", folder / "trace.jsonl", "--to", "html", "--out", tmp_path)
        assert result.exit_code == 0, result.output
        assert '<input id="slider" type="range" min="0" max="18"' in (tmp_path / "trace.html").read_text()

    def test_unknown_pass_is_one_line(self, notebook, tmp_path):
        """A pass the trace does not have is named with the passes it does have."""
        folder, _ = notebook
        result = invoke("render", folder / "trace.jsonl", "--to", "svg", "--pass", "7", "--out", tmp_path)
        assert result.exit_code == 2
        assert result.stderr == ("autodiff-trace: pass 7 is not in the trace (its passes: 1, 2); "
                                 "nothing drawn\n")


class TestDiff:
    def test_notebook_against_our_engine_shows_x_22_vs_20(self, notebook, ours):
        """The notebook's x ends at 22, ours at 20; the diff exits 1."""
        folder, _ = notebook
        result = invoke("diff", folder / "trace.jsonl", ours)
        assert result.exit_code == 1, result.output
        assert "final grads that differ (1):\n  x  A 22  B 20\n" in result.stdout
        assert "nodes: 6 matched by name and creation site, 0 only in A, 0 only in B" in result.stdout

    def test_refired_closure_is_a_step_only_in_a(self, notebook, ours):
        """z's closure firing again in pass 2, and its two writes, are in the notebook's trace only."""
        folder, _ = notebook
        out = invoke("diff", folder / "trace.jsonl", ours).stdout
        z = r"z(?: \(notebook_bug\.py:57\))?"  # the site is added when another node is named z
        assert re.search(rf"first divergence:\n  A pass 2, seq 24: {z} fires, passing on 1 to its inputs\n"
                         r"  B \(nothing: the trace ends here\)\n", out)
        assert re.search(rf"steps only in A \(3\):\n  pass 2, seq 24: {z} fires, passing on 1 to its inputs\n"
                         rf"  pass 2, seq 25: x\.grad \+= 1 from {z} \(20 → 21\)\n"
                         rf"  pass 2, seq 26: x\.grad \+= 1 from {z} \(21 → 22\)\n", out)
        assert "steps only in B" not in out
        assert "findings only in A (2):\n  error fired_outside_graph: z " in out

    def test_a_trace_matches_itself(self, ours):
        """Comparing a trace with itself finds nothing and exits 0."""
        result = invoke("diff", ours, ours)
        assert result.exit_code == 0
        assert result.stdout.endswith("\nthe traces match\n")

    def test_nodes_are_matched_by_name_and_site_not_id(self):
        """Two runs of one function get different node ids and lines, yet match node for node."""
        def run():
            with trace() as t:
                x = Value(5.0, name="x")
                y = Value(4.0, name="y")
                backward(mul(add(x, y), add(x, y)))
            return t.events

        first = run()
        Value(1.0), Value(2.0)  # shift the ids of the second run
        second = run()
        assert [e.node for e in first if e.kind == "node_created"] != \
               [e.node for e in second if e.kind == "node_created"]
        result = diff_traces(first, second)
        assert result.same
        assert "nodes: 5 matched by name and creation site, 0 only in A, 0 only in B" in result.format()

    def test_adding_zero_grad_shifts_lines_but_keeps_nodes_matched(self, tmp_path):
        """With zero_grad() inserted, every node still matches and x differs: 20 without, 18 with."""
        scripts = {}
        for label, reset in (("a", ""), ("b", "zero_grad([x, y])\n")):
            body = textwrap.dedent(OUR_ENGINE).replace("z = mul", reset + "z = mul")
            body = body.replace("import Value,", "import Value, zero_grad,")
            scripts[label] = tmp_path / f"{label}.py"
            scripts[label].write_text(body)
            run_script(tmp_path / label, scripts[label], "--sink", "json", "--quiet")
        out = invoke("diff", tmp_path / "a", tmp_path / "b").stdout
        assert "nodes: 6 matched by name and creation site, 0 only in A, 0 only in B" in out
        assert "  x  A 20  B 18\n" in out
        assert "steps only in B (1):\n  seq 9: zeroed 2 grads (x, y)\n" in out

    def test_two_passes_of_one_run(self, notebook):
        """--pass 1:2 compares pass 1 with pass 2 of the same file: x ends them at 2 and 22."""
        folder, _ = notebook
        out = invoke("diff", folder, folder, "--pass", "1:2").stdout
        assert out.startswith(f"A: {folder / 'trace.jsonl'} (pass 1)\nB: {folder / 'trace.jsonl'} (pass 2)\n")
        assert "  x  A 2  B 22\n" in out

    def test_diagram_colours_the_differing_nodes(self, notebook, ours, tmp_path):
        """--out writes diff.dot and diff.svg: x filled red, z (only in A's pass) orange."""
        folder, _ = notebook
        result = invoke("diff", folder / "trace.jsonl", ours, "--out", tmp_path)
        assert result.exit_code == 1
        dot = (tmp_path / "diff.dot").read_text()
        assert re.search(r'bgcolor="#f4c7c3"><tr><td><b>x</b></td></tr><tr><td>A grad 22</td></tr>'
                         r'<tr><td>B grad 20</td>', dot)
        assert re.search(r'bgcolor="#fde2bf"><tr><td><b>z</b></td></tr><tr><td>A grad 1</td></tr>'
                         r'<tr><td>not in B</td>', dot)
        assert (tmp_path / "diff.svg").read_text().count("<svg") == 1

    def test_bad_pass_option_is_one_line(self, ours):
        """--pass that is not N or N:M is refused with an example."""
        result = invoke("diff", ours, ours, "--pass", "1:x")
        assert result.exit_code == 2
        assert result.stderr == ("autodiff-trace: --pass '1:x' should be a pass number N or N:M (pass N "
                                 "of A against pass M of B), e.g. --pass 2 or --pass 1:2\n")


def traced_events(name: str = "x"):
    with trace() as t:
        x = Value(3.0, name=name)
        y = Value(2.0, name="y")
        backward(mul(x, y) + x)
    return t.events


class TestHtml:
    def test_one_step_per_event_and_one_picture_per_firing(self, notebook):
        """The notebook's 2 passes make 19 steps (starts, firings, writes) and 2 + 5 frames."""
        folder, _ = notebook
        page = build_player(folder / "trace.jsonl")
        data = json.loads(re.search(r'<script type="application/json" id="steps">(.*?)</script>',
                                    page, re.S).group(1))
        assert len(data["steps"]) == 19
        assert page.count('<div class="frame"') == 7
        z = TraceModel.from_events(load_events(folder / "trace.jsonl")).name(3)  # z, or z #3 if twinned
        assert data["steps"][17]["text"] == f"x.grad += 1 from {z} (20 → 21)"
        assert data["steps"][17]["node"] == "v1"
        assert list(data["findings"]) == ["2"]

    def test_local_derivative_times_upstream_is_shown(self):
        """When the rule is known the ledger line reads local × upstream = added."""
        page = build_player(traced_events())
        assert re.search(r"x\.grad \+= 2 × 1 = 2 from mul#\d+ \(1 → 3\)", page)

    def test_a_node_named_script_stays_text(self):
        """A node named </script><script>alert(1)</script> never becomes markup."""
        page = build_player(traced_events("</script><script>alert(1)</script>"))
        assert "<script>alert" not in page
        assert page.count("<script") == 2  # the steps' JSON and the player's own code
        assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in page
        assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page  # in the SVG frames

    def test_page_loads_nothing_from_the_network(self):
        """No external resources, and a content security policy that forbids them."""
        page = build_player(traced_events())
        assert "default-src 'none'" in page
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
        assert "<link" not in page and "@import" not in page

    def test_html_command_writes_beside_the_trace(self, notebook):
        """Without --out the page is trace.html next to trace.jsonl."""
        folder, _ = notebook
        result = invoke("html", folder / "trace.jsonl")
        assert result.exit_code == 0, result.output
        assert result.stderr == f"autodiff-trace: wrote {folder / 'trace.html'}\n"
        assert "<title>notebook_bug.py: backward passes step by step</title>" in \
               (folder / "trace.html").read_text()

    def test_frames_are_capped(self, notebook):
        """Past max_frames pictures, the remaining steps of a pass all show its final picture."""
        folder, _ = notebook
        page = build_player(folder / "trace.jsonl", max_frames=3)
        data = json.loads(re.search(r'id="steps">(.*?)</script>', page, re.S).group(1))
        assert page.count('<div class="frame"') == 4  # pass 1: 2 frames; pass 2: 1, then its final one
        assert [s["frame"] for s in data["steps"]] == [0, 0, 1, 1, 1] + [2, 2] + [3] * 12


class TestExport:
    def test_chrome_trace_structure(self, notebook, tmp_path):
        """Passes are B/E slices, firings X slices inside them, writes instant events with args."""
        folder, _ = notebook
        out = tmp_path / "chrome.json"
        result = invoke("export", folder / "trace.jsonl", "--chrome", out)
        assert result.exit_code == 0, result.output
        data = json.loads(out.read_text())
        events = data["traceEvents"]
        assert data["displayTimeUnit"] == "ms"
        for e in events:
            assert e["ph"] in ("M", "B", "E", "X", "i") and isinstance(e["pid"], int)
            assert isinstance(e["tid"], int) and isinstance(e.get("args", {}), dict)
            if e["ph"] != "M":
                assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        passes = [e for e in events if e["ph"] in ("B", "E")]
        assert [e["ph"] for e in passes] == ["B", "E", "B", "E"]
        assert all(e["tid"] == BACKWARD_TID for e in passes)
        slices = [e for e in events if e["ph"] == "X"]
        names = {e.node: e.name for e in load_events(folder / "trace.jsonl") if e.kind == "node_created"}
        assert [s["name"].split(" fires, ")[0] for s in slices] == [names[n] for n in (3, 6, 5, 4, 3)]
        for s in slices:  # every firing lies inside its pass
            begin = max(b["ts"] for b in passes if b["ph"] == "B" and b["ts"] <= s["ts"])
            end = min(b["ts"] for b in passes if b["ph"] == "E" and b["ts"] >= begin)
            assert begin <= s["ts"] and s["ts"] + s["dur"] <= end + 1e-6  # float rounding
        writes = [e for e in events if e["ph"] == "i" and e["cat"] == "grad"]
        assert len(writes) == 12 and all(e["s"] == "t" for e in writes)
        assert writes[-1]["name"] == "x.grad += 1 from z (21 → 22)"
        assert {k: writes[-1]["args"][k] for k in ("target_name", "fired_by_name", "contribution",
                                                   "grad_before", "grad_after")} == {
            "target_name": "x", "fired_by_name": "z", "contribution": 1.0, "grad_before": 21.0,
            "grad_after": 22.0}
        assert len([e for e in events if e["ph"] == "i" and e["cat"] == "finding"]) == 3

    def test_pass_cut_short_is_still_closed(self):
        """A trace that stops mid-pass still has every B matched by an E."""
        events = [e for e in traced_events() if e.kind != "backward_finished"]
        import io

        buffer = io.StringIO()
        write_chrome_trace(events, buffer)
        phases = [e["ph"] for e in json.loads(buffer.getvalue())["traceEvents"]]
        assert phases.count("B") == phases.count("E") == 1


class TestStats:
    def test_counts_of_the_notebook_trace(self, notebook):
        """--json gives the counts per kind, nodes, passes and findings."""
        folder, _ = notebook
        result = invoke("stats", folder / "trace.jsonl", "--json")
        numbers = json.loads(result.stdout)
        assert numbers["kinds"] == {"node_created": 6, "backward_started": 2, "grad_accumulated": 12,
                                    "backward_fn_fired": 5, "backward_finished": 2, "diagnostic": 3}
        assert numbers["events"] == 30 and numbers["nodes"] == 6
        assert [(p["pass"], p["reachable"], p["fired"], p["writes"]) for p in numbers["passes"]] == [
            (1, 2, 1, 3), (2, 5, 4, 9)]
        assert all(p["seconds"] > 0 for p in numbers["passes"])
        assert (numbers["pass_totals"]["count"], numbers["pass_totals"]["finished"]) == (2, 2)
        assert numbers["findings"] == {"warning": {"stale_gradient": 1},
                                       "error": {"fired_outside_graph": 1, "polluted_grad": 1}}

    def test_text_report(self, notebook):
        """The text report has one line per pass with its time and one per finding kind."""
        folder, _ = notebook
        out = invoke("stats", folder / "trace.jsonl").stdout
        assert re.search(r"\n  pass 2 +\d+\.\d{3} ms  5 reachable, 4 fired, 9 grad writes\n", out)
        assert out.endswith("findings  3\n  error    fired_outside_graph    1\n"
                            "  error    polluted_grad          1\n"
                            "  warning  stale_gradient         1\n")


HEADER = '{"kind":"header","schema":"autodiff_trace.events","version":1}\n'
NODE = '{"kind":"node_created","seq":0,"t":0.0,"node":1,"op":"","value":5.0,"parents":[],"name":"x","site":null,"function":null}\n'
COMMANDS = [["stats"], ["render"], ["html"], ["export", "--chrome", "OUT"], ["diff", "GOOD"]]


class TestBadInput:
    @pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
    @pytest.mark.parametrize("content, message", [
        (None, "no such trace file"),
        ("", "the file is empty; it holds no trace"),
        (HEADER.replace('"version":1', '"version":9'), ":1: schema version 9 is not supported"),
        ("hello\n", ":1: not an autodiff_trace trace (the first line must be its header)"),
        (HEADER + NODE + '{"kind":"node_created","seq":\n' + NODE, ":3: not valid JSON"),
        (HEADER + NODE.replace('"value":5.0,', ''), ":2: node_created event: missing value"),
    ], ids=["missing", "empty", "version", "not-a-trace", "malformed", "wrong-fields"])
    def test_one_line_and_exit_2(self, tmp_path, command, content, message):
        """Every subcommand answers bad input with one line naming the file (and line), exit 2."""
        path = tmp_path / "trace.jsonl"
        if content is not None:
            path.write_text(content)
        good = tmp_path / "good.jsonl"
        good.write_text(HEADER + NODE)
        args = [str(tmp_path / "out.json") if a == "OUT" else str(good) if a == "GOOD" else a
                for a in command]
        result = invoke(args[0], path, *args[1:])
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"autodiff-trace: {path}")
        assert message in result.stderr
        assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.json.part").exists()

    def test_cut_last_line_is_a_warning_and_the_rest_is_used(self, tmp_path):
        """A last line cut short by a crash is named in one warning; the events before it count."""
        path = tmp_path / "trace.jsonl"
        path.write_text(HEADER + NODE + '{"kind":"node_cre')
        result = invoke("stats", path, "--json")
        assert result.exit_code == 0
        assert result.stderr == (f"autodiff-trace: warning: {path}:3: the last line is cut short (the "
                                 f"traced program stopped mid-write); the events before it are kept\n")
        assert json.loads(result.stdout)["nodes"] == 1

    def test_trace_without_a_pass_cannot_be_played(self, tmp_path):
        """html on a trace with no backward pass says so."""
        path = tmp_path / "trace.jsonl"
        path.write_text(HEADER + NODE)
        result = invoke("html", path)
        assert result.exit_code == 2
        assert result.stderr == ("autodiff-trace: the trace has no backward pass to play; "
                                 "call backward() inside the trace\n")

    def test_folder_without_a_trace(self, tmp_path):
        """A folder is accepted only when it holds trace.jsonl."""
        result = invoke("stats", tmp_path)
        assert result.exit_code == 2
        assert result.stderr == (f"autodiff-trace: {tmp_path} is a folder without a trace.jsonl; "
                                 f"give the path of a trace file\n")


class TestHelp:
    @pytest.mark.parametrize("command", ["render", "diff", "html", "export", "stats"])
    def test_each_subcommand_has_help(self, command):
        """Every subcommand explains itself under --help."""
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert f"Usage: autodiff-trace {command} [OPTIONS]" in result.stdout

    def test_subprocess_run(self, ours):
        """The module runs as a program: python -m autodiff_trace.frontends.cli stats."""
        done = subprocess.run([sys.executable, "-m", "autodiff_trace.frontends.cli", "stats", str(ours)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "\nnodes     6\npasses    2" in done.stdout


class TestRenderToHtml:
    def test_render_to_html_honours_max_nodes_like_html(self, tmp_path):
        """`render --to html` is the player of `html`: both fold the graph at --max-nodes."""
        with trace([]) as t:
            x = Value(1.0, name="x")
            y = x
            for _ in range(40):
                y = add(y, x)
            backward(y)
        from autodiff_trace import JsonlSink

        path = tmp_path / "chain.jsonl"
        sink = JsonlSink(path)
        for event in t.events:
            sink.handle(event)
        sink.close()
        assert invoke("render", path, "--to", "html", "--max-nodes", "10", "--out", tmp_path / "r").exit_code == 0
        assert invoke("html", path, "--max-nodes", "10", "--out", tmp_path / "h.html").exit_code == 0
        rendered = (tmp_path / "r" / "chain.html").read_text()
        assert "showing 10 of" in rendered
        assert rendered == (tmp_path / "h.html").read_text()

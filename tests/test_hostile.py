"""Hostile text: names, ops and findings full of DOT, HTML, XML and Rich markup syntax.

Node names and op labels are user text, and a trace file can hold any string. Every
sink must show such text literally: pictures stay well-formed SVG, Rich prints the
brackets instead of reading them as styles, control characters appear as escapes
(never as a line break or a terminal code), and JSON Lines gives back exactly what
went in.
"""

from __future__ import annotations

import io
import json
import re
import runpy
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List

import pytest
from rich.console import Console
from typer.testing import CliRunner

from autodiff_trace import Diagnoser, JsonlSink, Value, diagram, load_events, read_header, trace
from autodiff_trace.adapters import instrument
from autodiff_trace.frontends.cli import trace_backward as app
from autodiff_trace.core.events import to_dict
from autodiff_trace.core.text import visible
from autodiff_trace.sinks.rich_tree import RichTreeSink
from autodiff_trace.views.terminal.report import print_report

SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes Rich itself writes

HOSTILE = {
    "dot syntax": '{ } | < > " \\ ; -> -- x',
    "html": "<script>alert(1)</script><b>&amp;&lt;&#x41;</b>",
    "rich markup": "[bold red]loud[/] w[i] [/]",
    "rich link": "[link=file:///etc/passwd]click[/link]",
    "graphviz escapes": "\\N \\G \\L \\E \\T \\H",
    "xml end": "]]><!-- -->",
    "newlines": "line1\nline2\r\ttabbed",
    "terminal codes": "\x1b[31mred\x1b[0m\x1b]8;;http://evil\x07ring\x00nul",
    "bidi and zero width": "ab\u202edc\u200bz\ufeff",
    "non-latin": "δ損失🙂",
}
# keep the keys short and unique: they become the names' numeric values below
NAMES: List[str] = list(HOSTILE.values())


def hostile_trace(sinks=(), passes: int = 2) -> list:
    """A product of one leaf per hostile name, backward twice without zeroing (so stale
    findings quote every name); returns the events."""
    with trace(sinks=list(sinks), analyzers=[Diagnoser(limit=50)]) as t:
        leaves = [Value(1.0 + i / 8, name=name) for i, name in enumerate(NAMES)]
        total = leaves[0]
        for leaf in leaves[1:]:
            total = total * leaf
        total.name = "total"
        for _ in range(passes):
            total.backward()
    return t.events


def svg_texts(svg: bytes) -> List[str]:
    """The text of every <text> element of a well-formed SVG (parsing fails otherwise)."""
    root = ET.fromstring(svg)
    assert not [e for e in root.iter() if e.tag.rsplit("}", 1)[-1].lower() in ("script", "foreignobject")]
    return ["".join(e.itertext()) for e in root.iter(SVG + "text")]


def plain_console(width: int = 200) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None)


@pytest.fixture(scope="module")
def events():
    return hostile_trace()


class TestDiagramsShowHostileTextLiterally:
    @pytest.mark.render
    def test_svg_is_well_formed_and_shows_every_name_as_written(self, events):
        """Each name is one <text>, control characters escaped; no element comes from a name."""
        texts = svg_texts(diagram(events, 2).pipe("svg"))
        for name in NAMES:
            assert visible(name) in texts, name

    @pytest.mark.render
    def test_tooltips_quote_every_name_as_written(self, events):
        """Each value node's tooltip starts with its name, literally."""
        root = ET.fromstring(diagram(events, 2).pipe("svg"))
        titles = [a.get(XLINK_TITLE) or "" for a in root.iter(SVG + "a")]
        for name in NAMES:
            assert any(t.startswith(f"{visible(name, 300)}: leaf, data ") for t in titles), name

    @pytest.mark.render
    def test_folded_groups_and_frames_stay_well_formed(self, events):
        """With most nodes folded, and one step at a time, every picture still parses."""
        for picture in (diagram(events, 2, max_nodes=3), diagram(events, 1, step=1),
                        diagram(events, 2, rankdir="TB", step=4)):
            assert svg_texts(picture.pipe("svg"))

    def test_dot_source_never_carries_a_raw_control_character(self, events):
        """The DOT text holds no control character but the tabs and line ends of its own layout."""
        source = diagram(events, 2).source
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e\u200b\ufeff]", source)


class TestRichShowsHostileTextLiterally:
    def test_report_prints_every_name_literally_one_line_each(self, events):
        """Brackets are printed, not read as styles; control characters are escapes, not line breaks."""
        console = plain_console()
        print_report(events, console, full=True)
        text = console.file.getvalue()
        tree_lines = [line for line in text.splitlines() if "leaf  value" in line]
        assert len(tree_lines) == 2 * len(NAMES)  # one line per leaf per pass
        leaves = [e for e in events if e.kind == "node_created" and e.op == ""]
        for leaf in leaves:
            assert f"{visible(leaf.name, None)} #{leaf.node}  leaf  value" in text, leaf.name

    def test_findings_quote_names_literally(self, events):
        """The stale-gradient finding of pass 2 names every leaf exactly as written."""
        console = plain_console(width=400)
        print_report(events, console)
        nodes = [line for line in console.file.getvalue().splitlines() if line.startswith("│   nodes: ")]
        for name in NAMES:
            assert any(visible(name, None) in line for line in nodes), name

    def test_terminal_output_carries_only_richs_own_codes(self, events):
        """In a colour terminal, nothing but Rich's colour codes reaches the screen."""
        console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system="truecolor")
        sink = RichTreeSink(console, live=False)
        for event in events:
            sink.handle(event)
        sink.close()
        shown = ANSI.sub("", console.file.getvalue())
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u202e]", shown)
        assert "\\x1b[31mred\\x1b[0m\\x1b]8;;http://evil\\x07ring\\x00nul" in shown
        assert "[bold red]loud[/] w[i] [/]" in shown

    def test_live_view_draws_hostile_names_literally(self):
        """The live tree, redrawn at every step, shows the names as written too."""
        console = Console(file=io.StringIO(), width=200, height=60, force_terminal=True,
                          color_system="truecolor")
        hostile_trace([RichTreeSink(console, live=True)], passes=1)
        shown = ANSI.sub("", console.file.getvalue())
        assert "[link=file:///etc/passwd]click[/link]" in shown
        assert "line1\\nline2\\r\\ttabbed" in shown


class TestJsonLinesRoundTrip:
    @pytest.mark.parametrize("name", [*NAMES, "lone surrogate \ud800 here", "x" * 10_000, ""],
                             ids=[*HOSTILE, "lone surrogate", "10k characters", "empty"])
    def test_every_name_comes_back_exactly(self, tmp_path, name):
        """A name written to JSON Lines reads back as the same string, and so does every event."""
        path = tmp_path / "trace.jsonl"
        with trace(sinks=[JsonlSink(path)]) as t:
            x = Value(2.0, name=name)
            y = x * x
            y.backward()
        loaded = load_events(path)
        assert loaded == t.events
        assert loaded[0].name == name

    def test_header_metadata_comes_back_exactly(self, tmp_path):
        """Run metadata with hostile strings (a script path, argv) reads back unchanged."""
        path = tmp_path / "trace.jsonl"
        JsonlSink(path, metadata={"script": NAMES[0], "script_args": NAMES}).close()
        header = read_header(path)
        assert (header["script"], header["script_args"]) == (NAMES[0], NAMES)


# -- a trace file whose strings carry markup --------------------------------------------
MARKUP = "[bold red]boom[/] [/] [link=file:///etc/passwd]x[/link] <b>&lt;</b> \x1b[2J"


def markup_trace_file(folder: Path) -> Path:
    """A trace file as anyone could write it: every free-text field holds markup (a finding's
    severity is one of three words, which reading the file checks)."""
    lines = [{"kind": "header", "schema": "autodiff_trace.events", "version": 1, "argv": [MARKUP]}]
    def event(kind: str, **fields):
        lines.append({"kind": kind, "seq": len(lines) - 1, "t": 0.0, **fields})
    event("node_created", node=1, op="", value=2.0, parents=[], name="[x]" + MARKUP,
          site="<script>.py:1\n", function="[f]")
    event("node_created", node=2, op="<" + MARKUP + ">", value=4.0, parents=[1, 1],
          name="[y]" + MARKUP, site="[y].py:2", function=MARKUP)
    event("backward_started", pass_no=1, root=2, seed=1.0, order=[2, 1], grads_before=[0.0, 3.0])
    event("grad_accumulated", pass_no=1, target=2, fired_by=None, local_grad=None, contribution=1.0,
          grad_before=0.0, grad_after=1.0, replaced=False, site=None)
    event("backward_fn_fired", pass_no=1, node=2, grad=1.0, upstream=1.0)
    for before in (3.0, 5.0):
        event("grad_accumulated", pass_no=1, target=1, fired_by=2, local_grad=2.0, contribution=2.0,
              grad_before=before, grad_after=before + 2, replaced=False, site=MARKUP)
    event("diagnostic", pass_no=1, finding="[blink]odd[/blink]", severity="error",
          message=MARKUP, nodes=[1, 2], names=[MARKUP, "[/]"], site=MARKUP, hint=MARKUP)
    event("backward_finished", pass_no=1, root=2, duration=0.0, fired=1, accumulated=3)
    path = folder / "markup.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


class TestReplayingMarkup:
    def test_report_of_a_markup_trace_prints_it_literally(self, tmp_path):
        """Markup in names, ops, sites and findings is printed as text; no style, no error."""
        events = load_events(markup_trace_file(tmp_path))
        console = Console(file=io.StringIO(), width=400, force_terminal=True, color_system="truecolor")
        print_report(events, console)
        shown = ANSI.sub("", console.file.getvalue())
        literal = visible(MARKUP, None)
        assert f"[y]{literal} #2  <{literal}>  value 4" in shown
        assert f"[x]{literal} #1  leaf  value 2  grad 3 → 5 → 7" in shown
        assert f"ERROR [blink]odd[/blink]: {literal}" in shown
        assert f"nodes: {literal}, [/]" in shown
        assert "\x1b[2J" not in shown and "\x1b]8" not in console.file.getvalue()

    @pytest.mark.render
    def test_diagram_of_a_markup_trace_is_well_formed(self, tmp_path):
        """The same trace draws a well-formed SVG showing the names and the finding as text."""
        texts = svg_texts(diagram(load_events(markup_trace_file(tmp_path)), 1).pipe("svg"))
        assert visible("[y]" + MARKUP) in texts
        assert any(visible(MARKUP, 140) in t for t in texts)


# -- the command line, end to end --------------------------------------------------------
SCRIPT = f"""
from autodiff_trace import Value
names = {NAMES!r}
leaves = [Value(1.0 + i / 8, name=name) for i, name in enumerate(names)]
total = leaves[0]
for leaf in leaves[1:]:
    total = total * leaf
total.backward()
total.backward()
print("grad", leaves[0].grad)
"""


class TestCommandLineWithHostileNames:
    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, tmp_path_factory):
        folder = tmp_path_factory.mktemp("hostile_cli")
        script = folder / "hostile.py"
        script.write_text(SCRIPT, encoding="utf-8")
        out = folder / "out"
        result = CliRunner().invoke(app, ["--out", str(out), "--no-live", str(script)],
                                    env={"COLUMNS": "300"})
        return result, out

    @pytest.mark.render
    def test_every_svg_written_is_well_formed(self, run):
        """The pass diagrams and Rich's SVG export of the report all parse as XML."""
        result, out = run
        assert result.exit_code == 0, result.output
        written = sorted(p.name for p in out.glob("*.svg"))
        assert written == ["pass_1.svg", "pass_2.svg", "report.svg"]
        for path in out.glob("*.svg"):
            ET.fromstring(path.read_bytes())

    def test_report_text_and_findings_quote_names_literally(self, run):
        """report.txt, findings.txt and findings.json hold every name as written (escaped where control)."""
        _, out = run
        report = (out / "report.txt").read_text(encoding="utf-8")
        findings = (out / "findings.txt").read_text(encoding="utf-8")
        as_json = json.loads((out / "findings.json").read_text(encoding="utf-8"))
        for name in NAMES:
            assert f"{visible(name, None)} #" in report, name
        assert as_json and all(f["message"] in findings for f in as_json)  # no markup taken away
        assert set(NAMES) <= {n for f in as_json for n in f["names"]}

    def test_trace_round_trips_the_names(self, run):
        """trace.jsonl gives back every name exactly."""
        _, out = run
        names = [e.name for e in load_events(out / "trace.jsonl") if e.kind == "node_created" and e.op == ""]
        assert names == NAMES


# -- a user's engine whose op labels are hostile ------------------------------------------
HOSTILE_OPS = ["<lambda>", "{a|b}", "[bold]", 'x"y\\z', "two\nlines", "\x1b[2J", "&amp;", "]]>"]

USER_ENGINE = f"""
class V:
    def __init__(self, data, _children=(), _op=''):
        self.data, self.grad, self._prev, self._op = data, 0.0, tuple(_children), _op
        self._backward = lambda: None

    def combine(self, other, op):
        out = V(self.data * other.data, (self, other), op)
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

x = V(2.0)
out = x
for op in {HOSTILE_OPS!r}:
    out = out.combine(V(1.5), op)
topo, seen = [], set()
def build(v):
    if v not in seen:
        seen.add(v)
        for child in v._prev:
            build(child)
        topo.append(v)
build(out)
out.grad = 1.0
for v in reversed(topo):
    v._backward()
"""


class TestUserEngineWithHostileOps:
    @pytest.fixture(scope="class")
    @classmethod
    def traced(cls, tmp_path_factory):
        script = tmp_path_factory.mktemp("hostile_ops") / "engine.py"
        script.write_text(textwrap.dedent(USER_ENGINE), encoding="utf-8")
        with trace(analyzers=[Diagnoser(check_grads=True)]) as t, instrument():
            runpy.run_path(str(script), run_name="__main__")
        return t.events

    def test_ops_are_recorded_exactly(self, traced):
        """Each node's op is the engine's own label, unchanged."""
        ops = [e.op for e in traced if e.kind == "node_created" and e.op]
        assert ops == HOSTILE_OPS

    def test_report_shows_each_op_literally(self, traced):
        """The tree line of each result shows its op as written, escapes for control characters."""
        console = plain_console()
        print_report(traced, console)
        text = console.file.getvalue()
        for op in HOSTILE_OPS:
            assert re.search(rf"#\d+  {re.escape(visible(op, None))}  value ", text), op
        assert "no derivative rule is known for the op '<lambda>'" in text

    @pytest.mark.render
    def test_op_nodes_show_each_op_literally_in_the_svg(self, traced):
        """Each op node of the picture holds its label (cut at 8 characters), in a well-formed SVG."""
        texts = svg_texts(diagram(traced).pipe("svg"))
        for op in HOSTILE_OPS:
            assert visible(op, 8) in texts, op

    def test_json_lines_round_trip_the_ops(self, traced, tmp_path):
        """Writing the user engine's events to JSON Lines and back changes nothing."""
        path = tmp_path / "trace.jsonl"
        sink = JsonlSink(path)
        for event in traced:
            sink.handle(event)
        sink.close()
        assert load_events(path) == traced
        assert [to_dict(e) for e in load_events(path)] == [to_dict(e) for e in traced]


# -- a graph far larger than any picture ----------------------------------------------------
CHAIN = """
from autodiff_trace import Value
y = x = Value(0.5, name="x")
for i in range({ops}):
    y = y * 1.0000001 if i % 2 else y + 0.001
y.backward()
print("x.grad", round(x.grad, 6))
"""


class TestHugeGraphThroughTheCommandLine:
    def test_default_options_cap_the_picture_and_the_report(self, tmp_path):
        """A 20,000-op chain (40,001 nodes), default options: 300 nodes drawn, tree and ledger cut at 200 lines."""
        script = tmp_path / "chain.py"
        script.write_text(CHAIN.format(ops=20_000), encoding="utf-8")
        out = tmp_path / "out"
        result = CliRunner().invoke(app, ["--out", str(out), "--no-live", str(script)])
        assert result.exit_code == 0, result.output
        assert "x.grad 1.001001\n" in result.output  # 1.0000001 ** 10000
        dot = (out / "pass_1.dot").read_text(encoding="utf-8")
        assert "<b>showing 300 of 40,001 nodes</b>" in dot
        assert len(re.findall(r"^\tv\d+ \[", dot, flags=re.M)) == 300
        svg_texts((out / "pass_1.svg").read_bytes())
        report = (out / "report.txt").read_text(encoding="utf-8")
        assert "40,001 nodes reachable · 20,000 fired · 40,001 grad writes" in report
        assert re.search(r"^… \d+ more lines not shown \(showing \d+ of 40001; raise max_lines", report, re.M)
        assert "… 39801 more contributions not shown (at most 200 rows, 8 per node)" in report
        assert len(report.splitlines()) < 500

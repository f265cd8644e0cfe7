"""The Graphviz sink: what the DOT says about a backward pass, and how it is rendered."""

from __future__ import annotations

import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET

import pytest

from autodiff_trace import Value, diagram, trace
from autodiff_trace.core.events import Diagnostic
from autodiff_trace.core.text import visible
from autodiff_trace.sinks.dot import DotSink
from autodiff_trace.views.graph import render as rendering
from autodiff_trace.testing import notebook_sequence

from dot_reading import cells, flows, parse_dot
from streams import notebook_user_engine_events

SYSTEM_DOT = shutil.which("dot")
needs_system_dot = pytest.mark.skipif(
    SYSTEM_DOT is None, reason="no system Graphviz `dot` on PATH (apt-get install graphviz)")
render = pytest.mark.render


# -- the traces -------------------------------------------------------------------------
def seed_example():
    with trace() as t:
        x = Value(2.0, name="x")
        u = x + 2
        y = u ** 2
        y.backward()
    return t.events, x, u, y


def notebook_run():
    """The notebook's cells under our engine: the events, and the ids of x, y and pass 2's z."""
    events = notebook_sequence()
    ids = {e.name: e.node for e in events if e.kind == "node_created"}  # the later z wins
    return events, ids["x"], ids["y"], ids["z"]


def outside_graph_stream(findings: bool = True) -> list:
    """The notebook's own engine: its module-global ``order`` still holds pass 1's ``z``,
    whose backward function fires again in pass 2 and adds 2 more to x; then, with
    ``findings``, the error finding that says so."""
    events = notebook_user_engine_events()
    if findings:
        events.append(Diagnostic(len(events), 0.0, 2, "fired_outside_graph", "error",
                                 "z (pass 1) fired in pass 2: +2 into x", (3, 1), ("z", "x"), None,
                                 "build the topological order inside backward()"))
    return events


def chain(n: int):
    with trace() as t:
        s = Value(0.0, name="s0")
        for i in range(n):
            s = s * 1.0 + Value(float(i), name=f"w{i}")
        s.backward()
    return t.events


# -- the picture ------------------------------------------------------------------------
class TestSeedExample:
    """y = (x + 2) ** 2 at x = 2, drawn from our engine's events."""

    def test_value_nodes_show_firing_number_name_data_and_grad(self):
        """Each value node is a table of firing number, name, data and grad."""
        events, x, u, y = seed_example()
        nodes, _, _ = parse_dot(diagram(events, 1).source)
        assert cells(nodes[f"v{x.id}"]["label"]) == ["x", "data 2", "grad 8"]
        assert cells(nodes[f"v{u.id}"]["label"]) == ["#2", "u", "data 4", "grad 8"]
        assert cells(nodes[f"v{y.id}"]["label"]) == ["#1", "y", "data 16", "grad 1"]

    def test_op_nodes_sit_between_parents_and_child(self):
        """An op node carries the op's symbol and points at the node it makes."""
        events, x, u, y = seed_example()
        nodes, edges, _ = parse_dot(diagram(events, 1).source)
        assert (nodes[f"o{u.id}"]["label"], nodes[f"o{y.id}"]["label"]) == ("+", "**2")
        assert flows(edges, f"o{u.id}", f"v{u.id}") == [""]
        assert flows(edges, f"o{y.id}", f"v{y.id}") == [""]

    def test_edges_carry_the_gradient_that_flowed_back(self):
        """Each grad write labels the edge from the input to the consumer's op."""
        events, x, u, y = seed_example()
        _, edges, _ = parse_dot(diagram(events, 1).source)
        assert flows(edges, f"v{x.id}", f"o{u.id}") == ["+8"]
        assert flows(edges, f"v{u.id}", f"o{y.id}") == ["+8"]

    def test_wrapped_numbers_are_drawn_small(self):
        """The constant 2 of ``x + 2`` is a small box holding just its value."""
        events, x, u, y = seed_example()
        nodes, _, _ = parse_dot(diagram(events, 1).source)
        const = nodes[f"v{x.id + 1}"]
        assert (const["label"], const["shape"], const["fontsize"]) == ("2", "box", "9")


class TestNotebookSequence:
    """x = 5, y = 4; z = add(x, x); backward; z = mul(add(x, y), add(x, y)); backward."""

    def test_an_input_used_twice_gets_one_edge_per_use(self):
        """Pass 1: add(x, x) sends +1 along each of its two edges from x."""
        events, x, y, z = notebook_run()
        _, edges, _ = parse_dot(diagram(events, 1).source)
        first_z = next(e.node for e in events if e.kind == "node_created" and e.op == "add")
        assert flows(edges, f"v{x}", f"o{first_z}") == ["+1", "+1"]

    def test_stale_gradient_is_shown_with_its_origin_and_the_sum(self):
        """Pass 2: x began at 2 (left by pass 1), and its grad is summed as 2 + 9 + 9."""
        events, x, y, z = notebook_run()
        nodes, _, _ = parse_dot(diagram(events, 2).source)
        assert cells(nodes[f"v{x}"]["label"]) == [
            "x", "data 5", "grad 20", "stale 2 from pass 1", "20 = 2 stale + 9 + 9"]
        assert cells(nodes[f"v{y}"]["label"]) == ["y", "data 4", "grad 18", "18 = 9 + 9"]

    def test_firing_numbers_follow_the_events(self):
        """The #n of each node is its place among the pass's backward_fn_fired events."""
        events, x, y, z = notebook_run()
        fired = [e.node for e in events if e.kind == "backward_fn_fired" and e.pass_no == 2]
        nodes, _, _ = parse_dot(diagram(events, 2).source)
        assert [cells(nodes[f"v{n}"]["label"])[0] for n in fired] == ["#1", "#2", "#3"]

    def test_legend_counts_firings_and_writes(self):
        """The title line names the pass, its output and what happened."""
        events, x, y, z = notebook_run()
        source = diagram(events, 2).source
        head = cells(re.search(r"^\tlabel=(<.*>)$", source, re.M).group(1))[0]
        assert head == f"backward pass 2 from z #{z}: 3 backward functions fired, 7 grad writes"


class TestOutsideTheGraph:
    """A node the root cannot reach fires in pass 2 (the notebook's global order list)."""

    def test_the_node_is_drawn_in_a_cluster_of_its_own(self):
        """Pass 1's z and its op sit in the 'outside' cluster, numbered #4."""
        nodes, _, clusters = parse_dot(diagram(outside_graph_stream(), 2).source)
        assert clusters == {"cluster_outside": ["v3", "o3"]}
        assert cells(nodes["v3"]["label"]) == ["#4", "z #3", "data 10", "grad 1",
                                              "stale 1 from pass 1"]

    def test_its_contribution_to_x_is_drawn_and_summed(self):
        """Its two +1 writes label the edges from x, and x's sum shows them."""
        nodes, edges, _ = parse_dot(diagram(outside_graph_stream(), 2).source)
        assert flows(edges, "v1", "o3") == ["+1", "+1"]
        assert cells(nodes["v1"]["label"])[-1] == "22 = 2 stale + 9 + 9 + 1 + 1"

    def test_nodes_named_by_a_finding_are_outlined_with_a_tooltip(self):
        """The error finding outlines x in red and puts its message in x's tooltip."""
        nodes, _, _ = parse_dot(diagram(outside_graph_stream(), 2).source)
        table = ET.fromstring(nodes["v1"]["label"][1:-1])
        assert (table.get("color"), table.get("border")) == ("#d62728", "3")
        assert "[error] fired_outside_graph: z (pass 1) fired in pass 2: +2 into x" in nodes["v1"]["tooltip"]

    def test_the_legend_lists_the_finding(self):
        """The legend has a row with the finding's name, severity and message."""
        source = diagram(outside_graph_stream(), 2).source
        legend = cells(re.search(r"^\tlabel=(<.*>)$", source, re.M).group(1))
        assert "fired_outside_graph (error): z (pass 1) fired in pass 2: +2 into x" in legend


class TestFrames:
    """``step=k`` draws the pass as it stood after k firings."""

    def test_later_writes_keep_their_place_but_are_invisible(self):
        """After firing 1 the edges into the adds hold invisible labels; the first is blue."""
        _, edges, _ = parse_dot(diagram(outside_graph_stream(), 2, step=1).source)
        assert [a.get("fontcolor") for t, h, a in edges if (t, h) == ("v1", "o5")] == ["transparent"]
        assert [a.get("fontcolor") for t, h, a in edges if (t, h) == ("v4", "o6")] == ["#1f6fd1"]

    def test_grads_are_those_of_that_moment(self):
        """After 3 firings x holds 20, and pass 1's z has not fired yet."""
        nodes, _, _ = parse_dot(diagram(outside_graph_stream(), 2, step=3).source)
        assert cells(nodes["v1"]["label"])[:3] == ["x", "data 5", "grad 20"]
        assert 'color="white"' in nodes["v3"]["label"]


class TestEscaping:
    """Hostile names neither break the DOT nor inject markup."""

    HOSTILE = ['a{b}|c<d>', 'say "hi"\\', "two\nlines", "<b>bold</b>", "&amp; \\N \\l", "\x1b[31m"]

    @pytest.mark.parametrize("name", HOSTILE)
    def test_name_is_shown_literally_in_the_label(self, name):
        """The label cell holds the name as XML text, control characters made visible and
        backslashes doubled (Graphviz halves them)."""
        with trace() as t:
            x = Value(1.0, name=name)
            (x * 3).backward()
        nodes, _, _ = parse_dot(diagram(t.events, 1).source)
        assert cells(nodes[f"v{x.id}"]["label"])[0] == visible(name).replace("\\", "\\\\")

    @render
    @pytest.mark.parametrize("name", HOSTILE)
    def test_svg_shows_the_name_and_no_injected_markup(self, name):
        """The SVG parses, its text has the name, its tooltip the name, and no <b> element."""
        with trace() as t:
            x = Value(1.0, name=name)
            (x * 3).backward()
        root = ET.fromstring(diagram(t.events, 1).pipe("svg"))
        texts = ["".join(e.itertext()) for e in root.iter("{http://www.w3.org/2000/svg}text")]
        titles = [a.get("{http://www.w3.org/1999/xlink}title") or ""
                  for a in root.iter("{http://www.w3.org/2000/svg}a")]
        assert visible(name) in texts
        assert any(title.startswith(visible(name, 300) + ": leaf") for title in titles)
        assert not list(root.iter("{http://www.w3.org/2000/svg}b")) and not list(root.iter("b"))


class TestNodeCap:
    """Big graphs are folded before Graphviz sees them."""

    def test_only_max_nodes_value_nodes_are_drawn(self):
        """A 401-node pass with max_nodes=40 draws 40 value nodes and folds the rest."""
        events = chain(100)
        picture = diagram(events, 1, max_nodes=40)
        nodes, _, _ = parse_dot(picture.source)
        values = [n for n in nodes if n.startswith("v")]
        folded = [int(re.match(r"([\d,]+) nodes? folded", a["label"]).group(1).replace(",", ""))
                  for n, a in nodes.items() if n.startswith("g")]
        assert (len(values), picture.total, sum(folded)) == (40, 401, 401 - 40)

    def test_the_diagram_says_it_was_folded(self):
        """The legend says how many nodes are shown of how many."""
        source = diagram(chain(100), 1, max_nodes=40).source
        assert "showing 40 of 401 nodes</b>: the other 361 are folded into 1 dashed group " in source

    def test_output_and_findings_are_kept(self):
        """The root and a node named by a finding survive the cap."""
        events = chain(100)
        leaf = next(e.node for e in events if e.kind == "node_created" and e.name == "w3")
        events.append(Diagnostic(10**6, 0.0, 1, "odd", "warning", "look here", (leaf,), ("w3",), None, ""))
        nodes, _, _ = parse_dot(diagram(events, 1, max_nodes=10).source)
        root = next(e.root for e in events if e.kind == "backward_started")
        assert {f"v{root}", f"v{leaf}"} <= set(nodes)


class TestDiagramInput:
    """diagram() says clearly what it cannot draw."""

    def test_unknown_pass(self):
        """Asking for a pass the trace lacks names the passes it has."""
        with pytest.raises(ValueError, match=r"pass 7 is not in the trace \(its passes: 1, 2\)"):
            diagram(outside_graph_stream(), 7)

    def test_no_pass_at_all(self):
        """A trace without backward passes is refused with the fix."""
        with pytest.raises(ValueError, match="no backward pass"):
            diagram(outside_graph_stream()[:3], None)

    def test_not_events(self):
        """Something that is not a trace is refused by type."""
        with pytest.raises(TypeError, match="not int"):
            diagram(42, 1)


# -- the sink -------------------------------------------------------------------------
class TestDotSink:
    """One diagram per pass, written when the pass ends."""

    def test_each_pass_is_written_when_it_finishes(self, tmp_path):
        """pass_1.dot exists as soon as pass 1's backward_finished is handled."""
        sink = DotSink(tmp_path, formats=())
        events = outside_graph_stream(findings=False)
        for event in events[:9]:
            sink.handle(event)
        assert sink.written == [tmp_path / "pass_1.dot"]
        for event in events[9:]:
            sink.handle(event)
        sink.close()
        assert sink.written == [tmp_path / "pass_1.dot", tmp_path / "pass_2.dot"]

    def test_findings_after_a_pass_redraw_it(self, tmp_path):
        """A diagnostic arriving after pass 2 ended is in pass_2.dot after close."""
        sink = DotSink(tmp_path, formats=())
        for event in outside_graph_stream():
            sink.handle(event)
        sink.close()
        assert "fired_outside_graph" in (tmp_path / "pass_2.dot").read_text()

    def test_a_chosen_pass_only(self, tmp_path):
        """pass_no=2 writes pass 2 and nothing else."""
        sink = DotSink(tmp_path, formats=(), pass_no=2)
        for event in outside_graph_stream():
            sink.handle(event)
        sink.close()
        assert sink.written == [tmp_path / "pass_2.dot"]

    def test_unknown_format_is_refused(self, tmp_path):
        """formats=('gif',) fails at once, naming the formats there are."""
        with pytest.raises(ValueError, match="cannot write format 'gif'; choose from svg, png, pdf"):
            DotSink(tmp_path, formats=("gif",))

    def test_no_renderer_leaves_the_dot_and_says_how(self, tmp_path):
        """A missing renderer writes pass_1.dot and one line with the command to render it."""
        said = []
        sink = DotSink(tmp_path, renderer=str(tmp_path / "no-such-dot"), report=said.append)
        for event in outside_graph_stream(findings=False):
            sink.handle(event)
        sink.close()
        assert sink.written == [tmp_path / "pass_1.dot", tmp_path / "pass_2.dot"]
        assert len(said) == 1 and "\n" not in said[0]
        assert said[0].startswith("could not write pass_1.svg: renderer ")
        assert said[0].endswith(f"render it with `graphviz-pure -Tsvg {(tmp_path / 'pass_1.dot').as_posix()}"
                                f" -o {(tmp_path / 'pass_1.svg').as_posix()}`")

    @render
    def test_svg_and_frames_are_written(self, tmp_path):
        """formats=('svg',) with frames writes pass_N.svg and one frame per firing."""
        sink = DotSink(tmp_path, frames=True)
        for event in outside_graph_stream():
            sink.handle(event)
        sink.close()
        names = sorted(p.relative_to(tmp_path).as_posix() for p in sink.written)
        assert names == ["pass_1.dot", "pass_1.svg", "pass_1/frame_001.svg", "pass_2.dot",
                         "pass_2.svg", "pass_2/frame_001.svg", "pass_2/frame_002.svg",
                         "pass_2/frame_003.svg", "pass_2/frame_004.svg"]


# -- rendering --------------------------------------------------------------------------
def _svg_nodes(svg: bytes) -> int:
    root = ET.fromstring(svg)
    return sum(1 for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node")


@render
class TestRendering:
    """graphviz-pure by default, a system dot on request, always bounded."""

    def test_svg_from_graphviz_pure_has_one_group_per_node(self):
        """The default renderer's SVG parses and has a node group per DOT node."""
        picture = diagram(outside_graph_stream(), 2)
        nodes, _, _ = parse_dot(picture.source)
        assert rendering.find_renderer().name == "graphviz-pure"
        assert _svg_nodes(picture.pipe("svg")) == len(nodes) == 10

    @needs_system_dot
    def test_svg_from_system_dot_has_one_group_per_node(self):
        """renderer='dot' runs the system Graphviz and gives the same node groups."""
        picture = diagram(outside_graph_stream(), 2)
        assert rendering.find_renderer("dot").path == SYSTEM_DOT
        assert _svg_nodes(picture.pipe("svg", renderer="dot")) == 10

    @needs_system_dot
    def test_environment_variable_names_the_binary(self, monkeypatch):
        """AUTODIFF_TRACE_DOT picks the program when no renderer is given."""
        monkeypatch.setenv("AUTODIFF_TRACE_DOT", SYSTEM_DOT)
        assert rendering.find_renderer() == rendering.Renderer(SYSTEM_DOT, SYSTEM_DOT)

    @needs_system_dot
    def test_pdf_goes_to_the_system_dot(self):
        """PDF, which graphviz-pure lacks, is rendered by the system dot."""
        assert diagram(outside_graph_stream(), 2).pipe("pdf").startswith(b"%PDF")

    def test_pdf_from_graphviz_pure_is_refused_with_the_fix(self):
        """Asking graphviz-pure for PDF says to install Graphviz."""
        with pytest.raises(rendering.RenderError, match="graphviz-pure cannot write PDF; install Graphviz"):
            rendering.render("digraph { a }", "pdf", renderer="graphviz-pure")

    def test_png_size_is_bounded(self):
        """A 300-node PNG is scaled to max_png_side pixels on its longest side."""
        png = diagram(chain(150), 1, max_nodes=300).pipe("png", max_png_side=800)
        assert max(rendering._png_size(png)) <= 801

    def test_a_slow_renderer_is_stopped(self, tmp_path):
        """A renderer that hangs is stopped at the timeout with a one-line message."""
        slow = tmp_path / "slow-dot"
        slow.write_text("#!/bin/sh\nsleep 10\n")
        slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
        if os.name == "nt":
            pytest.skip("the stand-in renderer is a shell script")
        with pytest.raises(rendering.RenderError, match=r"slow-dot did not finish within 0.3 s; draw fewer nodes"):
            rendering.render("digraph { a }", renderer=str(slow), timeout=0.3)

    def test_broken_dot_source_gives_the_renderers_first_line(self):
        """A syntax error comes back as one line from the renderer."""
        with pytest.raises(rendering.RenderError, match=r"graphviz-pure could not render SVG: .*syntax error"):
            rendering.render("digraph { a -> ")

    def test_jupyter_gets_svg(self):
        """The diagram's mimebundle holds the SVG text."""
        bundle = diagram(outside_graph_stream(), 2)._repr_mimebundle_()
        assert list(bundle) == ["image/svg+xml"] and bundle["image/svg+xml"].startswith("<?xml")

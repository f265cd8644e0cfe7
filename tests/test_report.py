"""The run's terminal report leads with the answer: the findings (one block per cause,
most severe first), one line per pass, then the tree and ledger of the few passes with
findings that are short enough to read; everything else is one line or a pointer."""

import io
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from autodiff_trace import Diagnoser, engine
from autodiff_trace.core.events import Diagnostic
from autodiff_trace.sinks.rich_tree import RichTreeSink
from autodiff_trace.testing import notebook_sequence
from autodiff_trace.views.terminal.pass_table import PassRow, PassTable
from autodiff_trace.views.terminal.report import DETAIL_LINES, DETAIL_PASSES, print_report

from streams import Stream, notebook_user_engine_events

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_ids(monkeypatch):
    """Number nodes from 1 in every test, so default names (``add#4``) are stable."""
    monkeypatch.setattr(engine.value, "_numbering", engine.value.ids_from(1))


def recording(width=60):
    return Console(record=True, width=width, color_system=None, file=io.StringIO())


def report(events, width=60, **options) -> str:
    console = recording(width)
    print_report(events, console, **options)
    return console.export_text()


def finding(events, pass_no, kind, severity, message, site, nodes=(1,), names=("x",)):
    """Append a ``diagnostic`` event as an analyzer's finding would arrive."""
    n = len(events)
    events.append(Diagnostic(n, n * 1e-6, pass_no, kind, severity, message, nodes, names, site,
                             f"fix {kind}"))
    return events


def notebook_with_findings():
    """The seed notebook's two passes, with a warning then an error given in pass 2."""
    events = notebook_user_engine_events()
    finding(events, 2, "stale_gradient", "warning", "x.grad was 2 when pass 2 began", "notebook.py:7")
    finding(events, 2, "fired_outside_graph", "error", "z #3 fired in pass 2", "notebook.py:5",
            (3, 1), ("z #3", "x"))
    return events


def chain_passes(passes, length=3, findings_in=()):
    """``passes`` backward passes over a chain of ``length`` adds from one leaf, each a new
    graph; pass numbers in ``findings_in`` get a stale-gradient finding."""
    s = Stream()
    next_id = itertools.count(1)
    for pass_no in range(1, passes + 1):
        leaf = next(next_id)
        s.node(leaf, "w", 1.0)
        node = leaf
        for _ in range(length):
            parent, node = node, next(next_id)
            s.node(node, "h", 1.0, (parent,), "add")
        order = tuple(range(node, leaf - 1, -1))
        s.start(root=node, order=order)
        s.write(node, None, 1.0)
        for child, parent in zip(order, order[1:]):
            s.fire(child)
            s.write(parent, child, 1.0, local=1.0)
        s.finish(node)
        if pass_no in findings_in:
            finding(s.events, pass_no, "stale_gradient", "warning", "w held a grad",
                    "train.py:9", (leaf,), ("w",))
    return s.events


NOTEBOOK_OPENING = """\
╭─ findings · 1 error, 1 warning ──────────────────────────╮
│ ERROR fired_outside_graph: z #3 fired in pass 2          │
│   in backward pass 2                                     │
│   nodes: z #3, x                                         │
│   at notebook.py:5                                       │
│   fix: fix fired_outside_graph                           │
│                                                          │
│ WARNING stale_gradient: x.grad was 2 when pass 2 began   │
│   in backward pass 2                                     │
│   nodes: x                                               │
│   at notebook.py:7                                       │
│   fix: fix stale_gradient                                │
╰──────────────────────────────────────────────────────────╯

pass   root   nodes   fired   writes   findings             
────────────────────────────────────────────────────────────
   1   z #3       2       1        3   none                 
   2   z #6       5       4        9   fired_outside_graph, 
                                       stale_gradient       

──────────────── backward pass 2 from z #6 ─────────────────
5 nodes reachable · 4 fired · 9 grad writes
z #6  mul  value 81  grad 0 → 1  fired 1st
├── add#4  add  value 9  grad 0 → 9  fired 3rd
│   ├── x #1  leaf  value 5  grad 2 → 11 → 20 → 21 → 22  ⚠ 
│   │   stale
│   └── y #2  leaf  value 4  grad 0 → 9 → 18
└── add#5  add  value 9  grad 0 → 9  fired 2nd
    ├── ↩ x #1
    └── ↩ y #2
⚠ fired outside this pass's graph: z #6 cannot reach these 
nodes, yet their backward functions ran
┗━━ z #3  add  value 10  grad 1  ⚠ stale  fired 4th  made at
    notebook.py:3
    ┣━━ added 1 to x #1  (local 1)  grad 20 → 21
    ┗━━ added 1 to x #1  (local 1)  grad 21 → 22

run with --full-report to print every pass's tree and ledger
"""


class TestFindingsFirst:
    def test_report_is_exactly_findings_then_passes_then_the_pass_with_findings(self):
        """The notebook's report: the causes, error first; a line per pass; pass 2's tree only."""
        assert report(notebook_with_findings(), ledger=False) == NOTEBOOK_OPENING

    def test_the_findings_come_before_any_tree(self):
        """The first line of the report is the findings panel's top border."""
        text = report(notebook_with_findings())
        assert text.splitlines()[0].startswith("╭─ findings")
        assert text.index("WARNING stale_gradient") < text.index("pass   root") < text.index("z #6  mul")

    def test_a_cause_reported_in_several_passes_is_one_block(self):
        """The same kind at the same line in passes 2 and 3 is one block naming both passes."""
        text = report(chain_passes(3, findings_in=(2, 3)))
        assert text.count("WARNING stale_gradient") == 1
        assert ("│ WARNING stale_gradient: w held a grad" in text
                and "│   in backward passes 2 and 3 " in text)

    def test_a_clean_run_says_so_in_one_line(self):
        """No findings: one line says so, then the passes' lines; no tree is printed."""
        lines = report(chain_passes(2)).splitlines()
        assert lines[0] == "no findings in 2 backward passes"
        assert not any("backward pass 1 from" in line for line in lines)


class TestOneLinePerPass:
    def test_every_pass_has_its_line_with_root_sizes_and_findings(self):
        """Each pass's line gives its number, root, nodes, fired, writes and finding kinds."""
        text = report(chain_passes(3, findings_in=(2,)))
        assert "   1   h #4        4       3        4   none          " in text
        assert "   2   h #8        4       3        4   stale_gradient" in text
        assert "   3   h #12       4       3        4   none          " in text

    def test_a_pass_cut_short_says_so(self):
        """A pass that never finished is marked cut short in its line, and shown in full."""
        events = chain_passes(1)[:-1]
        text = report(events)
        assert "cut short" in section_line(text, "   1   h #4")
        assert "h #4  add  value 1" in text

    def test_many_quiet_passes_fold_into_one_line(self):
        """Over the row limit, a run of passes without findings becomes one counted line."""
        rows = [PassRow(n, "loss", 10, 9, 12, True) for n in range(1, 51)]
        console = recording(80)
        console.print(PassTable(rows, {25: [("stale_gradient", "warning")]}, max_rows=10))
        lines = console.export_text().splitlines()
        assert lines[2:] == [
            " 1–24   24 passes      10       9       12   none          ",
            "   25   loss           10       9       12   stale_gradient",
            "26–50   25 passes      10       9       12   none          ",
        ]


def section_line(text, start):
    return next(line for line in text.splitlines() if line.startswith(start))


class TestWhichPassesInFull:
    def test_a_pass_without_findings_gets_only_its_line(self):
        """Pass 1 of the notebook has no findings: its tree and ledger are not printed."""
        text = report(notebook_with_findings())
        assert "backward pass 1 from" not in text and "ledger of pass 1" not in text
        assert "ledger of pass 2" in text

    def test_a_single_pass_is_always_shown(self):
        """The worked example ``y = (x+2)^2`` has one clean pass: its tree and ledger show."""
        from autodiff_trace import Value, trace

        with trace() as t:
            x = Value(2.0, name="x")
            y = (x + 2) ** 2
            y.backward()
        text = report(t.events)
        assert text.startswith("no findings in 1 backward pass\n")
        assert "    ├── x #1  leaf  value 2  grad 0 → 8" in text
        assert "ledger of pass 1: 4 contributions to 4 nodes" in text

    def test_a_pass_too_long_to_read_points_at_its_diagram(self):
        """A pass with findings whose tree is over the cap is one line naming its SVG."""
        text = report(chain_passes(2, length=DETAIL_LINES + 5, findings_in=(2,)), width=200)
        assert ("backward pass 2 from h #172: its tree has 86 lines, too many to print here; see "
                "its diagram pass_2.svg, or print it alone with `autodiff-trace render trace.jsonl "
                "--pass 2`") in text
        assert "h #172  add" not in text

    def test_at_most_a_few_passes_with_findings_are_printed(self):
        """Of six passes with findings, the first three are printed and the rest counted."""
        text = report(chain_passes(6, findings_in=range(1, 7)))
        printed = [n for n in range(1, 7) if f"backward pass {n} from" in text]
        assert printed == list(range(1, DETAIL_PASSES + 1))
        assert "… 3 more passes with findings not shown here (at most 3)" in text

    def test_the_full_report_prints_every_pass(self):
        """With ``full=True`` every pass's tree and ledger are printed, after the findings."""
        text = report(chain_passes(4, findings_in=(2,)), full=True)
        assert all(f"ledger of pass {n}:" in text for n in range(1, 5))
        assert "--full-report" not in text


class TestSinkAndReplay:
    def test_the_sink_prints_what_the_replay_prints(self):
        """Traced with a Diagnoser, the sink's report equals print_report of the same events."""
        console = recording(80)
        events = notebook_sequence([RichTreeSink(console)], [Diagnoser()])
        assert console.export_text() == report(events, width=80)

    def test_the_sink_prints_once_at_the_end(self):
        """Nothing is printed while the passes run; the report comes when the trace closes."""
        console = recording(80)
        sink = RichTreeSink(console)
        events = chain_passes(2, findings_in=(2,))
        for event in events:
            sink.handle(event)
        assert console.export_text(clear=False) == ""
        sink.close()
        assert console.export_text().startswith("╭─ findings · 1 warning")

    def test_quiet_passes_are_let_go_as_the_run_goes(self):
        """Alone, the sink keeps no pass it will not print: memory stays small in long loops."""
        sink = RichTreeSink(recording())
        for event in chain_passes(30, findings_in=(5,)):
            sink.handle(event)
        assert [p.pass_no for p in sink.model.passes] == [5, 30]


def run_example(name, tmp_path, *options):
    """The example's default terminal report, run as a user would (not a terminal)."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("trace-backward")), "--no-live", *options,
         "--out", str(tmp_path / name), f"examples/{name}.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


class TestExamples:
    def test_forgot_zero_grad_fits_in_150_lines(self, tmp_path):
        """The 138-node, 6-pass example opens with its one stale-gradient cause, in 150 lines."""
        out = run_example("forgot_zero_grad", tmp_path)
        assert len(out.splitlines()) <= 150
        report_lines = out.splitlines()[2:]  # after the script's own two prints
        assert report_lines[0].startswith("╭─ findings")
        assert sum("WARNING stale_gradient" in line for line in out.splitlines()) == 1

    def test_the_notebook_story_is_told_at_the_top(self, tmp_path):
        """stale 2, z #3 fired outside at ``order``, 22 not 18: findings, then pass 2 in full."""
        out = run_example("notebook_bug", tmp_path)
        assert len(out.splitlines()) <= 80
        assert out.index("ERROR fired_outside_graph") < out.index("pass   root")
        assert "polluted_grad" in out and "x.grad would be 18" in out.replace("│\n│ ", " ")
        assert "x #1  leaf  value 5  grad 2 → 11 → 20 → 21 → 22  ⚠ stale" in out
        assert "┣━━ added 1 to x #1  grad 20 → 21" in out
        assert "ledger of pass 2" in out and "ledger of pass 1" not in out

    def test_the_full_report_option_prints_every_pass(self, tmp_path):
        """``--full-report`` brings back pass 1's tree and ledger."""
        out = run_example("notebook_bug", tmp_path, "--full-report")
        assert "ledger of pass 1" in out and "ledger of pass 2" in out

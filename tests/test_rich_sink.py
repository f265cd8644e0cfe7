"""The Rich terminal sink: live tree, the pass report (tree and ledger), findings, line cap.

The layout of the whole run's report (findings first, one line per pass, which passes
are printed in full) is specified in test_report.py; here most reports are full ones.
"""

import io
import random
import re
import time

import pytest
from rich.console import Console

from autodiff_trace import Value, engine, trace
from autodiff_trace.core.events import Finding
from autodiff_trace.core.model import TraceModel
from autodiff_trace.sinks.rich_tree import RichTreeSink
from autodiff_trace.views.terminal.ledger import Ledger
from autodiff_trace.views.terminal.report import LivePassView, PassReport, print_report
from autodiff_trace.testing import notebook_sequence

from streams import notebook_user_engine_events

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def fresh_ids(monkeypatch):
    """Number nodes from 1 in every test, so default names (``add#4``) are stable."""
    monkeypatch.setattr(engine.value, "_numbering", engine.value.ids_from(1))


def plain_console(width=80):
    """A console writing to a string, as when output is piped: not a terminal."""
    return Console(file=io.StringIO(), width=width)


def terminal_console(width=80, height=40):
    """A console that believes it is a colour terminal."""
    return Console(file=io.StringIO(), width=width, height=height, force_terminal=True,
                   color_system="standard")


def report_of(events, width=80, **options):
    """The report of ``events``, every pass in full unless ``full=False`` is given."""
    console = plain_console(width)
    options.setdefault("full", True)
    print_report(events, console, **options)
    return console.file.getvalue()


def section(text, start, end=None):
    """The lines of ``text`` from the first line containing ``start`` up to ``end``."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next((i for i in range(first + 1, len(lines)) if end and end in lines[i]), len(lines))
    return "\n".join(lines[first:last]) + "\n"


class FindingOnFinish:
    """An analyzer that reports one finding of a kind no sink knows, after each pass."""

    def handle(self, event):
        if event.kind == "backward_finished":
            return [Finding(event.pass_no, "made_up_kind", "warning",
                            f"pass {event.pass_no} looked at [bold]w[i][/bold]", (1,),
                            ("w[i]",), "script.py:7", "rename [i] to (i)")]
        return None

    def close(self):
        return [Finding(0, "summary", "info", "2 passes seen", (), (), None, "")]


NOTEBOOK_REPORT = """\
no findings in 2 backward passes

pass   root   nodes   fired   writes   findings
───────────────────────────────────────────────
   1   z #3       2       1        3   none    
   2   z #6       5       3        7   none    

────────────────────────── backward pass 1 from z #3 ───────────────────────────
2 nodes reachable · 1 fired · 3 grad writes
z #3  add  value 10  grad 0 → 1  fired 1st
├── x #1  leaf  value 5  grad 0 → 1 → 2
└── ↩ x #1

ledger of pass 1: 3 contributions to 2 nodes (local derivative × upstream grad =
added)
  branching (2 or more contributions): x #1
node   from   contribution    grad   note         
──────────────────────────────────────────────────
z #3   seed             +1   0 → 1                
x #1   z #3     1 × 1 = +1   0 → 1   branching (2)
       z #3     1 × 1 = +1   1 → 2                

────────────────────────── backward pass 2 from z #6 ───────────────────────────
5 nodes reachable · 3 fired · 7 grad writes
z #6  mul  value 81  grad 0 → 1  fired 1st
├── add#4  add  value 9  grad 0 → 9  fired 3rd
│   ├── x #1  leaf  value 5  grad 2 → 11 → 20  ⚠ stale
│   └── y #2  leaf  value 4  grad 0 → 9 → 18
└── add#5  add  value 9  grad 0 → 9  fired 2nd
    ├── ↩ x #1
    └── ↩ y #2

ledger of pass 2: 7 contributions to 5 nodes (local derivative × upstream grad =
added)
  branching (2 or more contributions): y #2, x #1
  stale (non-zero grad before the pass): x #1
node    from    contribution      grad   note                         
──────────────────────────────────────────────────────────────────────
z #6    seed              +1     0 → 1                                
add#5   z #6      9 × 1 = +9     0 → 9                                
add#4   z #6      9 × 1 = +9     0 → 9                                
y #2    add#5     1 × 9 = +9     0 → 9   branching (2)                
        add#4     1 × 9 = +9    9 → 18                                
x #1    add#5     1 × 9 = +9    2 → 11   stale (held 2); branching (2)
        add#4     1 × 9 = +9   11 → 20                                
"""


class TestNotebookUnderOurEngine:
    def test_report_is_exactly_the_expected_text(self):
        """Piped, the notebook's full report prints as this text, once."""
        console = plain_console()
        notebook_sequence([RichTreeSink(console, full=True)])
        assert console.file.getvalue() == NOTEBOOK_REPORT

    def test_x_receives_two_contributions_in_each_pass(self):
        """The ledger lists both of x's contributions in pass 1 and both in pass 2."""
        out = report_of(notebook_sequence())
        pass_one = section(out, "ledger of pass 1", "backward pass 2")
        pass_two = section(out, "ledger of pass 2")
        assert "x #1   z #3     1 × 1 = +1   0 → 1   branching (2)" in pass_one
        assert "       z #3     1 × 1 = +1   1 → 2" in pass_one
        assert "x #1    add#5     1 × 9 = +9    2 → 11   stale (held 2); branching (2)" in pass_two
        assert "        add#4     1 × 9 = +9   11 → 20" in pass_two

    def test_second_pass_starts_from_the_stale_grad(self):
        """In pass 2 the tree shows x starting at 2, left by pass 1, marked stale."""
        out = report_of(notebook_sequence())
        assert "│   ├── x #1  leaf  value 5  grad 2 → 11 → 20  ⚠ stale" in out
        assert "  stale (non-zero grad before the pass): x #1" in out


class TestSharedNodes:
    def test_node_reached_again_is_a_reference(self):
        """``z = x + x`` draws x once in full and then as ``↩ x #1``."""
        out = report_of(notebook_sequence(), ledger=False)
        assert section(out, "z #3  add", "backward pass 2") == (
            "z #3  add  value 10  grad 0 → 1  fired 1st\n"
            "├── x #1  leaf  value 5  grad 0 → 1 → 2\n"
            "└── ↩ x #1\n"
            "\n")

    def test_tree_grows_with_edges_not_paths(self):
        """Thirty doublings have 2**30 root-to-leaf paths; the tree has 61 lines."""
        with trace() as t:
            v = Value(1.0, name="v0")
            for _ in range(30):
                v = v + v
            v.backward()
        out = report_of(t.events, width=400, ledger=False)
        tree = section(out, "v #31  add").splitlines()
        assert len(tree) == 61
        assert sum("↩ " in line for line in tree) == 30


class TestLineCap:
    def test_hidden_lines_are_counted(self):
        """With ``max_lines=3`` the tree stops at three lines and says how many are left."""
        out = report_of(notebook_sequence(), ledger=False, max_lines=3)
        assert section(out, "z #6  mul") == (
            "z #6  mul  value 81  grad 0 → 1  fired 1st\n"
            "└── add#4  add  value 9  grad 0 → 9  fired 3rd\n"
            "    └── x #1  leaf  value 5  grad 2 → 11 → 20  ⚠ stale\n"
            "… 4 more lines not shown (showing 3 of 7; raise max_lines to see more)\n")

    def test_ledger_shows_first_and_last_contributions_of_a_busy_node(self):
        """A node with 20 contributions shows its first six, a count of the rest, its last."""
        with trace() as t:
            w = Value(1.0, name="w")
            total = w * 1.0
            for _ in range(19):
                total = total + w * 1.0
            total.backward()
        console = plain_console(100)
        console.print(Ledger(TraceModel.from_events(t.events), 1, per_node=8))
        assert section(console.file.getvalue(), "w #1        mul#59", "… 13 more contributions") == (
            "w #1        mul#59        1 × 1 = +1     0 → 1   branching (20)\n"
            "            mul#56        1 × 1 = +1     1 → 2                 \n"
            "            mul#53        1 × 1 = +1     2 → 3                 \n"
            "            mul#50        1 × 1 = +1     3 → 4                 \n"
            "            mul#47        1 × 1 = +1     4 → 5                 \n"
            "            mul#44        1 × 1 = +1     5 → 6                 \n"
            "            … 13 more                                          \n"
            "            total #3      1 × 1 = +1   19 → 20                 \n")

    def test_large_mlp_renders_under_the_cap_in_bounded_time(self):
        """A 26,000-node MLP prints at most max_lines tree lines and ledger rows, fast."""
        rng = random.Random(0)
        sizes = (2, 16, 16, 1)
        layers = [[[Value(rng.uniform(-1, 1)) for _ in range(n_in + 1)] for _ in range(n_out)]
                  for n_in, n_out in zip(sizes, sizes[1:])]
        console = plain_console(120)
        with trace(sinks=[RichTreeSink(console, max_lines=50, full=True)], record=False):
            loss = Value(0.0)
            for _ in range(40):
                xs = [Value(rng.uniform(-1, 1)) for _ in range(2)]
                for depth, layer in enumerate(layers):
                    outs = []
                    for neuron in layer:
                        act = neuron[-1]
                        for w, x in zip(neuron, xs):
                            act = act + w * x
                        outs.append(act.relu() if depth < len(layers) - 1 else act)
                    xs = outs
                loss = loss + (1 - xs[0]).relu()
            started = time.perf_counter()
            loss.backward()
        elapsed = time.perf_counter() - started
        out = console.file.getvalue()
        assert loss.id > 25_000
        assert elapsed < 10
        assert "more lines not shown (showing 50 of" in out
        assert "more contributions not shown (at most 50 rows, 8 per node)" in out
        assert len(out.splitlines()) < 200


class TestFiredOutside:
    def test_node_outside_the_graph_is_shown_with_what_it_added(self):
        """Pass 1's z fires again in pass 2: it gets its own branch, with its two writes."""
        out = report_of(notebook_user_engine_events(), width=100, ledger=False)
        assert section(out, "⚠ fired outside") == (
            "⚠ fired outside this pass's graph: z #6 cannot reach these nodes, yet their backward "
            "functions ran\n"
            "┗━━ z #3  add  value 10  grad 1  ⚠ stale  fired 4th  made at notebook.py:3\n"
            "    ┣━━ added 1 to x #1  (local 1)  grad 20 → 21\n"
            "    ┗━━ added 1 to x #1  (local 1)  grad 21 → 22\n")

    def test_ledger_shows_all_four_contributions_to_x(self):
        """The ledger of pass 2 lists x's writes from add#5, add#4 and twice from z #3."""
        out = report_of(notebook_user_engine_events(), width=100)
        assert section(out, "x #1    add#5") == (
            "x #1    add#5     1 × 9 = +9    2 → 11   stale (held 2); branching (4)\n"
            "        add#4     1 × 9 = +9   11 → 20                                \n"
            "        z #3      1 × 1 = +1   20 → 21   sent from outside the graph  \n"
            "        z #3      1 × 1 = +1   21 → 22   sent from outside the graph  \n")

    def test_writes_from_outside_are_marked_in_the_ledger(self):
        """The ledger notes that z #3's two writes to x came from outside the graph."""
        out = report_of(notebook_user_engine_events(), width=100)
        assert section(out, "        z #3") == (
            "        z #3      1 × 1 = +1   20 → 21   sent from outside the graph  \n"
            "        z #3      1 × 1 = +1   21 → 22   sent from outside the graph  \n")

    def test_seeding_the_root_by_assignment_is_not_flagged(self):
        """``out.grad = 1`` on the root is how passes start: shown as ``set to 1``, no warning."""
        out = report_of(notebook_user_engine_events(), width=100)
        assert "z #6    seed        set to 1     0 → 1                                \n" in out

    def test_assignment_instead_of_addition_is_flagged(self):
        """A parent's grad written with ``=`` instead of ``+=`` is flagged in tree and ledger."""
        events = notebook_user_engine_events()
        last_write_to_y = max(i for i, e in enumerate(events)
                              if e.kind == "grad_accumulated" and e.target == 2)
        events[last_write_to_y] = events[last_write_to_y]._replace(replaced=True, grad_after=9.0)
        out = report_of(events, width=100)
        assert "y #2  leaf  value 4  grad 0 → 9 → 9  ⚠ assigned, not added" in out
        assert "        add#4   1 × 9, set to 9     9 → 9   assigned (=), not added" in out


class TestFindings:
    def test_a_cause_seen_in_every_pass_opens_the_report_once(self):
        """An unknown finding kind, given after each pass, is one block naming both passes."""
        console = plain_console()
        notebook_sequence([RichTreeSink(console, ledger=False)], [FindingOnFinish()])
        out = console.file.getvalue()
        assert section(out, "╭─ findings", "│   fix") == (
            "╭─ findings · 1 warning, 1 info ───────────────────────────────────────────────╮\n"
            "│ WARNING made_up_kind: pass 2 looked at [bold]w[i][/bold]                     │\n"
            "│   in backward passes 1 and 2                                                 │\n"
            "│   nodes: w[i]                                                                │\n"
            "│   at script.py:7                                                             │\n")
        assert out.count("WARNING made_up_kind") == 1
        assert out.index("WARNING made_up_kind") < out.index("backward pass 1 from")

    def test_findings_given_at_close_join_the_same_panel(self):
        """A finding the analyzer gives at close is in the opening panel, after the warning."""
        console = plain_console(40)
        notebook_sequence([RichTreeSink(console, ledger=False)], [FindingOnFinish()])
        out = console.file.getvalue()
        assert "│ INFO summary: 2 passes seen          │\n" in out
        assert out.index("WARNING made_up_kind") < out.index("INFO summary") < out.index("pass   root")

    def test_names_with_brackets_print_as_written(self):
        """``w[i]`` is a name, not Rich markup: it prints with its brackets."""
        with trace() as t:
            w = Value(3.0, name="w[i]")
            b = Value(1.0, name="[bold]b[/bold]")
            y = w * b
            y.backward()
        out = report_of(t.events)
        assert "├── w[i] #1  leaf  value 3  grad 0 → 1" in out
        assert "└── [bold]b[/bold] #2  leaf  value 1  grad 0 → 3" in out


class TestOutputKinds:
    def test_no_escape_codes_when_not_a_terminal(self):
        """Piped output holds no escape codes, and the sink does not go live."""
        console = plain_console()
        sink = RichTreeSink(console)
        notebook_sequence([sink], [FindingOnFinish()])
        assert sink.live is False
        assert "\x1b" not in console.file.getvalue()

    def test_terminal_output_is_the_same_text_with_styles(self):
        """In a terminal the static report carries styles; without them it is the piped text."""
        console = terminal_console()
        notebook_sequence([RichTreeSink(console, live=False, full=True)])
        out = console.file.getvalue()
        assert "\x1b[" in out
        assert ANSI.sub("", out) == NOTEBOOK_REPORT

    @pytest.mark.parametrize("env, kwargs", [
        ({"TERM": "dumb"}, {}),
        ({"TERM": "xterm"}, {"no_color": True}),
    ])
    def test_no_live_redraw_in_dumb_or_no_color_terminals(self, env, kwargs):
        """``TERM=dumb`` and ``NO_COLOR`` terminals get the static report, not a live view."""
        console = Console(file=io.StringIO(), force_terminal=True, _environ=env, **kwargs)
        assert RichTreeSink(console).live is False

    def test_no_color_environment_gives_a_plain_console(self, monkeypatch):
        """Under ``NO_COLOR`` the sink's own console writes no styles at all."""
        monkeypatch.setenv("NO_COLOR", "1")
        sink = RichTreeSink()
        assert sink.console.color_system is None and sink.live is False

    def test_output_fits_the_width(self):
        """At 50 columns no line of the report is wider than 50."""
        out = report_of(notebook_sequence(), width=50)
        assert max(len(line) for line in out.splitlines()) == 50

    def test_terminal_output_exports_as_svg(self):
        """A recording console exports the report with Rich's own SVG export."""
        console = Console(record=True, file=io.StringIO(), width=80)
        print_report(notebook_sequence(), console, full=True)
        svg = console.export_svg(title="notebook")
        assert svg.startswith("<svg") and "backward&#160;pass&#160;2" in svg


class TestLiveView:
    def test_live_frames_show_the_grad_changing(self):
        """Live, a frame shows x at ``2 → 11`` before its second contribution arrives."""
        console = terminal_console()
        notebook_sequence([RichTreeSink(console, live=True, delay=0.001)])
        frames = ANSI.sub("", console.file.getvalue())
        assert "x #1  leaf  value 5  grad 2 → 11  ⚠ stale" in frames
        assert "now: x.grad += 1 × 9 = 9 from add#5 (2 → 11)" in frames
        assert frames.index("grad 2 → 11  ⚠") < frames.index("grad 2 → 11 → 20")

    def test_live_view_ends_with_the_static_report(self):
        """After the live view, the report is printed once, as in a pipe."""
        console = terminal_console()
        notebook_sequence([RichTreeSink(console, live=True, delay=0.001, full=True)])
        assert ANSI.sub("", console.file.getvalue()).endswith(NOTEBOOK_REPORT)

    def test_firing_node_is_highlighted(self):
        """While add#5 fires, its name is drawn in reverse video."""
        events = notebook_sequence()
        model = TraceModel()
        view = LivePassView(model, 2, max_lines=20)
        for event in events[: events.index(next(e for e in events if e.kind == "backward_fn_fired"
                                                 and e.pass_no == 2 and e.node == 5)) + 1]:
            model.handle(event)
            view.note(event)
        segments = list(terminal_console().render(view))
        styles = {s.text: s.style for s in segments if s.text in ("add#5", "add#4")}
        assert styles["add#5"].reverse and not styles["add#4"].reverse


class TestReplay:
    def test_pass_report_renders_one_pass_of_a_replayed_trace(self):
        """``PassReport(model, 2)`` prints the same text as pass 2 of the sink."""
        console = plain_console()
        console.print(PassReport(TraceModel.from_events(notebook_sequence()), 2))
        assert console.file.getvalue() == section(NOTEBOOK_REPORT, "backward pass 2 from")

    def test_missing_pass_says_so(self):
        """Asking for a pass the trace does not have prints one line saying so."""
        console = plain_console()
        console.print(PassReport(TraceModel.from_events(notebook_sequence()), 9))
        assert console.file.getvalue() == "no backward pass 9 in this trace\n"


class TestBadOptions:
    @pytest.mark.parametrize("kwargs, message", [
        ({"delay": -1}, "delay must be 0 or more seconds per step, got -1"),
        ({"max_lines": 0}, "max_lines must be at least 1, got 0"),
    ])
    def test_bad_option_is_a_one_line_error(self, kwargs, message):
        """A negative delay or a zero line cap is refused with a message naming it."""
        with pytest.raises(ValueError, match=re.escape(message)):
            RichTreeSink(plain_console(), **kwargs)

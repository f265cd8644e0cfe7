"""Replaying a long trace stays bounded: the player lists at most so many steps per pass,
draws fewer pictures of a huge graph, and says what it left out."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from autodiff_trace import JsonlSink, trace
from autodiff_trace.frontends.cli import app
from autodiff_trace.views.player import build_player
from streams import chain_events


def page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="steps">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


class TestPlayerBounds:
    def test_steps_beyond_the_cap_are_left_out_and_counted(self):
        """With max_steps=10 a pass of 60 steps lists 10 and the page names the cut."""
        page = build_player(chain_events(20), max_steps=10, max_frames=2)
        assert "the first 10 steps of" in page
        assert len(page_data(page)["steps"]) == 10

    def test_the_command_says_on_the_terminal_what_the_page_leaves_out(self, tmp_path):
        """`autodiff-trace html` on a pass of over 5,000 steps names the cut on stderr as well."""
        trace_file = tmp_path / "trace.jsonl"
        with trace([JsonlSink(trace_file)]):
            chain_events(2000)
        done = CliRunner().invoke(app, ["html", str(trace_file)], prog_name="autodiff-trace")
        assert done.exit_code == 0, done.output
        assert "autodiff-trace: the page shows pass 1: the first 5,000 steps of 6,002" in done.output

    def test_a_pass_within_the_cap_lists_every_step(self):
        """A small pass lists every step and notes nothing."""
        events = chain_events(3)
        steps = sum(1 for e in events if e.kind in ("backward_started", "backward_fn_fired", "grad_accumulated"))
        page = build_player(events, max_frames=2)
        assert len(page_data(page)["steps"]) == steps and "steps of" not in page

    def test_a_huge_graph_gets_fewer_pictures(self):
        """The drawing budget (frames times nodes) caps the pictures of a big pass."""
        events = chain_events(40)
        few = build_player(events, max_drawn=100, max_frames=50)
        many = build_player(events, max_drawn=100_000, max_frames=50)
        assert few.count("<svg") < many.count("<svg")

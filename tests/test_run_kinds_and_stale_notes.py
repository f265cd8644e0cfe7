"""A run's events picked by kind, and the stale-gradient check's notes applied in the order things happened."""

from __future__ import annotations

from autodiff_trace import diagnose
from autodiff_trace.core.captured import FIRED, NODE, WRITE
from autodiff_trace.core.events import GradsZeroed
from autodiff_trace.core.runs import Run
from streams import Stream


def _node(node_id):
    return (NODE, node_id, "", 1.0, (), f"leaf#{node_id}", None, None, None, None)


def _fired(pass_no, node):
    return (FIRED, pass_no, node, 1.0, 1.0)


def _write(pass_no, target, by):
    return (WRITE, pass_no, target, by, 1.0, 1.0, 0.0, 1.0, False, None)


class TestRunKinds:
    """Where each kind of event sits in a run, and the one pass its firings and writes belong to."""

    def test_mask_marks_the_events_of_one_kind(self):
        """The mask has a byte per event: 1 where the event is of the kind asked for."""
        run = Run([_fired(1, 5), _write(1, 4, 5), _write(1, 3, 5), _fired(1, 4)], 0, 4, 10, 0.0)
        assert (list(run.mask(FIRED)), list(run.mask(WRITE)), list(run.mask(NODE))) == (
            [1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0])

    def test_places_of_each_kind_follow_the_kinds(self):
        """The places of firings, writes and nodes are those of their tuples, in order."""
        batch = [_node(9), _fired(1, 5), _write(1, 4, 5), _node(10), _write(1, 3, 5)]
        run = Run(batch, 0, len(batch), 0, 0.0)
        assert (run.node_at, run.fire_at, run.write_at) == ([0, 3], [1], [2, 4])

    def test_places_of_a_run_of_one_kind_are_every_place(self):
        """A run of nodes only has a node at every place and no firing or write."""
        run = Run([_node(n) for n in range(1, 6)], 0, 5, 0, 0.0)
        assert (run.node_at, run.fire_at, run.write_at) == ([0, 1, 2, 3, 4], [], [])

    def test_places_count_from_the_start_of_a_run_cut_from_a_batch(self):
        """A run cut from the middle of a batch numbers its places from its own start."""
        batch = [_fired(1, 7), _write(1, 6, 7), _fired(1, 6), _write(1, 5, 6)]
        run = Run(batch, 1, 4, 1, 0.0)
        assert (run.fire_at, run.write_at) == ([1], [0, 2])

    def test_one_pass_is_found_for_firings_and_writes_of_that_pass(self):
        """Firings and writes of pass 3 only belong to pass 3."""
        run = Run([_fired(3, 5), _write(3, 4, 5)], 0, 2, 0, 0.0)
        assert run.pass_no == 3

    def test_no_pass_is_found_for_events_of_two_passes(self):
        """Firings and writes of two passes belong to no one pass."""
        assert Run([_fired(3, 5), _write(4, 4, 5)], 0, 2, 0, 0.0).pass_no is None
        assert Run([_node(1), _fired(3, 5), _write(4, 4, 5)], 0, 3, 0, 0.0).pass_no is None

    def test_no_pass_is_found_for_nodes_alone(self):
        """A run of nodes has no firing or write, so no pass."""
        assert Run([_node(1), _node(2)], 0, 2, 0, 0.0).pass_no is None

    def test_nodes_do_not_hide_the_pass_of_the_firings_beside_them(self):
        """A node made during a pass leaves the pass of the firings and writes around it found."""
        assert Run([_fired(2, 5), _node(11), _write(2, 4, 5)], 0, 3, 0, 0.0).pass_no == 2


class TestStaleNotesInOrder:
    """Which write left a stale grad is read in the order writes, passes and zeroings happened."""

    def test_many_zeroed_passes_before_a_stale_one_name_the_last_pass(self):
        """After hundreds of passes begun from zeroed grads, a stale grad is blamed on the pass before it."""
        s = Stream()
        s.node(1, "w", 0.5, site="model.py:1")
        passes = 700  # more queued changes than are held before they are applied
        for _ in range(passes):
            s.start(root=1, order=(1,))
            s.write(1, None, 1.0)
            s.finish(1)
            s._emit(GradsZeroed, (1,), (s.grads[1],))
            s.grads[1] = 0.0
        s.start(root=1, order=(1,))
        s.write(1, None, 1.0)
        s.finish(1)
        s.start(root=1, order=(1,))
        stale = [f for f in diagnose(s.events) if f.finding == "stale_gradient"]
        assert [f.message for f in stale] == [
            f"w.grad was 1 when backward pass {passes + 2} began: it still held the gradient from pass "
            f"{passes + 1}, and nothing zeroed it in between"]

    def test_a_zeroing_inside_a_pass_forgets_only_the_writes_before_it(self):
        """A grad written in a pass after a zeroing made during that pass is blamed on that pass."""
        s = Stream()
        s.node(1, "w", 0.5)
        s.node(2, "v", 0.5)
        s.start(root=1, order=(1, 2))
        s.write(1, None, 1.0)
        s.write(2, None, 1.0)
        s._emit(GradsZeroed, (1, 2), (1.0, 1.0))
        s.grads[1] = s.grads[2] = 0.0
        s.write(2, None, 3.0)
        s.finish(1)
        s.start(root=1, order=(1, 2))
        stale = [f for f in diagnose(s.events) if f.finding == "stale_gradient"]
        assert [f.nodes for f in stale] == [(2,)]
        assert "still held the gradient from pass 1" in stale[0].message

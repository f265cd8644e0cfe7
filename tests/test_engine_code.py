"""Reading the values of traced nodes by their ids, as the stale-gradient check does to
tell a mini-batch's sum from a gradient left over an update."""

from __future__ import annotations

import sys
from pathlib import Path

from autodiff_trace import trace
from autodiff_trace.adapters import instrument
from autodiff_trace.adapters.engine_code import values_of

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "engines"))
from rulechecking import engine  # noqa: E402


class TestValuesOf:
    """``values_of`` gives the value each requested live node holds now, and nothing else."""

    def test_only_the_requested_live_nodes_are_read(self):
        """Asked for two leaves and an id no node has: the two leaves' values, as they are now."""
        namespace: dict = {}
        with trace(), instrument() as found:
            exec(engine(), namespace)
            Value = namespace["Value"]
            x, y = Value(1.5), Value(-0.75)
            Value(9.0)  # a node not asked for
            ids = found.reporter.ids
            loss = (x * y + x).tanh()
            loss.backward()
            x.data = 2.5  # an update: read as it is now
            now = values_of({ids.known(x), ids.known(y), 10 ** 9})
        assert now == {ids.known(x): 2.5, ids.known(y): -0.75}

    def test_nothing_asked_nothing_read(self):
        """No ids: an empty answer, whatever is traced."""
        assert values_of(set()) == {}

"""Node ids outlive nothing: an id goes when its node dies, even while the ids are being read."""

from __future__ import annotations

import gc

from autodiff_trace.adapters.nodeids import NodeIds


class Node:
    """A node in a reference cycle (micrograd's closures make one per node): only the
    garbage collector frees it, at whatever allocation it happens to run."""

    def __init__(self) -> None:
        self.me = self


class TestLiveNodes:
    def test_reading_them_while_the_collector_frees_some(self):
        """A collection that runs while the live nodes are listed removes entries mid-copy;
        the listing still finishes and holds only nodes still alive."""
        ids = NodeIds()
        kept = [Node() for _ in range(200)]
        for node in kept:
            ids.of(node)
        threshold = gc.get_threshold()
        try:
            for _ in range(20):
                for _ in range(2000):
                    ids.of(Node())  # dies at once, but only a collection can free it
                gc.set_threshold(1)  # the next allocation collects: the copy of the entries
                live = dict(ids.live())
                gc.set_threshold(*threshold)
                assert set(map(id, live.values())) >= set(map(id, kept))
                assert all(ids.known(node) == node_id for node_id, node in live.items())
        finally:
            gc.set_threshold(*threshold)

    def test_an_id_goes_with_its_node(self):
        ids = NodeIds()
        node = Node()
        node_id = ids.of(node)
        del node
        gc.collect()
        assert node_id not in dict(ids.live()) and len(ids) == 0

"""A node's parents read in one go when its parents attribute is a plain container of
nodes, and the same parents as the general reading by role finds."""

from __future__ import annotations

import random
import sys

from autodiff_trace.adapters.detect import Vocabulary
from autodiff_trace.adapters.reporter import EngineReporter

VOCAB = Vocabulary("data", "grad", "prev", None, None)


def _engine() -> tuple:
    """``(reporter, Node)``: the class is made here, never a module attribute, so that
    tracing in other tests never finds it among the imported modules."""

    class Node:
        def __init__(self, data, prev=()):
            self.data, self.grad, self.prev = data, 0.0, prev

    reporter = EngineReporter()
    reporter.add_type(Node, VOCAB)
    return reporter, Node


def _made(reporter: EngineReporter, node_class: type, count: int) -> list:
    nodes = [node_class(float(i)) for i in range(count)]
    for node in nodes:
        reporter.ids.of(node)
    return nodes


def _remembered(reporter: EngineReporter, node) -> tuple:
    node_id = reporter.ids.of(node)
    ids = reporter.graph.remember_ids(node, node_id, VOCAB, sys._getframe())
    return reporter.graph.remember(node, node_id, VOCAB, sys._getframe()), ids


class TestParentsReadInOneGo:
    """micrograd's ``_prev`` design: a set, tuple or list holding only nodes."""

    def test_a_set_of_parents_comes_in_creation_order(self):
        """A set's own order changes from run to run; the parents are listed oldest first."""
        reporter, Node = _engine()
        a, b, c = _made(reporter, Node, 3)
        assert _remembered(reporter, Node(1.0, {c, a, b})) == ((a, b, c), (1, 2, 3))

    def test_a_parent_held_twice_is_listed_once_where_it_first_comes(self):
        """``a * a`` holding ``(a, a)``, or ``(b, a, b)``: each parent once."""
        reporter, Node = _engine()
        a, b = _made(reporter, Node, 2)
        assert _remembered(reporter, Node(1.0, (b, a, b))) == ((b, a), (2, 1))

    def test_nodes_made_later_are_not_parents(self):
        """A node holding one made after it (a consumer list) does not count it as a parent."""
        reporter, Node = _engine()
        (a,) = _made(reporter, Node, 1)
        node = Node(1.0, [a])
        reporter.ids.of(node)
        (later,) = _made(reporter, Node, 1)
        node.prev = [a, later]
        assert _remembered(reporter, node) == ((a,), (1,))

    def test_pairs_of_parent_and_local_derivative_are_read_by_role(self):
        """``[(parent, local), ...]`` is not a plain container of nodes: the general reading finds the parents."""
        reporter, Node = _engine()
        a, b = _made(reporter, Node, 2)
        assert _remembered(reporter, Node(1.0, [(a, 2.0), (b, 3.0)])) == ((a, b), (1, 2))

    def test_parents_read_in_one_go_are_kept_for_the_pass_order(self):
        """The graph gives back the parents remembered at birth, for a pass's order."""
        reporter, Node = _engine()
        a, b = _made(reporter, Node, 2)
        node = Node(1.0, {a, b})
        _remembered(reporter, node)
        assert reporter.graph.parents(node) == [a, b]
        assert reporter.graph.order(node, {})[0] == (3, 1, 2)

    def test_random_holdings_give_the_same_parents_as_the_general_reading(self):
        """Sets, tuples and lists of older and newer nodes, repeated or not, and non-nodes."""
        rng = random.Random(7)
        for _ in range(200):
            reporter, Node = _engine()
            older = _made(reporter, Node, rng.randint(0, 5))
            node = Node(0.0)
            node_id = reporter.ids.of(node)
            newer = _made(reporter, Node, rng.randint(0, 2))
            items = [rng.choice(older + newer + [object()]) for _ in range(rng.randint(0, 6))]
            node.prev = rng.choice([set, tuple, list, frozenset])(items)
            general = reporter.graph._held(node, node_id, VOCAB)  # the reading by role alone
            expected = (tuple(general), tuple(reporter.ids.known(p) for p in general))
            assert _remembered(reporter, node) == expected, node.prev

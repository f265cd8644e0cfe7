"""Node ids of a class hooked the lean way: a node made from parents is kept by no weak
reference, its class's ``__del__`` (the tool's, while traced) drops its id, and an
address Python gives again never merges two nodes."""

from __future__ import annotations

import gc
import sys
import textwrap
import weakref
from pathlib import Path

from autodiff_trace import trace
from autodiff_trace.adapters import instrument
from autodiff_trace.adapters.nodeids import ToolRef, death_hooks, lifetime_observed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rulechecking import engine  # noqa: E402  (micrograd's design, its rules correct)


def _engine(extra: str = "") -> dict:
    namespace: dict = {"__name__": "engine_script"}
    exec(compile(engine() + textwrap.dedent(extra), "engine_script.py", "exec"), namespace)
    return namespace


class TestDeathHook:
    """What the class holds while traced, and after."""

    def test_a_lean_class_gets_the_tools_finalizer_while_traced_only(self):
        """``__del__`` is the tool's while traced, and the class has its own entries back after."""
        with trace(), instrument():
            Value = _engine()["Value"]
            before = set(vars(Value))  # hooked already: made inside the traced block
            assert vars(Value)["__del__"] in death_hooks
        assert "__del__" not in vars(Value) and "__del__" in before

    def test_a_class_with_its_own_finalizer_keeps_it(self):
        """A class defining ``__del__`` keeps its own, which still runs when a node dies."""
        with trace(), instrument():
            namespace = _engine('''
                died = []
                class Counted(Value):
                    def __del__(self):
                        died.append(self.data)
                ''')
            Counted = namespace["Counted"]
            node = Counted(2.0)
            del node
            gc.collect()
            assert vars(Counted)["__del__"] not in death_hooks
        assert namespace["died"] == [2.0]

    def test_the_tools_finalizer_is_no_lifetime_the_script_observes(self):
        """The rule check still treats a lean node as one whose death the script cannot see."""
        with trace(), instrument():
            Value = _engine()["Value"]
            node = Value(1.0) * Value(2.0)
            assert not lifetime_observed(node)


class TestNodeIds:
    """Ids given without a weak reference, dropped when their node dies."""

    def test_a_node_made_from_parents_has_no_weak_reference_and_a_leaf_has_one(self):
        """The op's result is found through the nodes holding it; a leaf keeps its weak reference."""
        with trace(), instrument() as found:
            Value = _engine()["Value"]
            leaf = Value(1.0)
            product = leaf * 2.0
            assert weakref.getweakrefs(product) == []
            assert [type(ref) for ref in weakref.getweakrefs(leaf)] == [ToolRef]
            ids = found.reporter.ids
            assert ids.of(product) not in ids.keepers and ids.of(leaf) in ids.keepers

    def test_an_address_given_again_never_merges_two_nodes(self):
        """Nodes made and dropped in a loop often land where the last one was: each has its own id."""
        with trace() as t, instrument() as found:
            Value = _engine()["Value"]
            a, b = Value(1.0), Value(2.0)
            addresses, ids = [], []
            for _ in range(200):
                product = a * b
                addresses.append(id(product))
                ids.append(found.reporter.ids.of(product))
                del product
            made = [e.node for e in t.events if e.kind == "node_created"]
        assert len(set(addresses)) < len(addresses)  # the test means something: addresses came back
        assert len(set(ids)) == len(ids) == 200
        assert len(set(made)) == len(made)

    def test_a_dead_nodes_id_goes_with_it_and_the_rest_when_tracing_stops(self):
        """The map by address holds live nodes only, and only weakly kept ones once tracing stops."""
        with trace(), instrument() as found:
            found.reporter.rulecheck.off = True  # it holds the nodes it may re-run until checked
            Value = _engine()["Value"]
            a = Value(1.0)
            chain = a * 2.0 * 3.0
            ids = found.reporter.ids
            held = len(ids.ids_by_key)
            del chain
            Value(0.0)  # a line of its own: the line naming chain is let go
            gc.collect()
            assert len(ids.ids_by_key) < held
            kept = a * 4.0
        assert set(ids.ids_by_key.values()) <= set(ids.keepers)
        assert kept.data == 4.0


class TestPassesThroughUnkeptNodes:
    """A pass walks nodes kept by no weak reference through the nodes that hold them."""

    TRAINING = '''
        w, b = Value(0.5), Value(-0.25)
        for step in range(3):
            x = Value(float(step + 1))
            loss = (w * x * b) * (w * x * b)
            w.grad = b.grad = 0
            loss.backward()
        result = (round(w.grad, 9), round(b.grad, 9))
        '''

    def test_the_pass_order_holds_every_node_and_a_correct_program_stays_silent(self):
        """Every node of the loss is in its pass, the grads are micrograd's, and nothing is reported."""
        plain = _engine(self.TRAINING)["result"]
        with trace() as t, instrument():
            traced = _engine(self.TRAINING)["result"]
        starts = [e for e in t.events if e.kind == "backward_started"]
        assert traced == plain
        assert len(starts) == 3 and all(len(e.order) == 8 for e in starts)
        assert [e for e in t.events if e.kind == "diagnostic"] == []

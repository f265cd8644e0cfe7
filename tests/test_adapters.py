"""Tracing a user's own autodiff engine, unmodified: detection, events, restoration."""

from __future__ import annotations

import random
import runpy
import subprocess
import sys
import textwrap

import pytest

from autodiff_trace import trace
from autodiff_trace.adapters import EngineSpecError, instrument
from autodiff_trace.core.model import TraceModel

from adapting import EXAMPLES, class_dict, of_kind, run_source, run_traced


class TestNotebookScript:
    """The seed notebook, traced as it is."""

    @pytest.fixture(scope="class")
    @classmethod
    def traced(cls):
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            events, found = run_traced(EXAMPLES / "notebook_bug.py")
        return out.getvalue(), events, TraceModel.from_events(events), found

    def test_runs_as_the_notebook_under_plain_python(self):
        """The example prints the notebook's own output with no tool involved."""
        done = subprocess.run([sys.executable, str(EXAMPLES / "notebook_bug.py")],
                              capture_output=True, text=True, check=True)
        assert done.stdout == "1 2 0\n1 22 18\n"

    def test_prints_its_own_output_when_traced(self, traced):
        """Tracing does not change what the script prints."""
        assert traced[0] == "1 2 0\n1 22 18\n"

    def test_recognises_the_notebook_vocabulary(self, traced):
        """Node is found by value, grad, parents and backward_fn, with no option."""
        assert [str(r) for r in traced[3].classes] == [
            "__main__:Node (value=value, grad=grad, parents=parents, backward=backward_fn)"]

    def test_names_nodes_after_the_users_lines(self, traced):
        """z = add(x, x) names z, with the script's line as the site and add as the op."""
        model = traced[2]
        z = model.passes[0].root
        assert (model.node(z).name, model.node(z).op) == ("z", "add")
        assert model.node(z).site.endswith("notebook_bug.py:57")

    def test_finds_two_passes_without_knowing_the_function_name(self, traced):
        """Each backward(z) call is one pass, seeded with 1."""
        assert [(p.pass_no, p.seed, p.finished) for p in traced[2].passes] == [(1, 1.0, True), (2, 1.0, True)]

    def test_pass_two_begins_with_the_stale_grad_of_x(self, traced):
        """x already held 2 when pass 2 began."""
        model = traced[2]
        x = next(n for n in model.nodes.values() if n.name == "x")
        assert model.passes[1].grads_before[x.id] == 2.0

    def test_first_z_fires_in_pass_two_outside_its_graph_and_adds_two_to_x(self, traced):
        """Pass 1's z is not in pass 2's order, yet its closure fires and adds 1 + 1 to x."""
        model = traced[2]
        first_z, second = model.passes[0].root, model.passes[1]
        x = next(n for n in model.nodes.values() if n.name == "x").id
        assert first_z not in second.order and first_z in second.fired_outside
        writes = [(w.target, w.contribution) for w in second.writes if w.fired_by == first_z]
        assert writes == [(x, 1.0), (x, 1.0)]
        assert second.writes_to[x][-1].grad_after == 22.0

    def test_the_fire_precedes_the_writes_it_makes(self, traced):
        """The backward_fn_fired of the first z comes right before its two writes."""
        events, model = traced[1], traced[2]
        first_z = model.passes[0].root
        i = next(i for i, e in enumerate(events)
                 if e.kind == "backward_fn_fired" and e.pass_no == 2 and e.node == first_z)
        assert [(e.kind, e.fired_by) for e in events[i + 1:i + 3]] == [("grad_accumulated", first_z)] * 2

    def test_the_seed_is_an_assignment_from_outside_any_closure(self, traced):
        """The root's seed write has no firing node and is marked as assigned."""
        seed = traced[2].passes[1].writes[0]
        assert (seed.fired_by, seed.grad_before, seed.grad_after, seed.replaced) == (None, 0.0, 1.0, True)
        assert seed.site.endswith("notebook_bug.py:49")


class TestOverwriteScript:
    """The other seed's vocabulary, with a rule that assigns where it should add."""

    def test_recognises_val_der_parents_backprop(self):
        """The engine is found under its own names."""
        _, found = run_traced(EXAMPLES / "overwrite_bug.py")
        assert [str(r.vocabulary) for r in found.classes] == [
            "value=val, grad=der, parents=parents, backward=backprop"]

    def test_shows_the_overwrite_of_x(self, capsys):
        """The add rule's a.der = out.der replaces x's 1 with 8, marked replaced, at its line."""
        events, _ = run_traced(EXAMPLES / "overwrite_bug.py")
        assert capsys.readouterr().out == "y = 18.0, dy/dx = 8.0 (expected 9.0)\n"
        model = TraceModel.from_events(events)
        lost = [w for w in of_kind(events, "grad_accumulated")
                if w.replaced and w.fired_by is not None and w.grad_before != 0]
        assert [(model.name(w.target), w.grad_before, w.grad_after) for w in lost] == [("x", 1.0, 8.0)]
        assert lost[0].site.endswith("overwrite_bug.py:24")

    def test_plus_equals_writes_are_not_marked_replaced(self):
        """b.der += out.der is an accumulation."""
        events, _ = run_traced(EXAMPLES / "overwrite_bug.py")
        sites = {w.site.rsplit(":", 1)[1] for w in of_kind(events, "grad_accumulated") if not w.replaced}
        assert sites == {"25", "34", "35"}


class TestMicrograd:
    """micrograd 0.1.0 from PyPI, recognised and traced unmodified."""

    def test_value_is_recognised_with_no_option(self):
        """micrograd.engine.Value is found by its own names."""
        events, found = run_traced(EXAMPLES / "micrograd_mlp.py")
        assert [str(r) for r in found.classes] == [
            "micrograd.engine:Value (value=data, grad=grad, parents=_prev, backward=_backward, op=_op)"]

    def test_each_training_step_is_one_pass_after_a_reset(self):
        """Two steps: zero_grad then backward, twice; leaves' no-op closures do not fire."""
        events, _ = run_traced(EXAMPLES / "micrograd_mlp.py")
        model = TraceModel.from_events(events)
        kinds = [e.kind for e in events if e.kind in ("grads_zeroed", "backward_started", "backward_finished")]
        assert kinds == ["grads_zeroed", "backward_started", "backward_finished"] * 2
        ops = {model.node(n).op for p in model.passes for n in p.fired}
        assert "" not in ops and {"+", "*", "ReLU"} <= ops

    def test_grads_are_unchanged_by_tracing(self):
        """The same model and data give the same grads traced and untraced."""
        from micrograd.nn import MLP

        def grads():
            random.seed(7)
            model = MLP(2, [4, 1])
            loss = sum((1 - model([1.5, -0.5])).relu() for _ in range(3))
            loss.backward()
            return [p.grad for p in model.parameters()]

        plain = grads()
        with trace(), instrument():
            traced = grads()
        assert traced == plain and any(plain)

    def test_value_class_is_restored_exactly(self):
        """Value's __dict__ holds the very same entries after tracing."""
        from micrograd.engine import Value

        before = class_dict(Value)
        with trace(), instrument():
            (Value(2.0) * Value(3.0)).backward()
            assert vars(Value)["__init__"] is not before["__init__"]
        after = class_dict(Value)
        assert list(after) == list(before)
        assert all(after[k] is before[k] for k in before)


class TestRestoring:
    """Classes get back exactly what they had."""

    SOURCE = """
        class Node:
            __slots__ = ("val", "der", "parents", "backprop")
            def __init__(self, val, parents=()):
                self.val, self.der, self.parents = val, 0.0, parents
                self.backprop = None
            def __eq__(self, other):  # a node-building __eq__: instances are unhashable
                return Node(float(self.val == other.val), (self, other))
            __hash__ = None
    """

    def test_classes_built_while_tracing_lose_every_hook(self):
        """A slotted class defined in the block has its own entries back afterwards."""
        plain = {}
        exec(textwrap.dedent(self.SOURCE), plain)
        namespace = {}
        with trace(), instrument() as found:
            exec(textwrap.dedent(self.SOURCE), namespace)
        cls = namespace["Node"]
        assert [r.cls for r in found.classes if r.how == "defined while tracing"] == [cls]
        assert list(vars(cls)) == list(vars(plain["Node"]))
        assert type(vars(cls)["der"]) is type(vars(plain["Node"])["der"])
        assert vars(cls)["__init__"].__code__.co_filename == "<string>"

    def test_build_class_is_given_back(self):
        """builtins.__build_class__ is the original once the block ends, even after an error."""
        import builtins

        original = builtins.__build_class__
        with pytest.raises(RuntimeError):
            with instrument():
                raise RuntimeError("user code failed")
        assert builtins.__build_class__ is original

    def test_nested_instrumentation_reports_each_write_once(self):
        """An inner instrument() leaves classes the outer one hooked to it."""
        namespace = {}
        with trace() as t, instrument() as outer:
            exec(textwrap.dedent("""
                class Node:
                    def __init__(self, val, parents=()):
                        self.val, self.der, self.parents = val, 0.0, parents
                        self.backprop = lambda: None
                x = Node(1.0)
            """), namespace)
            with instrument() as inner:
                namespace["x"].der = 2.0
        assert inner.classes == [] and [r.cls for r in outer.classes][-1] is namespace["Node"]
        assert [(w.grad_before, w.grad_after) for w in of_kind(t.events, "grad_accumulated")] == [(0.0, 2.0)]

    def test_an_entry_replaced_by_the_user_is_left_alone(self):
        """If user code replaces a hooked entry, the user's entry stays."""
        namespace = {}
        with instrument():
            exec(textwrap.dedent(self.SOURCE), namespace)
            cls = namespace["Node"]

            def replacement(self, val, parents=()):
                pass
            cls.__init__ = replacement
        assert vars(cls)["__init__"] is replacement


class TestUnusualEngines:
    """Engines written in other styles still trace correctly."""

    def test_slotted_unhashable_nodes_trace_with_right_grads(self, tmp_path):
        """__slots__ and __hash__ = None: ids by identity; the grads are the true ones."""
        events, found = run_source(tmp_path, TestRestoring.SOURCE + """
        def mul(a, b):
            out = Node(a.val * b.val, (a, b))
            def backprop():
                a.der += out.der * b.val
                b.der += out.der * a.val
            out.backprop = backprop
            return out
        def run(root):
            root.der = 1.0
            root.backprop()
        x = Node(3.0)
        y = mul(x, x)
        run(y)
        assert x.der == 6.0
        """)
        model = TraceModel.from_events(events)
        x = next(n for n in model.nodes.values() if n.name == "x")
        assert [w.grad_after for w in model.passes[0].writes_to[x.id]] == [3.0, 6.0]

    def test_rules_as_methods_of_op_subclasses_fire(self, tmp_path):
        """class Mul(Node) with its own backprop method: each call is a firing."""
        events, found = run_source(tmp_path, """
        class Node:
            def __init__(self, val, parents=()):
                self.val, self.der, self.parents = val, 0.0, parents
            def backprop(self):
                pass
        class Mul(Node):
            def __init__(self, a, b):
                super().__init__(a.val * b.val, (a, b))
            def backprop(self):
                a, b = self.parents
                a.der += self.der * b.val
                b.der += self.der * a.val
        x = Node(2.0)
        y = Node(5.0)
        z = Mul(x, y)
        z.der = 1.0
        for node in (z, x, y):
            node.backprop()
        """)
        model = TraceModel.from_events(events)
        assert [model.node(n).name for n in model.passes[0].fired] == ["z"]
        assert [(model.name(w.target), w.grad_after) for w in model.passes[0].writes] == [
            ("z", 1.0), ("x", 5.0), ("y", 2.0)]
        assert [(e.name, e.op) for e in of_kind(events, "node_created")] == [
            ("x", ""), ("y", ""), ("z", "Mul")]

    def test_dataclass_nodes_are_hooked_after_the_decorator(self, tmp_path):
        """@dataclass sees the user's defaults, not our hooks, and its nodes are traced."""
        events, found = run_source(tmp_path, """
        from dataclasses import dataclass, field
        @dataclass
        class Value:
            data: float
            grad: float = 0.0
            _prev: tuple = ()
            _backward: object = field(default=lambda: None, repr=False)
        def mul(a, b):
            out = Value(a.data * b.data, _prev=(a, b))
            def _backward():
                a.grad += out.grad * b.data
                b.grad += out.grad * a.data
            out._backward = _backward
            return out
        x = Value(3.0)
        y = mul(x, x)
        y.grad = 1.0
        y._backward()
        assert repr(x) == "Value(data=3.0, grad=6.0, _prev=())", repr(x)
        """)
        cls = next(r.cls for r in found.classes if r.how == "defined while tracing")
        assert vars(cls)["grad"] == 0.0 and cls.__dataclass_fields__["grad"].default == 0.0
        model = TraceModel.from_events(events)
        assert [(n.name, n.op) for n in model.nodes.values()] == [("x", ""), ("y", "mul")]
        assert [w.grad_after for w in model.passes[0].writes] == [1.0, 3.0, 6.0]
        assert sys.gettrace() is None

    def test_optimizer_writes_are_not_passes(self, tmp_path):
        """A non-zero grad write that no backward function follows is a plain write."""
        events, _ = run_source(tmp_path, """
        class Node:
            def __init__(self, val, parents=()):
                self.val, self.der, self.parents = val, 0.0, parents
                self.backprop = lambda: None
        w = Node(1.0)
        w.der = 0.5
        w.der = 0.0
        """)
        writes = of_kind(events, "grad_accumulated")
        assert [(w.pass_no, w.grad_after) for w in writes] == [(0, 0.5)]
        assert of_kind(events, "backward_started") == []
        assert [e.grads_before for e in of_kind(events, "grads_zeroed")] == [(0.5,)]

    def test_an_engine_loop_without_closures_is_one_pass(self, tmp_path):
        """Seeding, then writing the grads of nodes under the root, is a pass with no firings."""
        events, _ = run_source(tmp_path, """
        class Node:
            def __init__(self, val, parents=(), locals_=()):
                self.val, self.grad, self.parents, self.locals = val, 0.0, parents, locals_
        x = Node(3.0)
        parents, slopes = (x,), (6.0,)
        y = Node(9.0, parents, slopes)
        y.grad = 1.0
        for parent, local in zip(y.parents, y.locals):
            parent.grad += local * y.grad
        """)
        model = TraceModel.from_events(events)
        assert len(model.passes) == 1 and model.passes[0].fired == []
        assert [(model.name(w.target), w.grad_after, w.fired_by) for w in model.passes[0].writes] == [
            ("y", 1.0, None), ("x", 6.0, None)]


class TestPointingAtTheEngine:
    """engine= and attrs= for classes the search does not recognise."""

    SOURCE = """
        class Cell:
            def __init__(self, x, ins=()):
                self.x, self.g, self.ins = x, 0.0, ins
                self.rule = lambda: None
        def mul(a, b):
            out = Cell(a.x * b.x, (a, b))
            def rule():
                a.g += out.g * b.x
                b.g += out.g * a.x
            out.rule = rule
            return out
        a = Cell(2.0)
        c = mul(a, a)
        c.g = 1.0
        c.rule()
    """

    def test_nothing_found_says_what_was_looked_for(self, tmp_path):
        """Unknown names: no class is hooked, and the message names the roles and options."""
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(self.SOURCE))
        driver = ("import runpy, sys\n"
                  "from autodiff_trace import trace\n"
                  "from autodiff_trace.adapters import instrument\n"
                  "with trace(), instrument() as found:\n"
                  "    runpy.run_path(sys.argv[1], run_name='__main__')\n"
                  "print(len(found.classes))\n"
                  "print(found.describe_search())\n")
        done = subprocess.run([sys.executable, "-c", driver, str(script)],
                              capture_output=True, text=True, check=True)
        count, text = done.stdout.split("\n", 1)
        assert count == "0"
        assert text.startswith("No autodiff node class of the script was found.")
        assert "  grad      one of grad, der," in text
        assert "--engine module:Class" in text and "--attr grad=der" in text

    def test_engine_and_attrs_trace_the_named_class(self, tmp_path):
        """Naming the class and its attributes traces it."""
        events, found = run_source(tmp_path, self.SOURCE, engine="script:Cell",
                                   attrs={"value": "x", "grad": "g", "parents": "ins", "backward": "rule"})
        assert [str(r.vocabulary) for r in found.classes] == ["value=x, grad=g, parents=ins, backward=rule"]
        model = TraceModel.from_events(events)
        assert model.node(model.passes[0].root).name == "c"
        assert [w.grad_after for w in model.passes[0].writes] == [1.0, 2.0, 4.0]

    def test_a_named_engine_never_defined_is_reported(self, tmp_path):
        """engine= naming a class that never appears says so."""
        _, found = run_source(tmp_path, "x = 1\n", engine="script:Missing")
        assert found.describe_search().startswith("No class Missing was defined or imported from script")

    @pytest.mark.parametrize("options, message", [
        ({"engine": "Value"}, "--engine expects module:Class"),
        ({"attrs": {"gradient": "g"}}, "unknown attribute role 'gradient'"),
        ({"attrs": {"grad": "not a name"}}, "must be a Python identifier"),
    ])
    def test_bad_options_are_one_clear_error(self, options, message):
        """A malformed option is an EngineSpecError naming the problem."""
        with pytest.raises(EngineSpecError, match=message):
            with instrument(**options):
                pass


class TestWithoutTracer:
    """Instrumentation with no tracer listening reports nothing and changes nothing."""

    def test_no_tracer_no_events_same_result(self, tmp_path, capsys):
        """The notebook under instrument() alone prints its usual output."""
        with instrument() as found:
            runpy.run_path(str(EXAMPLES / "notebook_bug.py"), run_name="__main__")
        assert capsys.readouterr().out == "1 2 0\n1 22 18\n"
        assert [r.name for r in found.classes if r.how == "defined while tracing"] == ["__main__:Node"]

"""Engines of other designs than micrograd's, traced unmodified: rules that return gradients,
one class per op, passes found by the roles of attributes, and the script never changed."""

from __future__ import annotations

import contextlib
import io
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path
from types import FunctionType

import pytest

from autodiff_trace import Diagnoser, trace
from autodiff_trace.adapters import instrument
from autodiff_trace.core.text import number

from adapting import of_kind, run_source, run_traced
from diagnosing import traced_script


class TestEnginesWhoseRulesReturnGradients:
    """Backward functions that return local gradients, written by the engine's own loop."""

    def test_writes_are_credited_to_the_node_that_just_fired(self, capsys):
        """examples/wrong_order.py: each write belongs to the node whose rule returned it, and
        op functions that return the node they make name it after the caller's line."""
        example = Path(__file__).resolve().parent.parent / "examples" / "wrong_order.py"
        with trace(analyzers=[Diagnoser()]) as t, instrument():
            runpy.run_path(str(example), run_name="__main__")
        assert "dw/dx = 24 (expected 36)" in capsys.readouterr().out
        names = {e.node: e.name for e in t.events if e.kind == "node_created"}
        assert sorted(names.values()) == ["u", "w", "x", "y", "z"]
        assert {e.op for e in t.events if e.kind == "node_created" and e.parents} == {"mul", "add"}
        writes = [(names[e.target], names.get(e.fired_by)) for e in t.events
                  if e.kind == "grad_accumulated" and e.fired_by is not None]
        assert writes[:2] == [("z", "w"), ("u", "w")] and ("u", "z") in writes
        (finding,) = [e for e in t.events if e.kind == "diagnostic" and e.severity != "info"]
        assert finding.finding == "fired_too_early"
        assert finding.message.startswith("u fired too early in backward pass 1: z, which uses it, "
                                          f"fired after it and added {number(6.0)} to u.grad")


OP_CLASSES_ENGINE = """\
class Node:
    def __init__(self, data, prev=()):
        self.data = data
        self.grad = 0.0
        self._prev = list(prev)
    def backward_step(self):
        pass

class Add(Node):
    def __init__(self, a, b):
        super().__init__(a.data + b.data, (a, b))
    def backward_step(self):
        a, b = self._prev
        a.grad += self.grad
        b.grad = self.grad        # bug: should be +=

class Mul(Node):
    def __init__(self, a, b):
        super().__init__(a.data * b.data, (a, b))
    def backward_step(self):
        a, b = self._prev
        a.grad += b.data * self.grad
        b.grad += a.data * self.grad

def backward(root):
    topo, seen = [], set()
    def visit(n):
        if id(n) in seen: return
        seen.add(id(n))
        for p in n._prev: visit(p)
        topo.append(n)
    visit(root)
    root.grad = 1.0
    for n in reversed(topo):
        n.backward_step()

a = Node(2.0)
b = Node(3.0)
s = Add(a, b)
d = Mul(s, b)      # d = (a + b) * b ; dd/db = a + 2b = 8
backward(d)
print(a.grad, b.grad)
"""


class TestEnginesWithOneClassPerOp:
    """Each op a subclass whose rule is a method of any name (here ``backward_step``)."""

    def test_a_rule_method_fires_and_its_overwrite_is_found(self, tmp_path, capsys):
        """Writes from a node's method to its own parents are that node firing; the rule that
        assigns b.grad (5 -> 3) instead of adding is named, and no grad is called stale."""
        script = tmp_path / "op_classes.py"
        script.write_text(OP_CLASSES_ENGINE)
        with trace(analyzers=[Diagnoser()]) as t, instrument():
            runpy.run_path(str(script), run_name="__main__")
        assert capsys.readouterr().out == "3.0 3.0\n"
        names = {e.node: e.name for e in t.events if e.kind == "node_created"}
        fired = [names[e.node] for e in t.events if e.kind == "backward_fn_fired"]
        assert fired == ["d", "s"]
        started = next(e for e in t.events if e.kind == "backward_started")
        assert set(started.grads_before) == {0.0}
        (finding,) = [e for e in t.events if e.kind == "diagnostic" and e.severity != "info"]
        assert finding.finding == "overwritten_grad"
        assert f"set b.grad to {number(3.0)}" in finding.message
        assert f"which would give {number(8.0)}" in finding.message



class TestNeverChangingTheScript:
    """Reading nodes runs none of their code, and a deep recursion keeps its headroom."""

    def test_a_property_that_asserts_is_never_evaluated(self, tmp_path, capsys):
        """A ``parents`` property asserting a history (minitorch) is read past, not called."""
        events, found = run_source(tmp_path, """
            class Scalar:
                def __init__(self, v, history=None):
                    self.data, self.derivative, self.history = v, None, history
                @property
                def parents(self):
                    assert self.history is not None
                    return self.history
            x = Scalar(1.0)
            y = Scalar(2.0, [x])
            print(x.data + y.data)
        """)
        assert capsys.readouterr().out == "3.0\n"
        assert [r.cls.__name__ for r in found.classes if r.how == "defined while tracing"] == ["Scalar"]
        created = of_kind(events, "node_created")
        assert [e.parents for e in created] == [(), (created[0].node,)]

    def test_a_recursive_backward_works_as_deep_traced_as_plain(self, tmp_path):
        """A backprop recursion 990 calls deep runs traced as it runs under python."""
        script = tmp_path / "deep.py"
        script.write_text(textwrap.dedent("""
            class Node:
                def __init__(self, v, inputs=()):
                    self.v, self.g, self.inputs = v, 0.0, inputs
                def backprop(self, bp):
                    self.g += bp
                    for inp in self.inputs:
                        inp.backprop(bp)
            x = y = Node(1.0)
            for _ in range(990):
                y = Node(y.v, (y,))
            y.backprop(1.0)
            print(x.g)
        """))
        plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        traced = subprocess.run([str(Path(sys.executable).with_name("trace-backward")), "--quiet",
                                 "--sink", "json", "--out", str(tmp_path / "out"), str(script)],
                                capture_output=True, text=True)
        assert plain.stdout == "1.0\n"
        assert traced.stdout == plain.stdout, traced.stderr

    def test_an_optimiser_that_writes_grads_is_not_a_node(self, tmp_path, capsys):
        """A class whose code sets grad and data only on other objects is not taken for a node."""
        _, found = run_source(tmp_path, """
            class Value:
                def __init__(self, data, _children=()):
                    self.data, self.grad, self._prev = data, 0.0, set(_children)
            class SGD:
                def __init__(self, params, lr):
                    self.params, self.lr = list(params), lr
                def step(self):
                    for p in self.params:
                        p.data -= self.lr * p.grad
                        p.grad = None
            opt = SGD([Value(1.0)], 0.1)
            opt.step()
        """)
        assert [r.cls.__name__ for r in found.classes if r.how == "defined while tracing"] == ["Value"]


class TestNamesAndRoles:
    """Names from tuple assignments, and parents found by the role of what a node holds."""

    def test_a_tuple_assignment_names_each_node(self, tmp_path, capsys):
        """``w1, w2, b = Var(...), Var(...), Var(...)`` names the nodes w1, w2 and b."""
        events, _ = run_source(tmp_path, """
            class Var:
                def __init__(self, value, parents=()):
                    self.value, self.grad, self.parents = value, 0.0, parents
            w1, w2, b = Var(0.5), Var(-0.3), Var(0.1)
        """)
        assert [e.name for e in of_kind(events, "node_created")] == ["w1", "w2", "b"]

    @pytest.mark.parametrize("holding", ["((a, 1.0), (b, 2.0))", "{a: 1.0, b: 2.0}", "Box((a, b))"])
    def test_parents_held_as_pairs_dict_keys_or_in_an_object(self, tmp_path, holding):
        """(parent, local) pairs, {parent: local} keys and an object's attribute all give parents."""
        events, _ = run_source(tmp_path, f"""
            class Box:
                def __init__(self, inputs):
                    self.inputs = inputs
            class Node:
                def __init__(self, value, held=None):
                    self.value, self.grad, self.held = value, 0.0, held
            a = Node(1.0)
            b = Node(2.0)
            c = Node(3.0, {holding})
        """)
        created = of_kind(events, "node_created")
        assert created[2].parents == (created[0].node, created[1].node)

    def test_no_engine_found_lists_the_classes_considered(self, tmp_path):
        """With no node class, the note names each class of the script and why it is not one."""
        script = tmp_path / "script.py"
        script.write_text("class Thing:\n    def __init__(self, x):\n        self.x = x\nThing(1)\n")
        driver = ("import runpy, sys\n"
                  "from autodiff_trace import trace\n"
                  "from autodiff_trace.adapters import instrument\n"
                  "with trace(), instrument() as found:\n"
                  "    runpy.run_path(sys.argv[1], run_name='__main__')\n"
                  "print(found.nothing_traced)\n"
                  "print(found.describe_search())\n")
        done = subprocess.run([sys.executable, "-c", driver, str(script)],
                              capture_output=True, text=True, check=True)
        assert done.stdout.startswith("True\n")
        assert "Considered __main__:Thing: its code names no gradient." in done.stdout


class TestPassesFoundByRole:
    """Passes of engines with no backward function on the node, in the order things happened."""

    LOOP_ENGINE = """
        class Node:
            def __init__(self, value, grad_wrt=None):
                self.value, self.grad, self.grad_wrt = value, 0.0, grad_wrt or {}
        def mul(a, b):
            return Node(a.value * b.value, {a: b.value, b: a.value})
        def backward(root):
            order, seen = [], set()
            def visit(n):
                if n not in seen:
                    seen.add(n)
                    for p in n.grad_wrt:
                        visit(p)
                    order.append(n)
            visit(root)
            root.grad = 1.0
            for node in reversed(order):
                for parent, local in node.grad_wrt.items():
                    parent.grad += node.grad * local
        w, x = Node(2.0), Node(3.0)
        for step in range(2):
            y = mul(w, x)
            w.grad = 0
            backward(y)
            print(w.grad)
    """

    def test_a_zeroing_between_steps_comes_between_the_passes(self, tmp_path, capsys):
        """``w.grad = 0`` before the second backward is reported there, not at the end."""
        events, _ = run_source(tmp_path, self.LOOP_ENGINE)
        assert capsys.readouterr().out == "3.0\n3.0\n"
        kinds = [e.kind for e in events if e.kind in ("grads_zeroed", "backward_started", "backward_finished")]
        assert kinds == ["grads_zeroed", "backward_started", "backward_finished"] * 2

    def test_writes_of_the_engine_loop_are_credited_to_the_node_whose_local_derivative_it_used(
            self, tmp_path, capsys):
        """``parent.grad += node.grad * local`` belongs to ``node``, which is reported firing."""
        events, _ = run_source(tmp_path, self.LOOP_ENGINE)
        names = {e.node: e.name for e in of_kind(events, "node_created")}
        first_pass = [e for e in events if getattr(e, "pass_no", None) == 1]
        writes = [(names[e.target], names.get(e.fired_by)) for e in first_pass if e.kind == "grad_accumulated"]
        assert writes == [("y", None), ("w", "y"), ("x", "y")]
        assert [names[e.node] for e in first_pass if e.kind == "backward_fn_fired"] == ["y"]

    def test_an_engine_holding_the_root_makes_a_pass_without_any_seed(self, tmp_path, capsys):
        """Derivatives kept in a dict, written only on leaves: each call is one pass."""
        events, _ = run_source(tmp_path, """
            class Scalar:
                def __init__(self, v, inputs=()):
                    self.data, self.derivative, self.inputs = v, None, inputs
            def backpropagate(variable):
                derivatives = {id(variable): 1.0}
                for leaf in variable.inputs:
                    if leaf.derivative is None:
                        leaf.derivative = 0.0
                    leaf.derivative += derivatives[id(variable)]
            a, b = Scalar(1.0), Scalar(2.0)
            c = Scalar(3.0, (a, b))
            backpropagate(c)
            backpropagate(c)
            print(a.derivative)
        """)
        assert capsys.readouterr().out == "2.0\n"
        assert [e.root for e in of_kind(events, "backward_started")] == [3, 3]


PULL_ENGINE = """\
class Var:
    def __init__(self, value):
        self.value = value
        self.children = []  # (weight, child) for each consumer
        self.grad_value = None
    def grad(self):
        if self.grad_value is None:
            total = 0.0
            for weight, child in self.children:
                total += weight * child.grad()
            self.grad_value = total
        return self.grad_value
    def zero_grad(self):
        self.grad_value = None
        self.children = []
    def __mul__(self, other):
        z = Var(self.value * other.value)
        self.children.append((other.value, z))
        other.children.append((self.value, z))
        return z
    def __add__(self, other):
        z = Var(self.value + other.value)
        self.children.append((1.0, z))
        other.children.append((1.0, z))
        return z

w, b = Var(0.5), Var(0.1)
for step in range(3):
    for p in (w, b):
        p.zero_grad()
    h = w * w + b
    out = h * h
    out.grad_value = 1.0
    grads = [p.grad() for p in (w, b)]
    for p, g in zip((w, b), grads):
        p.value -= 0.1 * g
print(round(w.value, 6), round(b.value, 6))
"""


class TestPullEngines:
    """Engines whose ``grad()`` sums each consumer's ``weight * child.grad()`` on demand."""

    def script(self, tmp_path, find: str = "", replace: str = ""):
        assert find in PULL_ENGINE
        path = tmp_path / "pull.py"
        path.write_text(PULL_ENGINE.replace(find, replace, 1) if find else PULL_ENGINE)
        return path

    def serious(self, path):
        return [(f.finding, f.site.rpartition(":")[2]) for f in traced_script(path)
                if f.severity in ("warning", "error")]

    def test_each_consumer_passes_on_its_weighted_gradient_as_it_returns(self, tmp_path, capsys):
        """Pulling w asks h, which asks out: each answer is a write credited to the consumer."""
        path = self.script(tmp_path)
        runpy.run_path(str(path))
        plain = capsys.readouterr().out
        events, _ = run_traced(path)
        assert capsys.readouterr().out == plain == "0.370792 -0.04128\n"
        assert len(of_kind(events, "backward_started")) == 3
        names = {e.node: e.name for e in of_kind(events, "node_created")}
        first = [e for e in of_kind(events, "grad_accumulated") if e.pass_no == 1 and e.fired_by]
        assert [(names[e.fired_by], names[e.target]) for e in first] == [
            ("out", "h"), ("out", "h"), ("h", "leaf#3"), ("leaf#3", "w"), ("leaf#3", "w"), ("h", "b")]
        assert [e.contribution for e in first][:2] == [0.35, 0.35]  # h.value, once per operand

    def test_a_correct_pull_engine_gets_no_finding(self, tmp_path):
        """Memoised pulls, reset memos and fresh consumer lists: nothing to report."""
        assert self.serious(self.script(tmp_path)) == []

    def test_a_sum_overwritten_in_the_loop_is_found_at_that_line(self, tmp_path):
        """``total = weight * child.grad()`` keeps only the last consumer's part."""
        path = self.script(tmp_path, "total += weight", "total = weight")
        assert ("overwritten_grad", "10") in self.serious(path)

    def test_a_memo_never_reset_is_a_stale_gradient_at_the_pulling_line(self, tmp_path):
        """The cached grads of the last step are returned again: the pass begins stale."""
        path = self.script(tmp_path, "        self.grad_value = None\n        self.children",
                           "        self.children")
        assert ("stale_gradient", "33") in self.serious(path)  # one line fewer above

    def test_consumers_kept_from_the_last_step_fire_outside_the_graph(self, tmp_path):
        """The consumer list made in ``__init__`` outlives the pass: that line is named."""
        path = self.script(tmp_path, "        self.children = []\n    def __mul__",
                           "        pass\n    def __mul__")
        assert ("fired_outside_graph", "4") in self.serious(path)

    def test_the_pull_method_is_given_back_exactly(self, tmp_path):
        """After tracing, the class holds the user's own function again."""
        with trace(), instrument(), contextlib.redirect_stdout(io.StringIO()):
            namespace = runpy.run_path(str(self.script(tmp_path)))
        assert type(namespace["Var"].__dict__["grad"]) is FunctionType
        assert set(namespace["Var"].__dict__) == {"__module__", "__init__", "grad", "zero_grad", "__mul__",
                                                  "__add__", "__dict__", "__weakref__", "__doc__"}

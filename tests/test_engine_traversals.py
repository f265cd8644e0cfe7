"""Traversals of learners' engines, traced unmodified: which node each write belongs to when
the engine applies rules inline, recursively or through gates, and the line each finding
names when the traversal goes wrong."""

from __future__ import annotations

import sys
import textwrap

import pytest

from diagnosing import traced_script

ORDER_ENGINE = """\
class Var:
    def __init__(self, val, parents=()):
        self.val, self.der, self.parents = val, 0.0, parents  # (parent, local derivative) pairs
    def __mul__(self, other):
        return Var(self.val * other.val, ((self, other.val), (other, self.val)))
    def __add__(self, other):
        return Var(self.val + other.val, ((self, 1.0), (other, 1.0)))
    def backprop(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p, _ in node.parents)
        self.der = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.der += local * node.der

w, x = Var(0.5), Var(2.0)
for step in range(2):
    h = w * x
    out = h * h + h
    w.der = x.der = 0.0
    out.backprop()
    w.val -= 0.1 * w.der
"""

RECURSIVE_ENGINE = """\
class Node:
    def __init__(self, v, inputs=(), locals_=()):
        self.v, self.g, self.inputs, self.locals_ = v, 0.0, inputs, locals_
    def __mul__(self, other):
        return Node(self.v * other.v, (self, other), (other.v, self.v))
    def __add__(self, other):
        return Node(self.v + other.v, (self, other), (1.0, 1.0))
    def backprop(self, bp):
        self.g += bp
        for inp, d in zip(self.inputs, self.locals_):
            inp.backprop(bp * d)

w, x = Node(0.5), Node(2.0)
for step in range(2):
    h = w * x
    out = h * h + h
    w.g = x.g = 0.0
    out.backprop(1.0)
    w.v -= 0.1 * w.g
"""

GATE_ENGINE = """\
class Unit:
    def __init__(self, value):
        self.value, self.grad = value, 0.0

class Mul:
    def forward(self, a, b):
        self.a, self.b, self.top = a, b, Unit(a.value * b.value)
        return self.top
    def backward(self):
        self.a.grad += self.b.value * self.top.grad
        self.b.grad += self.a.value * self.top.grad

def backprop(gates):
    for gate in reversed(gates):
        gate.backward()

w, x = Unit(0.5), Unit(2.0)
for step in range(2):
    g1, g2 = Mul(), Mul()
    h = g1.forward(w, x)
    out = g2.forward(h, h)
    w.grad = x.grad = 0.0
    out.grad = 1.0
    backprop([g1, g2])
    w.value -= 0.1 * w.grad
"""

TAPE_ENGINE = """\
class Entry:
    def __init__(self, value, parents=()):
        self.value, self.adjoint, self.parents = value, 0.0, parents  # (index, weight) pairs

def mul(tape, i, j):
    tape.append(Entry(tape[i].value * tape[j].value, ((i, tape[j].value), (j, tape[i].value))))
    return len(tape) - 1

def backward(tape, out):
    tape[out].adjoint = 1.0
    for i in reversed(range(len(tape))):
        entry = tape[i]
        for p, weight in entry.parents:
            tape[p].adjoint += weight * entry.adjoint

tape = [Entry(0.5), Entry(2.0)]
for step in range(3):
    del tape[2:]
    tape[0].adjoint = tape[1].adjoint = 0.0
    h = mul(tape, 0, 1)
    out = mul(tape, h, h)
    backward(tape, out)
    tape[0].value -= 0.1 * tape[0].adjoint
"""

CONSUMER_ENGINE = """\
class Variable:
    all_vars = []
    def __init__(self, value):
        self.value, self.derivative, self.adjoints = value, 0.0, []  # (consumer, local) pairs
        Variable.all_vars.append(self)
    def __mul__(self, other):
        result = Variable(self.value * other.value)
        self.adjoints.append((result, other.value))
        other.adjoints.append((result, self.value))
        return result

def diff(output):
    for var in Variable.all_vars:
        var.derivative = 0.0
    output.derivative = 1.0
    for v in reversed(Variable.all_vars):
        if v is output:
            continue
        for consumer, local in v.adjoints:
            v.derivative += local * consumer.derivative

w, x = Variable(0.5), Variable(2.0)
for step in range(2):
    del Variable.all_vars[2:]
    w.adjoints, x.adjoints = [], []
    h = w * x
    out = h * h
    diff(out)
    w.value -= 0.1 * w.derivative
"""


# The order comes from a method, which a module-level helper fills: a list handed in.
HELPER_ENGINE = """
_visited = []  # kept to print when debugging


def _walk(node, seen, out):
    seen.add(node)
    for p in node.prev:
        if p not in seen:
            _walk(p, seen, out)
    out.append(node)
    return out


class V:
    def __init__(self, data, prev=()):
        self.data, self.grad, self.prev, self.rule = data, 0.0, prev, None

    def __mul__(self, other):
        out = V(self.data * other.data, (self, other))
        def rule():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out.rule = rule
        return out

    def order(self):
        return _walk(self, set(), [])

    def backward(self):
        self.grad = 1.0
        for v in reversed(self.order()):
            if v.rule:
                v.rule()


w = V(0.5)
for step in range(2):
    w.grad = 0.0
    loss = w * V(3.0) * w
    loss.backward()
    w.data -= 0.1 * w.grad
print(round(w.data, 6))
"""


def serious(tmp_path, source: str, find: str = "", replace: str = "") -> list:
    """(kind, line) of each warning and error for ``source`` with ``find`` replaced."""
    assert find in source
    path = tmp_path / "engine.py"
    path.write_text(source.replace(find, replace, 1) if find else source)
    return sorted({(f.finding, int(f.site.rpartition(":")[2])) for f in traced_script(path)
                   if f.severity in ("warning", "error")})


def line(source: str, text: str) -> int:
    (found,) = [n for n, code in enumerate(source.splitlines(), 1) if text in code]
    return found


class TestCorrectEnginesStaySilent:
    """The engines below, without their bug, get no warning or error."""

    @pytest.mark.parametrize("source", [ORDER_ENGINE, CONSUMER_ENGINE, RECURSIVE_ENGINE, GATE_ENGINE,
                                        TAPE_ENGINE, HELPER_ENGINE],
                             ids=["order", "consumers", "recursive", "gates", "tape", "helper"])
    def test_a_correct_engine_of_each_traversal_gets_no_finding(self, tmp_path, source):
        """Each correct engine is silent, so each finding below comes from its bug."""
        assert serious(tmp_path, source) == []


class TestRulesAppliedInline:
    """An engine loop that applies each node's rule itself: ``for node in order: for parent ...``."""

    def test_a_root_method_walking_the_order_forwards_fires_nodes_too_early(self, tmp_path):
        """Each write belongs to the loop's node, not to the root whose method runs the
        loop; the finding names the loop over the nodes, not the loop over one node's parents."""
        found = serious(tmp_path, ORDER_ENGINE, "for node in reversed(order):", "for node in order:")
        assert found == [("fired_too_early", line(ORDER_ENGINE, "for node in reversed(order):"))]

    def test_nodes_known_only_from_consumer_lists_can_fire_too_early(self, tmp_path):
        """Parents read backwards from ``adjoints`` are still parents: walking the list in
        creation order computes h before out has its derivative."""
        found = serious(tmp_path, CONSUMER_ENGINE, "for v in reversed(Variable.all_vars):",
                        "for v in Variable.all_vars:")
        assert found == [("fired_too_early", line(CONSUMER_ENGINE, "for v in reversed(Variable.all_vars):"))]


class TestRecursiveBackprop:
    """A recursive ``backprop(bp)`` that adds ``bp`` to itself, then passes on ``bp * d``."""

    def test_passing_on_the_accumulated_grad_instead_of_bp_is_a_second_push(self, tmp_path):
        """A node reached by two paths sends its first part again: fired_twice at the call."""
        found = serious(tmp_path, RECURSIVE_ENGINE, "inp.backprop(bp * d)", "inp.backprop(self.g * d)")
        assert found == [("fired_twice", line(RECURSIVE_ENGINE, "inp.backprop(bp * d)"))]


class TestGates:
    """Gates whose ``backward()`` chains their output's grad into their inputs."""

    def test_running_every_gate_again_is_a_new_pass_over_stale_grads(self, tmp_path):
        """``backprop(gates); backprop(gates)``: the second call is a pass of its own."""
        found = serious(tmp_path, GATE_ENGINE, "backprop([g1, g2])", "backprop([g1, g2]); backprop([g1, g2])")
        assert found == [("stale_gradient", line(GATE_ENGINE, "backprop([g1, g2])"))]


    def test_a_second_call_on_one_line_is_a_new_pass_while_the_script_is_line_traced(
            self, tmp_path, monkeypatch):
        """With another engine's sweep watched (a trace function set), the second call's
        frames may take the first's ids: the call is still told apart by where it was made."""
        (tmp_path / "sweeping.py").write_text(SWEEPING_ENGINE)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "sweeping", raising=False)
        source = "import sweeping\n" + GATE_ENGINE
        found = serious(tmp_path, source, "backprop([g1, g2])", "backprop([g1, g2]); backprop([g1, g2])")
        assert found == [("stale_gradient", line(source, "backprop([g1, g2])"))]


# An engine whose sweep fills a dict seeded with its root: imported, it is line-traced.
SWEEPING_ENGINE = """\
class Leaf:
    def __init__(self, data, parents=()):
        self.data, self.grad, self.parents = data, None, parents

    def propagate(self):
        grads = {self: 1.0}
        for node in [self]:
            for parent in node.parents:
                grads[parent] = grads.get(parent, 0.0) + grads[node]
"""


class TestTapes:
    """A tape the script keeps at module level and hands to the engine's sweep."""

    def test_entries_left_from_the_last_step_fire_outside_the_graph(self, tmp_path):
        """The sweep goes on into old entries: named at the start of the training step,
        where the tape must be emptied."""
        found = serious(tmp_path, TAPE_ENGINE, "    del tape[2:]", "    pass")
        step = line(TAPE_ENGINE, "del tape[2:]")
        assert ("fired_outside_graph", step) in found and {kind for kind, _ in found} <= {
            "fired_outside_graph", "polluted_grad", "stale_gradient"}


# A tape object of the engine's module, imported by the script, holding its entries.
TAPE_OBJECT_ENGINE = """\
class Var:
    def __init__(self, value, parents=()):
        self.value, self.grad, self.parents = value, 0.0, parents  # (parent, weight) pairs
        TAPE.entries.append(self)

    def __mul__(self, other):
        return Var(self.value * other.value, ((self, other.value), (other, self.value)))


class Tape:
    def __init__(self):
        self.entries = []


TAPE = Tape()


def grad(tape, out):
    out.grad = 1.0
    for var in reversed(tape.entries):
        for parent, weight in var.parents:
            parent.grad += weight * var.grad
"""

TAPE_OBJECT_SCRIPT = """\
from tape_engine import TAPE, Var, grad

w = Var(0.5)
for step in range(3):
    TAPE.entries = [w]
    w.grad = 0.0
    h = w * w
    grad(TAPE, h * h)
    w.value -= 0.1 * w.grad
"""


class TestTapeObjects:
    """A tape object the engine's module makes and the script empties at each step."""

    def test_a_tape_never_emptied_is_named_where_the_step_begins(self, tmp_path, monkeypatch):
        """The sweep walks ``tape.entries`` of the script's ``TAPE``: empty it at the step's first line."""
        (tmp_path / "tape_engine.py").write_text(TAPE_OBJECT_ENGINE)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "tape_engine", raising=False)
        assert serious(tmp_path, TAPE_OBJECT_SCRIPT) == []
        monkeypatch.delitem(sys.modules, "tape_engine")
        found = serious(tmp_path, TAPE_OBJECT_SCRIPT, "    TAPE.entries = [w]", "    pass")
        assert ("fired_outside_graph", line(TAPE_OBJECT_SCRIPT, "TAPE.entries = [w]")) in found


class TestOrdersFilledByHelpers:
    """A loop over ``self.order()``, whose helper appends to a list it was handed."""

    def test_a_module_level_list_handed_to_the_helper_is_named(self, tmp_path):
        """The old graph's nodes are still in ``_visited``: the finding names its assignment."""
        found = serious(tmp_path, HELPER_ENGINE, "return _walk(self, set(), [])",
                        "return _walk(self, set(), _visited)")
        assert ("fired_outside_graph", line(HELPER_ENGINE, "_visited = []")) in found


class TestConstantsAreNotUnreached:
    """Leaves the script cannot read the gradient of are not grad_never_reached."""

    def test_wrapped_numbers_and_a_rebound_start_value_are_left_alone(self, tmp_path):
        """An engine that skips numbers it wrapped itself, and a ``total = Var(0.0)`` later
        rebound, gets no finding at all, but a named parameter it skips is still reported."""
        path = tmp_path / "consts.py"
        path.write_text(textwrap.dedent("""\
            class Var:
                def __init__(self, v, inputs=(), locals_=(), const=False):
                    self.v, self.grad, self.inputs, self.locals_, self.const = v, 0.0, inputs, locals_, const
                def __mul__(self, other):
                    other = other if isinstance(other, Var) else Var(other, const=True)
                    return Var(self.v * other.v, (self, other), (other.v, self.v))
                def __add__(self, other):
                    return Var(self.v + other.v, (self, other), (1.0, 1.0))
            def backward(node):
                for inp, local in zip(node.inputs, node.locals_):
                    if not inp.const:
                        inp.grad += local * node.grad
                        backward(inp)
            w = Var(0.5)
            skipped = Var(0.1, const=True)
            total = Var(0.0, const=True)
            total = total + w * 3.0
            loss = total + skipped
            loss.grad = 1.0
            backward(loss)
        """))
        found = [(f.finding, f.names) for f in traced_script(path)]
        assert found == [("grad_never_reached", ("skipped",))]

"""Nodes that are finished after their ``__init__``: read once their line is done, never changed."""

from __future__ import annotations

import dis
import subprocess
import sys
import textwrap

from adapting import class_dict, of_kind, run_source
from autodiff_trace.adapters.bytecode import assigns_over

# A Value that names its op from the method that called its constructor.
FRAME_NAMED = '''
import sys

SYMBOLS = {"__add__": "+", "__mul__": "*"}


class Value:
    def __init__(self, data, _children=()):
        self.data, self.grad, self._prev = data, 0.0, tuple(_children)
        self._backward = lambda: None
        self._op = SYMBOLS.get(sys._getframe(1).f_code.co_name, "")

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        topo, seen = [], set()
        def build(v):
            if v not in seen:
                seen.add(v)
                for p in v._prev:
                    build(p)
                topo.append(v)
        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


w, b = Value(0.5), Value(-0.2)
for step in range(2):
    loss = w * w + b
    loss.backward()
    print(step, loss._op, (w * b)._op, round(w.grad, 6), round(b.grad, 6))
'''

# Early tinygrad's shape: an op makes its result, then links it to a context holding the parents.
LINKED_AFTER = '''
class Tensor:
    def __init__(self, data):
        self.data, self.grad, self._ctx = float(data), None, None

    def backward(self):
        order, seen = [], set()
        def walk(t):
            seen.add(t)
            if t._ctx:
                for p in t._ctx.parents:
                    if p not in seen:
                        walk(p)
                order.append(t)
        walk(self)
        self.grad = 1.0
        for t in reversed(order):
            for p, g in zip(t._ctx.parents, t._ctx.backward(t.grad)):
                p.grad = g if p.grad is None else p.grad + g


class Mul:
    def __init__(self, *parents):
        self.parents = parents

    def backward(self, g):
        x, y = self.parents
        return y.data * g, x.data * g

    @classmethod
    def apply(cls, x, y):
        ctx = cls(x, y)
        ret = Tensor(x.data * y.data)
        ret._ctx = ctx
        return ret


a, b = Tensor(3.0), Tensor(-2.0)
c = Mul.apply(a, b)
z = Mul.apply(c, a)
z.backward()
print(a.grad, b.grad)
'''


def _line(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if text in line)


def _plain(tmp_path, source: str) -> str:
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout


class TestClassesReadingTheirCallersFrames:
    """A node class whose constructor looks at the frame that called it sees the user's own."""

    def test_the_script_prints_the_same_ops_traced(self, tmp_path, capsys):
        """``sys._getframe(1)`` in ``__init__`` still finds ``__add__`` and ``__mul__``, not a hook."""
        plain = _plain(tmp_path, FRAME_NAMED)
        run_source(tmp_path, FRAME_NAMED)
        assert capsys.readouterr().out == plain
        assert plain.startswith("0 + *")

    def test_its_nodes_and_passes_are_traced_with_their_parents(self, tmp_path):
        """Each pass's order holds the whole graph of its loss, and the leaves get the printed grads."""
        events, _ = run_source(tmp_path, FRAME_NAMED)
        starts = of_kind(events, "backward_started")
        assert len(starts) == 2 and all(len(s.order) == 4 for s in starts)
        made = {e.node: e for e in of_kind(events, "node_created")}
        assert made[starts[0].root].op == "+" and len(made[starts[0].root].parents) == 2

    def test_a_second_pass_without_zeroing_is_seen_as_stale(self, tmp_path):
        """Grads left from step 0 are there when step 1's pass begins, and it is said."""
        events, _ = run_source(tmp_path, FRAME_NAMED)
        second = of_kind(events, "backward_started")[1]
        assert any(g != 0 for g in second.grads_before[1:])

    def test_the_class_is_restored_exactly(self, tmp_path):
        """``__new__`` put in for tracing is gone afterwards; every other entry is as it was."""
        script = tmp_path / "engine.py"
        script.write_text(textwrap.dedent(FRAME_NAMED))
        sys.path.insert(0, str(tmp_path))
        try:
            import engine  # noqa: F401  (the class to compare)
            before = class_dict(engine.Value)
            run_source(tmp_path, "import engine\nv = engine.Value(1.0) * engine.Value(2.0)\nv.backward()\n")
            assert class_dict(engine.Value) == before and "__new__" not in before
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("engine", None)


class TestOpsThatLinkTheirResultAfterMakingIt:
    """``ret = Tensor(...)``; ``ret._ctx = ctx``: the node's parents are read once its line is done."""

    def test_each_result_is_made_with_its_parents_and_named_by_its_context(self, tmp_path, capsys):
        events, _ = run_source(tmp_path, LINKED_AFTER)
        made = {e.name: e for e in of_kind(events, "node_created")}
        assert made["z"].op == "mul" and len(made["z"].parents) == 2
        assert made["c"].parents == (made["a"].node, made["b"].node)
        assert capsys.readouterr().out == "-12.0 9.0\n"

    def test_the_pass_credits_each_write_to_the_node_whose_rule_made_it(self, tmp_path):
        """Writes done by the engine loop belong to the node it is walking, not to nobody."""
        events, _ = run_source(tmp_path, LINKED_AFTER)
        root = of_kind(events, "backward_started")[0].root
        writes = [w for w in of_kind(events, "grad_accumulated") if w.target != root]
        assert len(writes) == 4 and all(w.fired_by is not None for w in writes)
        assert not [w for w in writes if w.replaced and w.grad_before != 0]


# Ops registered after the class as partialmethods, bound to operators; numbers wrapped
# in a comprehension inside the op.
REGISTERED = '''
from functools import partialmethod


class Tensor:
    def __init__(self, data, requires_grad=True):
        self.data, self.grad, self.requires_grad, self._ctx = float(data), None, requires_grad, None


class Mul:
    def __init__(self, *parents):
        self.parents = parents

    @staticmethod
    def apply(self, fn, *xs):
        xs = [x if isinstance(x, Tensor) else Tensor(x, requires_grad=False) for x in xs]
        ret = Tensor(self.data * xs[0].data)
        ret._ctx = fn(self, *xs)
        return ret


Tensor.mul = partialmethod(Mul.apply, Mul)
Tensor.__mul__ = Tensor.mul

w = Tensor(2.0)
u = w * 3.0
v = w * 4.0
'''


class TestOpsCalledThroughWrappers:
    """An op reached through ``functools.partialmethod`` names its node at the user's line."""

    def test_the_result_is_named_after_the_line_that_asked_for_it(self, tmp_path):
        events, _ = run_source(tmp_path, REGISTERED)
        made = {e.name: e for e in of_kind(events, "node_created")}
        assert made["v"].op == "mul" and made["v"].site.endswith(f":{_line(REGISTERED, 'v = w * 4.0')}")

    def test_a_number_the_op_wraps_is_made_on_the_users_line(self, tmp_path):
        """The constant 4.0 of ``v = w * 4.0`` is located there, not inside the op."""
        events, _ = run_source(tmp_path, REGISTERED)
        constant = [e for e in of_kind(events, "node_created") if e.value == 4.0]
        assert [e.site.rpartition(":")[2] for e in constant] == [str(_line(REGISTERED, "v = w * 4.0"))]


class TestConditionalWrites:
    """A grad write whose right side adds to the grad in one branch is an update, not an overwrite."""

    @staticmethod
    def _replaces(fn) -> bool:
        store = next(i for i in dis.get_instructions(fn) if i.opname == "STORE_ATTR")
        return assigns_over(fn.__code__, store.offset)

    def test_starting_from_none_then_adding_is_an_update(self):
        def rule(t, g):
            t.grad = g if t.grad is None else t.grad + g
        assert not self._replaces(rule)

    def test_the_branches_written_the_other_way_round_are_an_update(self):
        def rule(t, g):
            t.grad = t.grad + g if t.grad is not None else g
        assert not self._replaces(rule)

    def test_testing_the_grad_then_replacing_it_is_an_overwrite(self):
        """Reading ``t.grad`` only to test it does not make the write an update."""
        def rule(t, g):
            t.grad = g if t.grad is None else g
        assert self._replaces(rule)

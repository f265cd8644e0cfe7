"""The engine's hot path: values and derivatives written out in the ops and the backward
loop agree with the derivative table, node ids cost no memory, the order is by id."""

from __future__ import annotations

import math
import random
import threading

import pytest

from autodiff_trace import Value, topological_order, trace
from autodiff_trace.engine.ids import BLOCK, ids_from
from autodiff_trace.engine.rules import RULES

OPERANDS = [-2.5, -1.0, -0.0, 0.0, 0.3, 1.0, 2.75]


def build(name: str, x: float, y: float):
    """The node of op ``name`` on fresh leaves x (and y), through the public operators."""
    a, b = Value(x), Value(y)
    ops = {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
        "pow": lambda: a ** b, "powc": lambda: a ** y, "neg": lambda: -a,
        "sin": a.sin, "cos": a.cos, "tan": a.tan, "log": a.log, "exp": a.exp, "sqrt": a.sqrt,
        "relu": a.relu, "sigmoid": a.sigmoid, "tanh": a.tanh,
    }
    return ops[name](), a, b


def defined_cases(name: str):
    """Operand pairs on which op ``name`` has a value (others raise DomainError)."""
    rule = RULES[name]
    for x in OPERANDS:
        for y in OPERANDS:
            try:
                rule.value(x, y if rule.arity == 2 or name == "powc" else None)
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            yield x, y


def same(p: float, q: float) -> bool:
    """Equal to the last bit, NaN equal to NaN, and 0.0 told from -0.0."""
    return (math.isnan(p) and math.isnan(q)) or (p == q and math.copysign(1, p) == math.copysign(1, q))


OPS = sorted(name for name in RULES if name != "const")


class TestTheTableStaysTheSourceOfTruth:
    @pytest.mark.parametrize("name", OPS)
    def test_every_op_computes_its_rows_value(self, name):
        """An op's value, written out in the operator or not, is its row's ``value``."""
        rule = RULES[name]
        for x, y in defined_cases(name):
            out, _, _ = build(name, x, y)
            expected = rule.value(x, y if rule.arity == 2 or name == "powc" else None)
            assert same(out.data, expected), (name, x, y)

    @pytest.mark.parametrize("name", OPS)
    def test_every_op_passes_on_its_rows_local_derivative_times_the_seed(self, name):
        """Untraced, each parent's grad becomes ``0.0 + local * seed`` with the row's ``local``."""
        rule = RULES[name]
        for x, y in defined_cases(name):
            out, a, b = build(name, x, y)
            try:
                local = rule.local(x, y if rule.arity == 2 or name == "powc" else None, out.data)
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            out.backward(-0.75)
            if rule.arity == 2:
                assert same(a.grad, 0.0 + local[0] * -0.75), (name, x, y)
                assert same(b.grad, 0.0 + local[1] * -0.75), (name, x, y)
            else:
                assert same(a.grad, 0.0 + local * -0.75), (name, x, y)

    @pytest.mark.parametrize("seed", range(8))
    def test_an_untraced_pass_gives_the_grads_of_a_traced_one(self, seed):
        """A random graph of every op gets the same grads, to the bit, traced or not, and
        again after a second pass that adds to the first."""
        untraced = random_graph(seed)
        for _ in range(2):
            untraced[-1].backward()
        with trace():
            traced = random_graph(seed)
            for _ in range(2):
                traced[-1].backward()
        assert [n.data for n in untraced] == [n.data for n in traced]
        assert all(same(u.grad, t.grad) for u, t in zip(untraced, traced))


def random_graph(seed: int) -> list:
    """Nodes made by every op from a few leaves, reusing nodes so that grads add up."""
    rng = random.Random(seed)
    nodes = [Value(rng.uniform(-2, 2)) for _ in range(4)]
    unary = [lambda v: -v, Value.relu, Value.tanh, Value.sigmoid, Value.sin, Value.cos,
             lambda v: v.tanh().tan(), lambda v: v.tanh().exp(), lambda v: (v * v + 1).log(),
             lambda v: (v * v + 1).sqrt(), lambda v: v ** 3, lambda v: (v * v + 0.5) ** -0.5]
    binary = [Value.__add__, Value.__sub__, Value.__mul__, lambda a, b: a / (b * b + 1),
              lambda a, b: (a * a + 1) ** b.tanh(), lambda a, b: 2.0 - a * b]
    for _ in range(60):
        if rng.random() < 0.5:
            nodes.append(rng.choice(unary)(rng.choice(nodes[-8:])))
        else:
            nodes.append(rng.choice(binary)(rng.choice(nodes), rng.choice(nodes[-6:])))
    total = sum(nodes[-10:], nodes[0])
    return [*nodes, total]


class TestNodeIds:
    def test_ids_of_nodes_made_in_a_row_count_up_across_blocks(self):
        """Ids are consecutive, whatever block they fall in."""
        nodes = [Value(float(i)) for i in range(3 * BLOCK)]
        assert [n.id for n in nodes] == list(range(nodes[0].id, nodes[0].id + 3 * BLOCK))

    def test_a_block_is_one_int_shared_by_its_nodes(self):
        """Numbering a node allocates no int of its own."""
        nodes = [Value(float(i)) for i in range(4 * BLOCK)]
        assert len({id(n._block) for n in nodes}) <= 5

    def test_ids_from_starts_where_asked(self):
        """``ids_from(n)`` numbers from n on, inside a block or at its edge."""
        for first in (1, BLOCK - 1, BLOCK, 5 * BLOCK + 3):
            pairs = ids_from(first)
            assert [sum(next(pairs)) for _ in range(3)] == [first, first + 1, first + 2]

    def test_threads_making_nodes_at_once_never_share_an_id(self):
        """Taking the next id is atomic: nodes made on four threads all differ."""
        made = []

        def make():
            made.append([Value(1.0) for _ in range(20 * BLOCK)])

        threads = [threading.Thread(target=make) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [n.id for nodes in made for n in nodes]
        assert len(set(ids)) == len(ids) == 80 * BLOCK


class TestOrderAndGradients:
    @pytest.mark.parametrize("seed", range(5))
    def test_the_order_is_every_reachable_node_newest_first(self, seed):
        """Filing nodes by block and offset gives the order of a sort by id."""
        old = [Value(float(i)) for i in range(3)]  # leaves some blocks before the rest
        _ = [Value(0.0) for _ in range(2 * BLOCK)]
        nodes = old + random_graph(seed)
        root = nodes[-1] * old[2] + old[0]
        reachable, stack = {root}, [root]
        while stack:
            for parent in stack.pop().parents:
                if parent not in reachable:
                    reachable.add(parent)
                    stack.append(parent)
        assert topological_order(root) == sorted(reachable, key=lambda n: n.id, reverse=True)

    def test_a_single_contribution_is_kept_as_the_same_float(self):
        """Both parents of a sum hold the sum's own gradient object: no float is made for them."""
        a, b = Value(1.0), Value(2.0)
        out = (a + b) * 3.0
        out.backward()
        assert a.grad == 3.0 and a.grad is b.grad

    def test_a_pass_cut_short_leaves_every_grad_a_number(self):
        """A local derivative that overflows stops the pass; each grad is still a float."""
        x = Value(1e-160)
        y = (x ** -1) * 2.0  # d/dx x**-1 = -x**-2 overflows
        with pytest.raises(OverflowError):
            y.backward()
        assert all(isinstance(n.grad, float) for n in topological_order(y))

    def test_a_second_pass_adds_each_contribution_in_turn(self):
        """Grads left by a pass get this pass's contributions one at a time, newest node's
        first, not their sum (here the two differ in the last bit)."""
        x = Value(1.0)
        y = x * 0.6 + x * 0.63 + x * 0.07
        y.backward()
        first = x.grad
        y.backward()
        assert x.grad == ((first + 0.07) + 0.63) + 0.6 != first + ((0.07 + 0.63) + 0.6)

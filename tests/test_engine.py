"""The engine: values, the derivative table, backward passes, names and errors."""

import math
import sys

import pytest

from autodiff_trace import (
    DomainError, Value, add, backward, cos, div, exp, log, mul, neg, power, relu, sigmoid, sin,
    sqrt, sub, tan, tanh, trace, zero_grad,
)

UNARY = {
    "sin": (lambda v: v.sin(), math.sin),
    "cos": (lambda v: v.cos(), math.cos),
    "tan": (lambda v: v.tan(), math.tan),
    "log": (lambda v: v.log(), math.log),
    "exp": (lambda v: v.exp(), math.exp),
    "sqrt": (lambda v: v.sqrt(), math.sqrt),
    "relu": (lambda v: v.relu(), lambda x: max(x, 0.0)),
    "sigmoid": (lambda v: v.sigmoid(), lambda x: 1 / (1 + math.exp(-x))),
    "tanh": (lambda v: v.tanh(), math.tanh),
    "neg": (lambda v: -v, lambda x: -x),
    "pow3": (lambda v: v ** 3, lambda x: x ** 3),
    "pow-half": (lambda v: v ** 0.5, lambda x: x ** 0.5),
    "pow-neg": (lambda v: v ** -2, lambda x: x ** -2),
    "radd": (lambda v: 2 + v, lambda x: 2 + x),
    "rsub": (lambda v: 2 - v, lambda x: 2 - x),
    "rmul": (lambda v: 3 * v, lambda x: 3 * x),
    "rdiv": (lambda v: 3 / v, lambda x: 3 / x),
    "rpow": (lambda v: 2 ** v, lambda x: 2 ** x),
}
BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b),
    "pow": (lambda a, b: a ** b),
}
POINTS = [0.3, 0.9, 1.7, 2.6]


def central_difference(f, x: float, h: float = 1e-6) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


class TestDerivativeTable:
    @pytest.mark.parametrize("op", sorted(UNARY))
    @pytest.mark.parametrize("x", POINTS)
    def test_unary_op_matches_value_and_central_difference(self, op, x):
        """Every unary op computes the math value and its grad matches a central difference."""
        build, reference = UNARY[op]
        v = Value(x)
        out = build(v)
        out.backward()
        assert out.data == pytest.approx(reference(x), rel=1e-12)
        assert v.grad == pytest.approx(central_difference(reference, x), rel=1e-6, abs=1e-8)

    @pytest.mark.parametrize("op", sorted(BINARY))
    @pytest.mark.parametrize("x,y", [(0.3, 1.7), (2.6, 0.9), (1.5, -1.25)])
    def test_binary_op_grads_match_central_differences(self, op, x, y):
        """Both parents of every binary op get d out / d parent."""
        if op == "pow" and x < 0:
            pytest.skip("negative base with a node exponent is a domain error")
        f = BINARY[op]
        a, b = Value(x), Value(y)
        out = f(a, b)
        out.backward()
        assert out.data == pytest.approx(f(x, y))
        assert a.grad == pytest.approx(central_difference(lambda t: f(t, y), x), rel=1e-6)
        assert b.grad == pytest.approx(central_difference(lambda t: f(x, t), y), rel=1e-6)

    def test_module_functions_match_methods(self):
        """The functional style gives the same values as the operators and methods."""
        x, y = Value(0.7), Value(1.9)
        pairs = [
            (add(x, y), x + y), (sub(x, y), x - y), (mul(x, y), x * y), (div(x, y), x / y),
            (power(x, y), x ** y), (neg(x), -x), (sin(x), x.sin()), (cos(x), x.cos()),
            (tan(x), x.tan()), (log(x), x.log()), (exp(x), x.exp()), (sqrt(x), x.sqrt()),
            (relu(x), x.relu()), (sigmoid(x), x.sigmoid()), (tanh(x), x.tanh()),
        ]
        for functional, operator in pairs:
            assert functional.data == operator.data
            assert functional.op == operator.op

    def test_module_functions_accept_plain_numbers(self):
        """``add(2, x)`` wraps the number, as the operators do."""
        x = Value(3.0)
        out = add(2, x)
        out.backward()
        assert (out.data, x.grad) == (5.0, 1.0)

    def test_relu_passes_no_gradient_below_zero(self):
        """relu's local derivative is 0 for a negative input."""
        x = Value(-2.0)
        x.relu().backward()
        assert x.grad == 0.0

    def test_sigmoid_does_not_overflow_for_large_negative_inputs(self):
        """sigmoid(-1000) is 0 with grad 0, not an OverflowError."""
        x = Value(-1000.0)
        out = x.sigmoid()
        out.backward()
        assert (out.data, x.grad) == (0.0, 0.0)


class TestBackward:
    def test_seed_worked_example(self):
        """y = (x + 2)^2 at x = 2 gives y = 16 and dy/dx = 8, as in the seed's worked example."""
        x = Value(2.0)
        u = x + 2
        y = u ** 2
        y.backward()
        assert (y.data, u.grad, x.grad) == (16.0, 8.0, 8.0)

    def test_branching_accumulates_both_paths(self):
        """x used twice receives both contributions: d(x + x)/dx = 2."""
        x = Value(5.0)
        z = x + x
        z.backward()
        assert x.grad == 2.0

    def test_notebook_sequence_under_our_engine(self):
        """The seed notebook's cells give 2, then 20 without zeroing, then 18 after zeroing."""
        x, y = Value(5), Value(4)
        z = add(x, x)
        backward(z)
        assert (z.grad, x.grad, y.grad) == (1.0, 2.0, 0.0)
        z = mul(add(x, y), add(x, y))
        backward(z)
        assert (z.grad, x.grad, y.grad) == (1.0, 20.0, 18.0)
        zero_grad([x, y])
        backward(z)
        assert (x.grad, y.grad) == (18.0, 18.0)

    def test_second_backward_on_same_graph_accumulates_like_pytorch(self):
        """A second pass adds exactly one more gradient: stale grads on inner nodes are not propagated."""
        x = Value(2.0)
        u = x * x
        y = u * 3
        y.backward()
        assert x.grad == 12.0
        y.backward()
        assert x.grad == 24.0  # micrograd's semantics would give 36

    def test_backward_takes_a_seed(self):
        """backward(seed) scales every gradient by the seed."""
        x = Value(3.0)
        (x * x).backward(0.5)
        assert x.grad == 3.0

    def test_zero_grad_on_a_root_resets_every_reachable_node(self):
        """root.zero_grad() leaves no gradient anywhere in its graph."""
        x = Value(1.5)
        y = (x * 2).tanh()
        y.backward()
        y.zero_grad()
        assert (x.grad, y.grad) == (0.0, 0.0)

    def test_million_node_chain(self):
        """A 1,000,000-op chain needs no recursion (micrograd stops at 496 steps)."""
        x = Value(1.0)
        out = x
        for _ in range(1_000_000):
            out = out + 1.0
        out.backward()
        assert out.data == 1_000_001.0
        assert x.grad == 1.0
        assert sys.getrecursionlimit() <= 10_000


class TestNamesAndIds:
    def test_ids_are_small_and_increasing(self):
        """Each node gets the next id, so a child's id is above its parents'."""
        a = Value(1.0)
        b = a * 2
        assert b.id > a.id
        assert b.id - a.id == 2  # the constant 2 took the id between them

    def test_explicit_name_is_kept(self):
        """Value(2.0, name="x") is called x, traced or not."""
        assert Value(2.0, name="x").label == "x"

    def test_names_are_inferred_from_assignments_while_tracing(self):
        """``u = x + 2`` names u; on a nested line the result takes the name, the rest op#id."""
        with trace():
            x = Value(2.0)
            u = x + 2
            z = mul(add(x, u), add(x, u))
        assert (x.label, u.label, z.label) == ("x", "u", "z")
        inner = z.parents
        assert [v.label for v in inner] == [f"add#{inner[0].id}", f"add#{inner[1].id}"]

    def test_a_loop_names_each_execution_of_its_line(self):
        """Each time a loop runs ``out = out * w`` the new result is called out."""
        with trace() as t:
            w = Value(0.5)
            out = Value(1.0)
            for _ in range(3):
                out = out * w
        names = [e.name for e in t.events if e.kind == "node_created" and e.op == "mul"]
        assert names == ["out", "out", "out"]

    def test_sum_over_a_generator_names_only_the_total(self):
        """``loss = sum(w * x for x in xs)``: the products come from the generator, the total is loss."""
        with trace() as t:
            w = Value(2.0)
            xs = [1.0, 2.0, 3.0]
            loss = sum(w * x for x in xs)
        made = [(e.op, e.name) for e in t.events if e.kind == "node_created" and e.op in ("mul", "add")]
        assert [name for op, name in made if op == "add"][-1] == "loss"
        assert [name for op, name in made].count("loss") == 1
        assert loss.label == "loss"

    def test_sum_names_only_the_total(self):
        """``total = sum(terms)`` names the last partial sum, which is the total."""
        with trace() as t:
            terms = [Value(1.0), Value(2.0), Value(3.0)]
            total = sum(terms)
        adds = [e for e in t.events if e.kind == "node_created" and e.op == "add"]
        assert [e.name for e in adds] == [f"add#{adds[0].node}", f"add#{adds[1].node}", "total"]
        assert total.label == "total"

    def test_site_is_recorded_while_tracing(self):
        """A traced node knows the file and line that made it; an untraced one does not."""
        with trace():
            traced_node = Value(1.0)
        untraced_node = Value(1.0)
        line = next(i for i, text in enumerate(open(__file__), 1) if "traced_node = Value(1.0)" in text)
        assert traced_node.site.endswith(f"test_engine.py:{line}")
        assert untraced_node.site is None

    def test_names_are_not_inferred_when_nobody_traces(self):
        """Without a tracer no source line is read: the default label is op#id."""
        x = Value(2.0)
        assert x.name is None and x.label == f"leaf#{x.id}"

    def test_repr_shows_data_grad_and_name(self):
        """repr reads like micrograd's, plus the name when there is one."""
        assert repr(Value(2.0, name="x")) == "Value(data=2.0, grad=0.0, name='x')"


class TestBadInput:
    def test_non_number_operand_names_its_type(self):
        """x + "a" raises TypeError naming str."""
        with pytest.raises(TypeError, match="got str"):
            Value(1.0) + "a"

    def test_non_number_data_names_its_type(self):
        """Value([1]) raises TypeError naming list."""
        with pytest.raises(TypeError, match="got list"):
            Value([1])

    @pytest.mark.parametrize("build,words", [
        (lambda: Value(-1.0).log(), "log(-1.0) is undefined: log needs a positive operand"),
        (lambda: Value(-4.0).sqrt(), "sqrt(-4.0) is undefined"),
        (lambda: Value(1.0) / 0, "div(1.0, 0.0) is undefined: the divisor must not be zero"),
        (lambda: Value(0.0) ** -1, "powc(0.0, -1.0) is undefined"),
        (lambda: Value(-2.0) ** Value(0.5), "pow(-2.0, 0.5) is undefined"),
        (lambda: Value(-8.0) ** 0.5, "powc(-8.0, 0.5) is undefined"),
    ])
    def test_domain_errors_name_op_operands_and_site(self, build, words):
        """A domain error says which op, which operands, and the line that made the node."""
        with pytest.raises(DomainError) as caught:
            build()
        assert words in str(caught.value)
        assert "test_engine.py:" in str(caught.value)

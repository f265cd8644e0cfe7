"""Specification of the numerical check: central differences from the recorded graph, and check_grads."""

from __future__ import annotations

import pytest

from autodiff_trace import Value, trace
from autodiff_trace.core.events import NodeCreated
from autodiff_trace.analysis.gradcheck import (
    GradcheckError, RecordedGraph, UncheckableGraph, check_grads, check_pass, op_value, resolve_op,
)
from autodiff_trace.core.model import TraceModel
from autodiff_trace.engine.rules import RULES
from streams import Stream

# One expression per row of the derivative table, with inputs inside its domain.
EXPRESSIONS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "powc": lambda a, b: a ** 3 + b ** 0.5,
    "neg": lambda a, b: -a * b,
    "sin": lambda a, b: a.sin() * b,
    "cos": lambda a, b: a.cos() * b,
    "tan": lambda a, b: a.tan() * b,
    "log": lambda a, b: a.log() * b,
    "exp": lambda a, b: a.exp() * b,
    "sqrt": lambda a, b: a.sqrt() * b,
    "relu": lambda a, b: (a - b).relu() + (b - a).relu(),
    "sigmoid": lambda a, b: a.sigmoid() * b,
    "tanh": lambda a, b: a.tanh() * b,
}


def recorded(fn, *values):
    """Trace ``fn`` on leaves holding ``values`` and its backward pass; return (model, pass, leaves)."""
    with trace() as t:
        leaves = [Value(v, name=f"in{i}") for i, v in enumerate(values)]
        fn(*leaves).backward()
    model = TraceModel.from_events(t.events)
    return model, model.passes[-1], leaves


class TestRecordedGraph:
    """Central differences over the graph the events recorded."""

    @pytest.mark.parametrize("op", sorted(EXPRESSIONS))
    def test_every_rule_agrees_with_central_differences(self, op):
        """For each op of the table, the recomputed derivative matches our engine's gradient."""
        model, p, leaves = recorded(EXPRESSIONS[op], 0.8, 1.7)
        graph = RecordedGraph(model.nodes, p.order)
        for leaf in leaves:
            assert graph.derivative(leaf.id) == pytest.approx(leaf.grad, rel=1e-6, abs=1e-8)

    def test_every_rule_of_the_table_has_an_expression(self):
        """The table above covers the whole rule table, so a new op cannot go unchecked."""
        assert set(EXPRESSIONS) == set(RULES) - {"const"}

    def test_leaf_outside_the_graph_has_derivative_zero(self):
        """A node the root does not depend on contributes nothing."""
        model, p, leaves = recorded(lambda a, b: a * 2, 1.0, 5.0)
        assert RecordedGraph(model.nodes, p.order).derivative(leaves[1].id) == 0.0

    def test_root_that_is_a_leaf_has_derivative_one(self):
        """Backward on a leaf itself: d x / d x = 1."""
        model, p, leaves = recorded(lambda a: a, 4.0)
        assert RecordedGraph(model.nodes, p.order).derivative(leaves[0].id) == pytest.approx(1.0)

    def test_recomputation_uses_the_recorded_values_not_the_live_nodes(self):
        """Changing a node after tracing does not change the check: only events are read."""
        model, p, leaves = recorded(lambda a, b: a * b, 2.0, 3.0)
        leaves[1].data = 100.0
        assert RecordedGraph(model.nodes, p.order).derivative(leaves[0].id) == pytest.approx(3.0)

    def test_moving_a_leaf_out_of_the_domain_is_a_value_error(self):
        """sqrt at exactly 0 cannot be evaluated at 0 - h, and the error says so."""
        model, p, leaves = recorded(lambda a: a.sqrt(), 0.0)
        with pytest.raises(ValueError, match=r"^moving it by 1e-06 makes an op undefined \(math domain error\)$"):
            RecordedGraph(model.nodes, p.order).derivative(leaves[0].id)

    def test_micrograd_spelling_of_ops_is_understood(self):
        """Ops named "+", "*", "**2" and "ReLU", as micrograd names them, are recomputed."""
        model = TraceModel.from_events([
            NodeCreated(0, 0.0, 1, "", 1.5, (), "a", None, None),
            NodeCreated(1, 0.0, 2, "", -0.5, (), "b", None, None),
            NodeCreated(2, 0.0, 3, "*", -0.75, (1, 2), "m", None, None),
            NodeCreated(3, 0.0, 4, "**2", 0.5625, (3,), "s", None, None),
            NodeCreated(4, 0.0, 5, "+", 2.0625, (4, 1), "t", None, None),
            NodeCreated(5, 0.0, 6, "ReLU", 2.0625, (5,), "r", None, None),
        ])
        graph = RecordedGraph(model.nodes, (6, 5, 4, 3, 1, 2))
        # r = (a b)^2 + a: d r/d a = 2 a b^2 + 1 = 1.75, d r/d b = 2 a^2 b = -2.25
        assert (round(graph.derivative(1), 6), round(graph.derivative(2), 6)) == (1.75, -2.25)

    def test_node_made_before_tracing_cannot_be_checked(self):
        """A pass visiting a node the trace never saw created is refused with its id."""
        model = TraceModel()
        with pytest.raises(UncheckableGraph, match=r"^node #9 was made before tracing began"):
            RecordedGraph(model.nodes, (9,))


class TestCheckPass:
    """A pass is checked against the seed its root was given, or not at all."""

    def test_a_pass_whose_seed_was_not_seen_is_skipped_not_called_wrong(self):
        """An engine keeping its seed in a dict it fills reports none: no gradient_mismatch follows."""
        s = Stream()
        s.node(1, "w", 3.0)
        s.node(2, "y", 6.0, (1, 1), "add")
        s.start(root=2, order=(2, 1), seed=0.0)
        s.write(1, 2, 2.0)
        s.finish(2)
        model = TraceModel.from_events(s.events)
        found = check_pass(model, model.passes[0])
        assert [(f.finding, "seed" in f.message) for f in found] == [("check_skipped", True)]

    def test_the_same_pass_with_its_seed_is_checked(self):
        """With the seed of 1 seen, d y/d w = 2 agrees with what the pass added: nothing is said."""
        s = Stream()
        s.node(1, "w", 3.0)
        s.node(2, "y", 6.0, (1, 1), "add")
        s.start(root=2, order=(2, 1))
        s.write(1, 2, 2.0)
        s.finish(2)
        model = TraceModel.from_events(s.events)
        assert check_pass(model, model.passes[0]) == []


class TestOps:
    """Reading op names as events spell them."""

    def test_op_value_applies_the_rule_table(self):
        """Values come from the table, with a constant power's exponent read from its name."""
        assert (op_value("div", (1.0, 4.0)), op_value("**0.5", (9.0,)), op_value("-", (5.0,))) == (
            0.25, 3.0, -5.0)

    def test_unknown_op_names_itself_and_its_arity(self):
        """An op with no rule raises UncheckableGraph naming it."""
        with pytest.raises(UncheckableGraph, match=r"^no derivative rule is known for the op 'softmax' "
                                                   r"with 2 operand\(s\)$"):
            resolve_op("softmax", 2)


class TestCheckGrads:
    """check_grads(fn, *inputs), in the style of torch.autograd.gradcheck."""

    def test_correct_function_returns_true(self):
        """Our engine's gradients of a composite function pass the check."""
        assert check_grads(lambda x, y: (x * y).tanh() + x.exp() / (y * y + 1), 0.3, -1.2) is True

    def test_inputs_may_be_values(self):
        """A Value input is used for its value and name; its own grad is left alone."""
        w = Value(2.0, name="w")
        assert check_grads(lambda v: v ** 3, w) is True
        assert w.grad == 0.0

    def test_data_changed_after_use_raises_with_both_numbers(self):
        """Changing b.data after a * b is built makes backward use 5.0 where the graph used 3.0."""
        def product(a, b):
            out = a * b
            b.data = 5.0  # a learner's bug: the graph recorded b = 3.0
            return out
        with pytest.raises(GradcheckError, match=r"^check_grads: the gradient for input 0 \(input 0 = 2\) "
                                                 r"is 5 by backward but 3 by central differences$"):
            check_grads(product, 2.0, 3.0)

    def test_raise_exception_false_returns_false(self):
        """With raise_exception=False a mismatch is a False result, as in PyTorch."""
        def sin_of_moved_leaf(a):
            out = a.sin()
            a.data = 0.0
            return out
        assert check_grads(sin_of_moved_leaf, 0.5, raise_exception=False) is False

    def test_input_at_a_domain_edge_cannot_be_checked(self):
        """sqrt at 0 is reported as uncheckable rather than as a wrong gradient."""
        with pytest.raises(GradcheckError, match=r"input 0 \(input 0 = 0\) cannot be checked: moving it"):
            check_grads(lambda a: a.sqrt(), 0.0)

    @pytest.mark.parametrize("call, error, message", [
        (lambda: check_grads(lambda a: a, "x"), TypeError,
         r"^check_grads: input 0 is a str \('x'\); pass numbers or Values$"),
        (lambda: check_grads(lambda a: 3.0, 1.0), TypeError, r"^check_grads: fn must return a Value, got float$"),
        (lambda: check_grads(lambda: None), ValueError, r"^check_grads: give at least one input"),
        (lambda: check_grads(5, 1.0), TypeError, r"^check_grads: fn must be callable, got int$"),
    ])
    def test_bad_arguments_are_one_line_errors(self, call, error, message):
        """Wrong inputs, outputs or functions are refused with what to pass instead."""
        with pytest.raises(error, match=message):
            call()

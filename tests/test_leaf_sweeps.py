"""Engines that keep the pass's gradients in a dict local to their backward function and
write a grad attribute only on the leaves (PyTorch's semantics on scalars, minitorch's
dict of derivatives): one backward() is one pass, the leaves' grads accumulate across
passes, and both the dict's entries and the leaves' writes are checked."""

from __future__ import annotations

import sys
import textwrap

import pytest

from adapting import of_kind, run_source
from diagnosing import line_of, traced_script
from streams import Stream

from autodiff_trace.analysis.diagnoser import diagnose

from autodiff_trace.adapters.gradmaps import keeps_its_dict, sweeps_in

LEAVES = """
    class Variable:
        def __init__(self, data, requires_grad=False, _parents=(), _vjp=None):
            self.data = data
            self.requires_grad = requires_grad or any(p.requires_grad for p in _parents)
            self.grad = None
            self._parents = _parents
            self._vjp = _vjp

        def __add__(self, other):
            return Variable(self.data + other.data, _parents=(self, other), _vjp=lambda g: (g, g))

        def __mul__(self, other):
            return Variable(self.data * other.data, _parents=(self, other),
                            _vjp=lambda g: (g * other.data, g * self.data))

        def backward(self):
            order, seen = [], set()

            def visit(v):
                if v not in seen:
                    seen.add(v)
                    for parent in v._parents:
                        visit(parent)
                    order.append(v)

            visit(self)
            grads = {self: 1.0}
            for v in reversed(order):
                g = grads.pop(v, None)
                if g is None:
                    continue
                if not v._parents:
                    if v.requires_grad:
                        v.grad = g if v.grad is None else v.grad + g
                    continue
                for parent, parent_grad in zip(v._parents, v._vjp(g)):
                    if parent.requires_grad:
                        grads[parent] = grads.get(parent, 0.0) + parent_grad

    w, b = Variable(0.5, requires_grad=True), Variable(-0.2, requires_grad=True)
    for batch in ([1.0, 3.0], [2.0, -1.0]):
        w.grad = b.grad = None
        for x in batch:
            h = w * Variable(x)
            loss = h * h + b * h
            loss.backward()
        w.data -= 0.1 * w.grad
        b.data -= 0.1 * b.grad
        print("grads", w.grad, b.grad)
"""

CONTEXT_NODES = """
    from dataclasses import dataclass

    from derivatives import backpropagate


    @dataclass
    class Context:
        saved: tuple = ()


    class Mul:
        @staticmethod
        def forward(ctx, a, b):
            ctx.saved = (a, b)
            return a * b

        @staticmethod
        def backward(ctx, d_output):
            a, b = ctx.saved
            return b * d_output, a * d_output


    class Add:
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, d_output):
            return d_output, d_output


    _count = [0]


    class Scalar:
        def __init__(self, value, fn=None, ctx=None, inputs=()):
            _count[0] += 1
            self.unique_id = _count[0]
            self.data = float(value)
            self.fn, self.ctx, self.parents = fn, ctx, inputs
            self.derivative = None

        def __mul__(self, other):
            return apply(Mul, self, other)

        def __add__(self, other):
            return apply(Add, self, other)

        def is_leaf(self):
            return self.fn is None

        def accumulate_derivative(self, x):
            if self.derivative is None:
                self.derivative = 0.0
            self.derivative += x

        def chain_rule(self, d_output):
            return list(zip(self.parents, self.fn.backward(self.ctx, d_output)))

        def backward(self):
            backpropagate(self, 1.0)


    def apply(fn, *inputs):
        ctx = Context()
        return Scalar(fn.forward(ctx, *(s.data for s in inputs)), fn, ctx, inputs)
"""

CONTEXT_SWEEP = """
    def backpropagate(variable, deriv):
        order, seen, stack = [], set(), [variable]
        while stack:
            var = stack.pop()
            if var.unique_id not in seen:
                seen.add(var.unique_id)
                order.append(var)
                stack.extend(var.parents)
        order.sort(key=lambda v: -v.unique_id)
        derivatives = {variable.unique_id: deriv}
        for var in order:
            d_out = derivatives[var.unique_id]
            if var.is_leaf():
                var.accumulate_derivative(d_out)
                continue
            for inp, d in var.chain_rule(d_out):
                derivatives.setdefault(inp.unique_id, 0.0)
                derivatives[inp.unique_id] += d
"""

CONTEXT_SCRIPT = """
    import os, sys
    sys.path.insert(0, os.path.dirname(__file__))
    from scalars import Scalar

    w, b = Scalar(0.5), Scalar(-0.3)
    for x in (1.0, 2.0, -1.5):
        loss = w * Scalar(x) * w + b * w
        w.derivative = b.derivative = None
        loss.backward()
        w.data -= 0.1 * w.derivative
        print("grads", w.derivative, b.derivative)
"""


def _script(tmp_path, source: str, find: str = "", replace: str = "", name: str = "train.py"):
    text = textwrap.dedent(source)
    if find:
        assert text.count(find) == 1, find
        text = text.replace(find, replace)
    path = tmp_path / name
    path.write_text(text)
    return path


def _named(findings, kind: str, path, line: int) -> bool:
    """Some finding of ``kind`` names line ``line`` of the file ``path``."""
    return any(f.finding == kind and (f.site or "").endswith(f"{path.name}:{line}") for f in findings)


def _problems(findings) -> list:
    return [f.finding for f in findings if f.severity in ("warning", "error")]


def _final_grads(events, names):
    """name -> the grad the last node of that name holds when the trace ends."""
    node_of = {e.name: e.node for e in of_kind(events, "node_created")}
    grads = {e.target: e.grad_after for e in of_kind(events, "grad_accumulated")}
    return [grads.get(node_of[n], 0.0) for n in names]


class TestRecognisingTheSweep:
    """A backward function of a node class with a grad attribute is watched when it starts
    its dict of gradients from its first argument."""

    def test_a_dict_started_from_the_first_argument_makes_a_sweep(self, tmp_path):
        """``{self: 1.0}`` and ``{variable.unique_id: deriv}`` begin a sweep's dict; a dict
        started from another name, or filled outside a loop, does not."""
        engine = tmp_path / "engine.py"
        engine.write_text(textwrap.dedent("""
            def backward(self, order):
                grads = {self: 1.0}
                for v in order:
                    grads[v] = grads.get(v, 0.0) + 1.0

            def backpropagate(variable, deriv):
                derivatives = {variable.unique_id: deriv}
                for v in variable.parents:
                    derivatives[v.unique_id] = deriv

            def from_other(order, root):
                grads = {root: 1.0}
                for v in order:
                    grads[v] = 1.0

            def once(self):
                grads = {self: 1.0}
                grads[self] = 2.0
        """))
        assert sweeps_in(str(engine), must_return=True) == {("backward", 2), ("backpropagate", 7)}

    def test_a_sweep_keeps_its_dict_unless_it_returns_it(self):
        """A sweep returning its dict hands the grads back; one that starts it from its first
        argument and returns nothing writes the leaves' grads itself."""
        def keeps(self, order):
            grads = {self: 1.0}
            for v in order:
                grads[v] = 1.0

        def returns(self, order):
            grads = {self: 1.0}
            for v in order:
                grads[v] = 1.0
            return grads

        assert keeps_its_dict(keeps.__code__) and not keeps_its_dict(returns.__code__)


class TestOneBackwardIsOnePass:
    """The dict's entries and the leaves' grad writes of one backward() make one pass."""

    def test_each_backward_call_is_one_pass_ending_with_the_printed_grads(self, tmp_path, capsys):
        """Four examples give four passes seeded with 1; the trace ends with the grads the
        script printed."""
        events, _ = run_source(tmp_path, LEAVES)
        printed = [float(n) for n in capsys.readouterr().out.splitlines()[-1].split()[1:]]
        started = of_kind(events, "backward_started")
        assert [e.seed for e in started] == [1.0] * 4
        assert len(of_kind(events, "backward_finished")) == 4
        assert _final_grads(events, ["w", "b"]) == pytest.approx(printed)
        assert sys.gettrace() is None

    def test_the_grads_before_a_pass_are_the_leaves_grad_attributes(self, tmp_path, capsys):
        """The second example of a mini-batch begins holding the first one's leaf grads."""
        events, _ = run_source(tmp_path, LEAVES)
        node_of = {e.name: e.node for e in of_kind(events, "node_created")}
        started = of_kind(events, "backward_started")
        before = [dict(zip(e.order, e.grads_before)).get(node_of["w"]) for e in started]
        assert before[0] == before[2] == 0.0 and before[1] != 0.0 and before[3] != 0.0

    def test_each_write_to_a_leaf_is_credited_to_the_node_whose_rule_made_it(self, tmp_path):
        """Writes under the root carry the node whose rule made them; storing the sum on the
        leaf is no write of its own."""
        events, _ = run_source(tmp_path, LEAVES)
        writes = [e for e in of_kind(events, "grad_accumulated") if e.pass_no == 2]
        assert writes[0].fired_by is None and all(w.fired_by is not None for w in writes[1:])
        node_of = {e.name: e.node for e in of_kind(events, "node_created")}
        assert len([w for w in writes if w.target == node_of["b"]]) == 1

    def test_adding_up_a_mini_batch_is_no_finding(self, tmp_path):
        """Zeroing between batches, one backward() per example: no warning, no error."""
        assert _problems(traced_script(_script(tmp_path, LEAVES))) == []

    def test_the_numerical_check_leaves_the_wrapped_numbers_alone(self, tmp_path):
        """With central differences on, the numbers the engine wrapped and never
        differentiates (``Variable(x)``) are no gradient_mismatch."""
        assert _problems(traced_script(_script(tmp_path, LEAVES), check_grads=True)) == []


class TestTheNumericalCheckOfWrappedNumbers:
    """A leaf no write reached is checked numerically only when the script named it."""

    def _stream(self, name: str):
        s = Stream()
        s.node(1, "w", 2.0, site="u.py:1")
        s.node(2, name, 3.0, site="u.py:2")
        s.node(3, "p", 6.0, (1, 2), "mul", site="u.py:2")
        s.start(root=3, order=(3, 1, 2))
        s.write(3, None, 1.0)
        s.fire(3)
        s.write(1, 3, 3.0)
        s.finish(3)
        return s.events

    def test_a_number_an_op_wrapped_is_not_called_wrong(self):
        """``leaf#2``, left unwritten by the engine, is a constant to it: no mismatch."""
        assert [f.finding for f in diagnose(self._stream("leaf#2"), check_grads=True)
                if f.finding == "gradient_mismatch"] == []

    def test_a_named_leaf_left_unwritten_still_is(self):
        """``b``, a leaf the script named, added 0 where d p/d b = 2: a mismatch."""
        found = [f for f in diagnose(self._stream("b"), check_grads=True) if f.finding == "gradient_mismatch"]
        assert [f.names for f in found] == [("b",)]


class TestFindingTheBugs:
    """The injected bugs of such an engine are named at their lines."""

    def test_a_leaf_grad_assigned_over_is_an_overwritten_grad(self, tmp_path):
        """``v.grad = g`` drops what the mini-batch's earlier examples added."""
        path = _script(tmp_path, LEAVES, "v.grad = g if v.grad is None else v.grad + g", "v.grad = g")
        assert _named(traced_script(path), "overwritten_grad", path, line_of(path, "v.grad = g"))

    def test_an_entry_assigned_over_is_an_overwritten_grad(self, tmp_path):
        """``grads[parent] = parent_grad`` loses the other consumers' contributions."""
        path = _script(tmp_path, LEAVES, "grads[parent] = grads.get(parent, 0.0) + parent_grad",
                       "grads[parent] = parent_grad")
        assert _named(traced_script(path), "overwritten_grad", path, line_of(path, "grads[parent] = parent_grad"))

    def test_a_missing_zeroing_is_a_stale_gradient_at_the_backward_call(self, tmp_path):
        """Without zeroing, the next batch begins holding the last one's grads."""
        path = _script(tmp_path, LEAVES, "w.grad = b.grad = None", "pass")
        assert _named(traced_script(path), "stale_gradient", path, line_of(path, "loss.backward()"))

    def test_a_wrong_rule_is_named_at_its_lambda(self, tmp_path):
        """A mul rule using its own value for itself is a wrong_derivative at the rule."""
        path = _script(tmp_path, LEAVES, "_vjp=lambda g: (g * other.data, g * self.data))",
                       "_vjp=lambda g: (g * self.data, g * self.data))")
        line = line_of(path, "_vjp=lambda g: (g * self.data, g * self.data))")
        assert _named(traced_script(path), "wrong_derivative", path, line)


class TestARuleHandedOverByANodesMethod:
    """minitorch's shape: the sweep in another module, called by the node's ``backward``;
    ``chain_rule`` hands over to the op class's ``backward``; leaves accumulate."""

    @pytest.fixture
    def split(self, tmp_path):
        def write(nodes=CONTEXT_NODES, sweep=CONTEXT_SWEEP):
            _script(tmp_path, nodes, name="scalars.py")
            _script(tmp_path, sweep, name="derivatives.py")
            return _script(tmp_path, CONTEXT_SCRIPT)

        yield write
        for name in ("scalars", "derivatives"):
            sys.modules.pop(name, None)

    def test_the_sweep_a_method_calls_is_watched_and_each_call_is_a_pass(self, split, capsys):
        """Three steps give three passes, found without naming the sweep, after a decorated
        class, and they end with the printed grads; a correct engine gets no warning."""
        path = split()
        events, _ = run_source(path.parent, CONTEXT_SCRIPT)
        printed = [float(n) for n in capsys.readouterr().out.splitlines()[-1].split()[1:]]
        assert len(of_kind(events, "backward_started")) == 3
        assert _final_grads(events, ["w", "b"]) == pytest.approx(printed)
        for name in ("scalars", "derivatives"):
            sys.modules.pop(name, None)
        assert _problems(traced_script(path)) == []

    def test_a_wrong_rule_is_named_in_the_op_class_not_in_chain_rule(self, split, tmp_path):
        """The rule is the deepest function ``chain_rule`` calls: ``Mul.backward``'s return."""
        wrong = "return a * d_output, a * d_output"
        path = split(nodes=CONTEXT_NODES.replace("return b * d_output, a * d_output", wrong))
        assert _named(traced_script(path), "wrong_derivative", tmp_path / "scalars.py",
                      line_of(tmp_path / "scalars.py", wrong))

    def test_an_entry_assigned_over_is_named_in_the_sweep(self, split, tmp_path):
        """``derivatives[...] = d`` loses the other consumers' contributions."""
        path = split(sweep=CONTEXT_SWEEP.replace("derivatives[inp.unique_id] += d",
                                                 "derivatives[inp.unique_id] = d"))
        sweep = tmp_path / "derivatives.py"
        assert _named(traced_script(path), "overwritten_grad", sweep,
                      line_of(sweep, "derivatives[inp.unique_id] = d"))

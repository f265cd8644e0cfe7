"""Passes of engines kept in their own module, whatever they call things: where a pass is
begun, gradients added up over a mini-batch, lists that outlive a call."""

from __future__ import annotations

import sys
import textwrap

from diagnosing import line_of, traced_script

# PyTorch-like: leaves only get a grad, None until written, added up over backward calls.
LEAF_ENGINE = '''
class Scalar:
    def __init__(self, data, _parents=(), _vjp=None):
        self.data = data
        self.grad = None
        self._parents = _parents
        self._vjp = _vjp

    def __add__(self, other):
        return Scalar(self.data + other.data, _parents=(self, other), _vjp=lambda g: (g, g))

    def __mul__(self, other):
        return Scalar(self.data * other.data, _parents=(self, other),
                      _vjp=lambda g: (g * other.data, g * self.data))

    def propagate(self):
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
                v.grad = g if v.grad is None else v.grad + g
                continue
            for parent, parent_grad in zip(v._parents, v._vjp(g)):
                grads[parent] = grads.get(parent, 0.0) + parent_grad


def clear(params):
    for p in params:
        p.grad = None
'''

MINI_BATCH = '''
from {module} import Scalar, clear

w, b = Scalar(0.5), Scalar(0.1)
for batch in ([1.0, 2.0], [3.0, -1.0]):
    clear([w, b])
    for x in batch:
        err = w * Scalar(x) + b
        loss = err * err
        loss.propagate()
    w.data -= 0.1 * w.grad
    b.data -= 0.1 * b.grad
print(w.data, b.data)
'''


def engine_script(tmp_path, monkeypatch, module: str, engine: str, script: str):
    """``engine`` saved as ``module``.py next to the script, importable by it."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(engine))
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(script).format(module=module))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return path


def serious(findings) -> list:
    return [(f.finding, f.site.rpartition(":")[2]) for f in findings if f.severity in ("warning", "error")]


def stale_sites(findings) -> set:
    return {f.site.rpartition("/")[2] for f in findings if f.finding == "stale_gradient"}


class TestGradientsAddedUpOverAMiniBatch:
    """One backward pass per example, summed into the leaves, then one update, then zeroing."""

    def test_a_mini_batch_summed_between_zeroings_gets_no_finding(self, tmp_path, monkeypatch):
        """Each pass has its own loss, nothing is updated inside the batch: it is meant."""
        path = engine_script(tmp_path, monkeypatch, "leafy_ok", LEAF_ENGINE, MINI_BATCH)
        assert serious(traced_script(path)) == []

    def test_a_batch_never_zeroed_is_a_stale_gradient_at_the_backward_call(self, tmp_path, monkeypatch):
        """Without the zeroing, the next batch adds to grads the update already used."""
        path = engine_script(tmp_path, monkeypatch, "leafy_unzeroed", LEAF_ENGINE,
                             MINI_BATCH.replace("    clear([w, b])\n", ""))
        line = line_of(path, "loss.propagate()")
        assert ("stale_gradient", str(line)) in serious(traced_script(path))

    def test_the_same_loss_propagated_twice_is_a_stale_gradient(self, tmp_path, monkeypatch):
        """A second pass from the same root adds its gradient again: never a mini-batch."""
        path = engine_script(tmp_path, monkeypatch, "leafy_twice", LEAF_ENGINE,
                             MINI_BATCH.replace("loss.propagate()", "loss.propagate(); loss.propagate()"))
        line = line_of(path, "loss.propagate(); loss.propagate()")
        assert ("stale_gradient", str(line)) in serious(traced_script(path))

    def test_an_update_inside_the_group_makes_the_held_grads_stale(self, tmp_path, monkeypatch):
        """Parameters changed after a pass: the grads they still hold belong to old values."""
        script = MINI_BATCH.replace("        loss.propagate()\n",
                                    "        loss.propagate()\n        w.data -= 0.01 * w.grad\n")
        path = engine_script(tmp_path, monkeypatch, "leafy_updated", LEAF_ENGINE, script)
        line = line_of(path, "loss.propagate()")
        assert ("stale_gradient", str(line)) in serious(traced_script(path))


class TestWhereAPassBegins:
    """The line to change for a stale gradient is the user's call into the engine."""

    def test_a_method_with_any_name_is_found_at_the_drivers_call(self, tmp_path, monkeypatch):
        """``loss.propagate()`` in the driver, not the engine's first write."""
        path = engine_script(tmp_path, monkeypatch, "leafy_site", LEAF_ENGINE,
                             MINI_BATCH.replace("    clear([w, b])\n", ""))
        assert stale_sites(traced_script(path)) == {f"train.py:{line_of(path, 'loss.propagate()')}"}

    def test_a_free_function_is_found_at_the_drivers_call(self, tmp_path, monkeypatch):
        """``sweep(loss)``, a function of the engine's module, called twice by the driver."""
        engine = LEAF_ENGINE + '''
def sweep(root):
    root.propagate()
'''
        script = MINI_BATCH.replace("import Scalar, clear", "import Scalar, clear, sweep") \
            .replace("loss.propagate()", "sweep(loss); sweep(loss)")
        path = engine_script(tmp_path, monkeypatch, "leafy_free", engine, script)
        assert stale_sites(traced_script(path)) == {f"train.py:{line_of(path, 'sweep(loss); sweep(loss)')}"}


# micrograd-like, with the order built by a module-level function.
CHAIN_ENGINE = '''
class Node:
    def __init__(self, data, _from=()):
        self.data = data
        self.grad = 0.0
        self._from = _from
        self._chain = lambda: None

    def __add__(self, other):
        out = Node(self.data + other.data, (self, other))

        def _chain():
            self.grad += out.grad
            other.grad += out.grad
        out._chain = _chain
        return out

    def __mul__(self, other):
        out = Node(self.data * other.data, (self, other))

        def _chain():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._chain = _chain
        return out

    def backward(self):
        self.grad = 1.0
        for v in reversed(topo_sort(self)):
            v._chain()


def topo_sort(v, visited=None, order=None):
    if order is None:
        visited, order = set(), []
    if v not in visited:
        visited.add(v)
        for child in v._from:
            topo_sort(child, visited, order)
        order.append(v)
    return order
'''

CHAIN_DRIVER = '''
from {module} import Node

w, b = Node(0.5), Node(0.1)
for x in (1.0, 2.0, 3.0):
    loss = w * Node(x) + b
    w.grad = b.grad = 0.0
    loss.backward()
    w.data -= 0.1 * w.grad
print(w.data, b.data)
'''


class TestOrdersThatOutliveTheCall:
    """An order built in default arguments made once keeps every earlier graph."""

    def test_mutable_defaults_are_named_at_the_def_line_without_extra_passes(self, tmp_path, monkeypatch):
        """``topo_sort(v, visited=set(), order=[])``: one pass per backward() call, the def named."""
        engine = CHAIN_ENGINE.replace("def topo_sort(v, visited=None, order=None):",
                                      "def topo_sort(v, visited=set(), order=[]):")
        path = engine_script(tmp_path, monkeypatch, "chain_shared", engine, CHAIN_DRIVER)
        findings = traced_script(path)
        line = line_of(tmp_path / "chain_shared.py", "def topo_sort(v, visited=set(), order=[]):")
        assert ("fired_outside_graph", str(line)) in serious(findings)
        assert {f.pass_no for f in findings} <= {1, 2, 3}

    def test_defaults_of_none_get_no_finding(self, tmp_path, monkeypatch):
        """A fresh set and list each call: a correct engine stays silent."""
        path = engine_script(tmp_path, monkeypatch, "chain_ok", CHAIN_ENGINE, CHAIN_DRIVER)
        assert serious(traced_script(path)) == []

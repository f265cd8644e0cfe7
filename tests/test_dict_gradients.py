"""Engines whose gradients live in a dict (keyed by node or by a node's id), not on the
nodes: recognised from their code, their sweeps watched, their writes reported as passes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapting import of_kind, run_source
from diagnosing import line_of, traced_script

from autodiff_trace.adapters import EngineSpecError, Instrumentation
from autodiff_trace.adapters.gradmaps import (
    HELD_APART, assigns_over_entry, sweeps_in, value_only_vocabulary,
)

WENGERT = """
    from collections import defaultdict

    class Tape:
        def __init__(self):
            self.entries, self.adjoint = [], defaultdict(float)

    TAPE, VARS, _ids = Tape(), {}, [0]

    class Var:
        def __init__(self, value):
            self.value, self.id = float(value), _ids[0]
            _ids[0] += 1
            VARS[self.id] = self

        def __add__(self, other):
            return apply("add", self, other)

        def __mul__(self, other):
            return apply("mul", self, other)

    FORWARD = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b}
    RULES = {"add": lambda a, b: (1.0, 1.0), "mul": lambda a, b: (b, a)}

    def apply(op, *inputs):
        out = Var(FORWARD[op](*(v.value for v in inputs)))
        TAPE.entries.append((op, tuple(v.id for v in inputs), out.id))
        return out

    def grad(tape, output):
        adj = tape.adjoint
        adj[output.id] = 1.0
        for op, input_ids, output_id in reversed(tape.entries):
            partials = RULES[op](*(VARS[i].value for i in input_ids))
            for i, d in zip(input_ids, partials):
                adj[i] += d * adj[output_id]
        return adj

    w, b = Var(2.0), Var(0.5)
    for step in range(2):
        TAPE.entries = []
        TAPE.adjoint[w.id] = TAPE.adjoint[b.id] = 0.0
        x = Var(3.0)
        loss = w * x * w + b
        g = grad(TAPE, loss)
        w.value -= 0.01 * g[w.id]
        print("grads", g[w.id], g[b.id])
"""

TAPE = """
    from collections import defaultdict

    class Variable:
        def __init__(self, value):
            self.value = value

        def __mul__(self, other):
            return record(self.value * other.value, (self, other), (other.value, self.value))

        def __add__(self, other):
            return record(self.value + other.value, (self, other), (1.0, 1.0))

    OPS = []

    def record(value, inputs, partials):
        out = Variable(value)
        OPS.append((out, inputs, partials))
        return out

    def gradient(target, sources):
        adjoint = defaultdict(float)
        adjoint[target] = 1.0
        for out, inputs, partials in reversed(OPS):
            g = adjoint[out]
            for inp, d in zip(inputs, partials):
                adjoint[inp] += d * g
        return [adjoint[s] for s in sources]

    w, b = Variable(2.0), Variable(0.5)
    for step in range(2):
        OPS.clear()
        h = w * w
        loss = h * h + b
        dw, db = gradient(loss, [w, b])
        w.value -= 0.01 * dw
        print("grads", dw, db)
"""

PATHS = """
    class Node:
        def __init__(self, value, parents=()):
            self.value, self.parents, self.grad = value, parents, 0.0

        def __mul__(self, other):
            return Node(self.value * other.value, ((self, other.value), (other, self.value)))

        def __add__(self, other):
            return Node(self.value + other.value, ((self, 1.0), (other, 1.0)))

    def gradients(node, path=1.0, grads=None):
        grads = {} if grads is None else grads
        for parent, local in node.parents:
            grads[parent] = grads.get(parent, 0.0) + path * local
            gradients(parent, path * local, grads)
        return grads

    w, b = Node(2.0), Node(0.5)
    for step in range(2):
        h = w * w
        loss = h * h + b
        grads = gradients(loss)
        w.grad, b.grad = grads[w], grads[b]
        w.value -= 0.01 * w.grad
        print("grads", w.grad, b.grad)
"""


def _script(tmp_path, source: str, find: str = "", replace: str = ""):
    text = textwrap.dedent(source)
    if find:
        assert text.count(find) == 1, find
        text = text.replace(find, replace)
    path = tmp_path / "train.py"
    path.write_text(text)
    return path


def _named(findings, kind: str, line: int) -> bool:
    """Some finding of ``kind`` names line ``line`` of the script."""
    return any(f.finding == kind and (f.site or "").endswith(f"train.py:{line}") for f in findings)


def _final_grads(events, names):
    """name -> the grad the last node of that name holds when the trace ends."""
    node_of = {e.name: e.node for e in of_kind(events, "node_created")}
    grads = {e.target: e.grad_after for e in of_kind(events, "grad_accumulated")}
    return [grads.get(node_of[n], 0.0) for n in names]


class TestRecognisingTheEngine:
    """Value-only node classes and sweeps are read from code, never by running it."""

    def test_a_class_setting_a_value_and_overloading_arithmetic_beside_a_sweep_is_a_node(self, tmp_path):
        """A class that sets ``value`` in ``__init__`` and defines ``__mul__``, in a file
        with a sweep, is a node whose gradient is held apart; without arithmetic, or
        without a sweep beside it, it is not."""
        found = {}
        for name, body in [("node", WENGERT), ("no_sweep", "class Var:\n    def __init__(self, value):\n"
                                                            "        self.value = value\n"
                                                            "    def __mul__(self, other):\n"
                                                            "        return Var(self.value * other.value)\n")]:
            path = tmp_path / f"{name}.py"
            path.write_text(textwrap.dedent(body).replace("for step in range(2):", "for step in range(0):"))
            namespace = {"__name__": name}
            exec(compile(path.read_text(), str(path), "exec"), namespace)
            found[name] = namespace
        assert value_only_vocabulary(found["node"]["Var"]).grad == HELD_APART
        assert value_only_vocabulary(found["node"]["Tape"]) is None
        assert value_only_vocabulary(found["no_sweep"]["Var"]) is None

    def test_a_sweep_stores_into_a_subscript_in_a_loop_or_a_recursion(self, tmp_path):
        """A loop or recursion storing entries is a sweep; with ``must_return`` it must also
        return the dict it fills, or start it from its first argument (a helper building
        ``{parent: local}`` once is not one)."""
        engine = tmp_path / "engine.py"
        engine.write_text(textwrap.dedent("""
            def grad(tape, out):
                adj = {}
                for i in reversed(tape):
                    adj[i] = 1.0

            def walk(node, grads):
                grads[node] = 1.0
                walk(node, grads)
                return grads

            def store_once(d, k):
                d[k] = 1.0
                return d
        """))
        assert sweeps_in(str(engine), must_return=False) == {("grad", 2), ("walk", 7)}
        assert sweeps_in(str(engine), must_return=True) == {("walk", 7)}

    @pytest.mark.parametrize("line, replaced", [
        ("adj[i] = d * adj[o]", True), ("adj[i] += d * adj[o]", False),
        ("g[p] = g.get(p, 0.0) + t", False), ("g[p] = g[p] + t", False), ("x = y", False),
    ])
    def test_an_entry_assigned_over_is_told_from_one_added_to(self, tmp_path, line, replaced):
        """``=`` over an entry is an overwrite; ``+=`` or an update that reads it is not."""
        path = tmp_path / "line.py"
        path.write_text(line + "\n")
        assert assigns_over_entry(str(path), 1) is replaced


class TestAWengertListKeyedById:
    """Adjoints in a dict keyed by variable id, swept backwards over a tape."""

    def test_each_call_of_the_sweep_is_a_pass_ending_with_the_printed_grads(self, tmp_path, capsys):
        """Two steps give two passes, seeded with 1 at the loss, each write credited to the
        node whose rule made it; the trace ends with the grads the script printed."""
        events, found = run_source(tmp_path, WENGERT)
        printed = capsys.readouterr().out.splitlines()[-1].split()[1:]
        started = of_kind(events, "backward_started")
        assert [e.seed for e in started] == [1.0, 1.0]
        writes = [e for e in of_kind(events, "grad_accumulated") if e.pass_no == 2]
        assert writes[0].fired_by is None and all(w.fired_by is not None for w in writes[1:])
        assert _final_grads(events, ["w", "b"]) == pytest.approx([float(p) for p in printed])
        assert sys.gettrace() is None

    def test_an_overwritten_adjoint_is_named_at_its_line(self, tmp_path):
        """``adj[i] = ...`` instead of ``+=`` is an overwritten_grad at that line."""
        path = _script(tmp_path, WENGERT, "adj[i] += d", "adj[i] = d")
        findings = traced_script(path)
        line = line_of(path, "adj[i] = d * adj[output_id]")
        assert _named(findings, "overwritten_grad", line)

    def test_a_missing_reset_is_a_stale_gradient_at_the_sweep_call(self, tmp_path):
        """Without the driver's reset, the second pass finds last step's adjoints."""
        path = _script(tmp_path, WENGERT, "TAPE.adjoint[w.id] = TAPE.adjoint[b.id] = 0.0", "pass")
        findings = traced_script(path)
        line = line_of(path, "g = grad(TAPE, loss)")
        assert _named(findings, "stale_gradient", line)

    def test_a_correct_engine_gets_no_warning(self, tmp_path):
        """The correct engine and driver give no warning and no error."""
        findings = traced_script(_script(tmp_path, WENGERT))
        assert [f.finding for f in findings if f.severity in ("warning", "error")] == []


class TestATapeSweepingIntoALocalDict:
    """Adjoints in a dict local to the sweep, keyed by the nodes themselves."""

    def test_the_passes_and_grads_are_found(self, tmp_path, capsys):
        """Each call of ``gradient`` is a pass; the trace ends with the printed grads."""
        events, _ = run_source(tmp_path, TAPE)
        printed = capsys.readouterr().out.splitlines()[-1].split()[1:]
        assert len(of_kind(events, "backward_started")) == 2
        assert _final_grads(events, ["w", "b"]) == pytest.approx([float(p) for p in printed])

    def test_a_dict_keyed_by_id_of_node_is_read_as_well(self, tmp_path, capsys):
        """``adjoint[id(inp)]`` names the node whose id it is."""
        source = TAPE.replace("adjoint[target] = 1.0", "adjoint[id(target)] = 1.0").replace(
            "g = adjoint[out]", "g = adjoint[id(out)]").replace(
            "adjoint[inp] += d * g", "adjoint[id(inp)] += d * g").replace(
            "[adjoint[s] for s in sources]", "[adjoint[id(s)] for s in sources]")
        events, _ = run_source(tmp_path, source)
        printed = capsys.readouterr().out.splitlines()[-1].split()[1:]
        assert len(of_kind(events, "backward_started")) == 2
        assert _final_grads(events, ["w", "b"]) == pytest.approx([float(p) for p in printed])

    def test_a_sweep_in_recording_order_fires_too_early_at_its_loop(self, tmp_path):
        """Sweeping the records forwards is fired_too_early, named at the sweep's loop."""
        path = _script(tmp_path, TAPE, "in reversed(OPS):", "in OPS:")
        findings = traced_script(path)
        line = line_of(path, "for out, inputs, partials in OPS:")
        assert _named(findings, "fired_too_early", line)

    def test_a_correct_engine_gets_no_warning(self, tmp_path):
        """The correct engine and driver give no warning and no error."""
        findings = traced_script(_script(tmp_path, TAPE))
        assert [f.finding for f in findings if f.severity in ("warning", "error")] == []


class TestARecursionReturningADict:
    """A node class with a grad attribute whose sweep sums paths into a returned dict."""

    def test_each_call_is_a_pass_and_visiting_a_node_per_path_is_no_finding(self, tmp_path):
        """A node fires once per path, each time passing on only what the path brought:
        that is neither fired_twice nor fired_too_early."""
        path = _script(tmp_path, PATHS)
        findings = traced_script(path)
        assert [f.finding for f in findings if f.severity in ("warning", "error")] == []
        events, _ = run_source(tmp_path, PATHS)
        assert len(of_kind(events, "backward_started")) == 2

    def test_a_dict_shared_between_calls_is_a_stale_gradient(self, tmp_path):
        """A dict that outlives the call holds last pass's grads when the next one begins."""
        path = _script(tmp_path, PATHS, "grads = {} if grads is None else grads",
                       "grads = SHARED if grads is None else grads")
        path.write_text("SHARED = {}\n" + path.read_text())
        findings = traced_script(path)
        line = line_of(path, "grads = gradients(loss)")
        assert _named(findings, "stale_gradient", line)


KAHN = """
    class Var:
        def __init__(self, value, inputs=()):
            self.value, self.inputs = value, inputs

        def __mul__(self, other):
            return Var(self.value * other.value, ((self, other.value), (other, self.value)))

        def __add__(self, other):
            return Var(self.value + other.value, ((self, 1.0), (other, 1.0)))

    def backward(root):
        waiting, stack, seen = {}, [root], {id(root)}
        while stack:
            node = stack.pop()
            for parent, _ in node.inputs:
                waiting[parent] = waiting.get(parent, 0) + 1
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)
        adjoint, ready = {root: 1.0}, [root]
        while ready:
            node = ready.pop()
            for parent, local in node.inputs:
                adjoint[parent] = adjoint.get(parent, 0.0) + local * adjoint[node]
                waiting[parent] -= 1
                if waiting[parent] == 0:
                    ready.append(parent)
        return adjoint

    w, b = Var(2.0), Var(0.5)
    for step in range(2):
        h = w * w
        loss = h * h + b
        adjoint = backward(loss)
        print("grads", adjoint[w], adjoint[b])
"""


class TestASweepCountingConsumersFirst:
    """A sweep that counts each node's consumers in a dict before it sweeps the adjoints."""

    def test_the_counts_are_not_taken_for_gradients_and_the_seed_is_no_stale_grad(self, tmp_path, capsys):
        """Whole numbers counted under the root begin no pass; a dict made holding the
        seed (``{root: 1.0}``) seeds the pass, and a correct engine gets no warning."""
        events, _ = run_source(tmp_path, KAHN)
        printed = capsys.readouterr().out.splitlines()[-1].split()[1:]
        started = of_kind(events, "backward_started")
        assert [(e.seed, e.grads_before[0]) for e in started] == [(1.0, 0.0), (1.0, 0.0)]
        assert _final_grads(events, ["w", "b"]) == pytest.approx([float(p) for p in printed])
        findings = traced_script(_script(tmp_path, KAHN))
        assert [f.finding for f in findings if f.severity in ("warning", "error")] == []


class TestNeverChangingTheScript:
    """Watching sweeps leaves the script, its classes and the interpreter as they were."""

    def test_a_value_only_class_gets_no_grad_attribute_and_its_entries_back(self, tmp_path, capsys):
        """No attribute is added to a node whose gradient is held apart, and the class's
        entries, the trace function and the recursion limit are restored afterwards."""
        limit = sys.getrecursionlimit()
        source = WENGERT + "\n    print(hasattr(w, 'grad'), sorted(k for k in vars(Var) if not k.startswith('__')))\n"
        events, found = run_source(tmp_path, source)
        assert capsys.readouterr().out.splitlines()[-1] == "False []"
        cls = next(r.cls for r in found.classes if r.cls.__name__ == "Var")
        assert "grad" not in vars(cls) and vars(cls)["__init__"].__qualname__ == "Var.__init__"
        assert sys.gettrace() is None and sys.getrecursionlimit() == limit

    def test_a_recursive_sweep_works_as_deep_traced_as_plain(self, tmp_path):
        """A recursion over paths 990 calls deep runs traced as it runs under python, and
        the pass is found."""
        script = tmp_path / "deep.py"
        script.write_text(textwrap.dedent("""
            class Node:
                def __init__(self, value, parents=()):
                    self.value, self.parents, self.grad = value, parents, 0.0
                def __mul__(self, other):
                    return Node(self.value * other.value, ((self, other.value), (other, self.value)))
            def walk(node, path, grads):
                for parent, local in node.parents:
                    grads[parent] = grads.get(parent, 0.0) + path * local
                    walk(parent, path * local, grads)
                return grads
            one = Node(1.0)
            x = y = Node(1.0)
            for _ in range(989):
                y = Node(y.value, ((y, 1.0),))
            print(walk(y, 1.0, {})[x])
        """))
        plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        out = tmp_path / "out"
        traced = subprocess.run([str(Path(sys.executable).with_name("trace-backward")), "--quiet",
                                 "--sink", "json", "--out", str(out), str(script)],
                                capture_output=True, text=True)
        assert plain.stdout == "1.0\n"
        assert traced.stdout == plain.stdout, traced.stderr
        assert '"backward_started"' in (out / "trace.jsonl").read_text()

    def test_a_sweep_that_raises_ends_its_pass_and_the_exception_reaches_the_script(self, tmp_path, capsys):
        """An exception out of a sweep ends the pass; the script catches it as it would."""
        source = WENGERT.replace("        return adj\n", "        raise KeyError('sweep')\n").replace(
            "        g = grad(TAPE, loss)\n", "        try:\n            grad(TAPE, loss)\n"
            "        except KeyError as exc:\n            print('caught', exc)\n        g = TAPE.adjoint\n")
        events, _ = run_source(tmp_path, source)
        assert capsys.readouterr().out.count("caught 'sweep'") == 2
        assert len(of_kind(events, "backward_started")) == len(of_kind(events, "backward_finished")) == 2

    def test_an_engine_without_a_sweep_is_not_line_traced(self, tmp_path, capsys):
        """An engine whose grads are attributes installs no trace function."""
        run_source(tmp_path, """
            import sys
            class Value:
                def __init__(self, data, _prev=()):
                    self.data, self.grad, self._prev = data, 0.0, _prev
                def __mul__(self, other):
                    return Value(self.data * other.data, (self, other))
            print(sys.gettrace() is None)
        """)
        assert capsys.readouterr().out == "True\n"

    def test_a_debugger_keeps_sys_settrace_and_the_script_runs_on(self, tmp_path, capsys):
        """When another tool traces the script, the sweeps are not watched, and the script's
        output is what it prints untraced."""
        def debugger(frame, event, arg):
            return None

        sys.settrace(debugger)
        try:
            events, found = run_source(tmp_path, WENGERT)
            assert sys.gettrace() is debugger
        finally:
            sys.settrace(None)
        assert found.sweeps.unavailable is not None
        assert of_kind(events, "backward_started") == []
        assert capsys.readouterr().out.count("grads") == 2


SPLIT_ENGINE = """
    class Var:
        def __init__(self, value):
            self.value = value

        def __mul__(self, other):
            out = Var(self.value * other.value)
            TAPE.append((out, (self, other), (other.value, self.value)))
            return out

    TAPE = []
"""

SPLIT_SWEEP = """
    def backprop(tape, out, adjoint):
        adjoint[out] = 1.0
        _push(tape, adjoint, len(tape) - 1)
        return adjoint

    def _push(tape, adjoint, i):
        out, inputs, partials = tape[i]
        for inp, d in zip(inputs, partials):
            adjoint[inp] = adjoint.get(inp, 0.0) + d * adjoint[out]
        if i:
            _push(tape, adjoint, i - 1)
"""

SPLIT_SCRIPT = """
    import os, sys
    sys.path.insert(0, os.path.dirname(__file__))
    from split_nodes import Var, TAPE
    from split_sweep import backprop

    w, x = Var(3.0), Var(2.0)
    loss = w * x * w
    grads = backprop(TAPE, loss, {})
    print("grads", grads[w], grads[x])
"""


class TestNamingTheSweep:
    """``--sweep module:function`` names a sweep the tool cannot find by itself."""

    @pytest.fixture
    def split(self, tmp_path):
        (tmp_path / "split_nodes.py").write_text(textwrap.dedent(SPLIT_ENGINE))
        (tmp_path / "split_sweep.py").write_text(textwrap.dedent(SPLIT_SWEEP))
        yield tmp_path
        for name in ("split_nodes", "split_sweep"):
            sys.modules.pop(name, None)

    def test_a_sweep_in_another_file_is_found_when_named(self, split, capsys):
        """Nodes and sweep in two files: with the sweep named, its call is a pass."""
        events, found = run_source(split, SPLIT_SCRIPT, sweep="split_sweep:backprop")
        printed = [float(n) for n in capsys.readouterr().out.split()[1:]]
        assert len(of_kind(events, "backward_started")) == 1
        assert _final_grads(events, ["w", "x"]) == pytest.approx(printed)

    def test_unnamed_it_is_not_traced_and_the_note_says_how_to_name_it(self, split, capsys):
        """Without the option nothing is traced, and the note names ``--sweep``."""
        events, found = run_source(split, SPLIT_SCRIPT)
        assert of_kind(events, "backward_started") == [] and found.nothing_traced
        assert "--sweep module:function" in found.describe_search()

    def test_a_malformed_sweep_is_a_one_line_error_naming_the_form(self):
        """``--sweep grad`` (no module) is refused before anything runs."""
        with pytest.raises(EngineSpecError, match="--sweep expects module:function"):
            Instrumentation(sweep="grad")

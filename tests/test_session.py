"""The @traced decorator and the traced_block context manager."""

import io

from rich.console import Console

from autodiff_trace import Value, load_events, traced, traced_block


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=80, color_system=None)


class TestTracedDecorator:
    def test_returns_the_functions_own_result(self, tmp_path):
        """A decorated function returns exactly what it returned before."""
        @traced(out=tmp_path, sinks=("json",))
        def square(v):
            y = v * v
            y.backward()
            return y

        x = Value(3.0)
        result = square(x)
        assert isinstance(result, Value) and result.data == 9.0 and x.grad == 6.0

    def test_names_are_scoped_by_the_function(self, tmp_path):
        """Names inferred inside ``f`` read ``f.name``; the files land in ``out``."""
        @traced(out=tmp_path, sinks=("json", "svg"))
        def f():
            a = Value(2.0)
            b = a * 3
            b.backward()

        f()
        created = [e for e in load_events(tmp_path / "trace.jsonl") if e.kind == "node_created"]
        assert [e.name for e in created] == [
            "TestTracedDecorator.test_names_are_scoped_by_the_function.<locals>.f.a", "3",
            "TestTracedDecorator.test_names_are_scoped_by_the_function.<locals>.f.b"]
        assert (tmp_path / "pass_1.svg").exists()

    def test_works_bare_and_on_methods(self):
        """``@traced`` without arguments, on a method, prints the report to the given console."""
        console = quiet_console()

        class Model:
            @traced(console=console)
            def loss(self, w):
                out = (w * 2).tanh()
                out.backward()
                return out.data

        w = Value(0.5, name="w")
        assert Model().loss(w) == (Value(1.0).tanh()).data
        assert "backward pass 1" in console.file.getvalue()

    def test_nested_decorated_calls_trace_both(self, tmp_path):
        """An inner traced call is seen by its own trace and by the outer one."""
        @traced(out=tmp_path / "inner", sinks=("json",))
        def inner(v):
            y = v * v
            y.backward()

        @traced(out=tmp_path / "outer", sinks=("json",))
        def outer():
            x = Value(2.0)
            inner(x)
            return x.grad

        assert outer() == 4.0
        inner_kinds = [e.kind for e in load_events(tmp_path / "inner" / "trace.jsonl")]
        outer_kinds = [e.kind for e in load_events(tmp_path / "outer" / "trace.jsonl")]
        assert inner_kinds.count("backward_started") == outer_kinds.count("backward_started") == 1
        assert outer_kinds.count("node_created") == inner_kinds.count("node_created") + 1


class TestTracedBlock:
    def test_block_writes_trace_and_findings(self, tmp_path):
        """``with traced_block(out):`` writes the trace and the findings of the block."""
        with traced_block(tmp_path, sinks=("json",)) as session:
            x = Value(2.0, name="x")
            y = x * x
            y.backward()
            y.backward()  # stale: the second pass starts from x.grad = 4
        stale = [(f.finding, f.names) for f in session.findings.findings]
        assert stale == [("stale_gradient", ("x", "y"))]  # one cause: the second backward() call
        assert (tmp_path / "findings.txt").read_text().startswith("WARNING stale_gradient")
        assert session.written == [tmp_path / "trace.jsonl", tmp_path / "findings.json",
                                   tmp_path / "findings.txt"]


class TestJupyterDisplay:
    def test_a_finished_trace_displays_its_last_pass(self):
        """A trace shown in Jupyter gives the SVG diagram of its last backward pass."""
        from autodiff_trace import trace

        with trace() as t:
            x = Value(2.0, name="x")
            (x * x).backward()
        bundle = t._repr_mimebundle_()
        assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
        assert ">x<" in bundle["image/svg+xml"]

    def test_a_trace_without_passes_says_so(self):
        """With nothing to draw, the display is one line of text."""
        from autodiff_trace import trace

        with trace() as t:
            Value(1.0)
        assert t._repr_mimebundle_() == {"text/plain": "<Tracer: 1 events, no backward pass>"}


class TestSharedModel:
    def test_a_run_folds_its_events_once_for_every_sink(self, tmp_path):
        """The command's sinks and diagnostics read one model, which the tracer folds."""
        from autodiff_trace.frontends.session import open_session

        session = open_session(tmp_path, sinks=("rich", "svg", "json"), console=quiet_console())
        readers = [s.model for s in session.tracer.sinks if hasattr(s, "model")]
        readers += [a.model for a in session.tracer.analyzers]
        assert len(readers) == 3 and all(m is session.tracer.model for m in readers)
        with session.tracer:
            x = Value(2.0, name="x")
            (x * x).backward()
            (x * x).backward()
        assert [p.pass_no for p in session.tracer.model.passes] == [1, 2]
        assert (tmp_path / "pass_2.svg").exists()

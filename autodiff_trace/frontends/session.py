"""A traced run with the CLI's outputs: the report, the SVGs, the JSONL and the findings.

``open_session`` builds the tracer that ``trace-backward``, ``@traced`` and
``traced_block`` share, so a decorated function gets the same options and files as
a script run from the command line.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

from rich.console import Console

from ..analysis.diagnoser import Diagnoser
from ..sinks.dot import DotSink
from ..sinks.findings import FindingsSink
from ..sinks.jsonl import JsonlSink
from ..sinks.progress import ProgressSink
from ..sinks.rich_tree import RichTreeSink
from ..core.keep import DEFAULT_KEEP, KeepPolicy, describe_kept
from ..core.tracer import Tracer
from ..adapters.torch import TorchWatch

__all__ = ["SINKS", "Session", "open_session", "traced", "traced_block"]

SINKS = ("rich", "dot", "svg", "png", "pdf", "json")
DEFAULT_SINKS = ("rich", "svg", "json")


class Session:
    """The tracer of one run and the sinks that write its files.

    ``findings`` is the sink that writes findings.json and findings.txt; None when the
    run writes no files (no ``out``).
    """

    def __init__(self, tracer: Tracer, out: Optional[Path], findings: Optional[FindingsSink],
                 dot: Optional[DotSink], jsonl: Optional[Path]) -> None:
        self.tracer, self.out, self.findings, self.dot, self.jsonl = tracer, out, findings, dot, jsonl
        self.jsonl_sink = next((s for s in tracer.sinks if isinstance(s, JsonlSink)), None)
        self._writers = [s for s in tracer.sinks if isinstance(s, (DotSink, JsonlSink, FindingsSink))]
        self._failed_to_close: list = []
        for writer in self._writers:
            _watch_close(writer, self._failed_to_close)

    @property
    def output_failed(self) -> bool:
        """True when a sink that writes files failed (and was detached, or did not close)."""
        return any(w not in self.tracer.sinks for w in self._writers) or bool(self._failed_to_close)

    @property
    def kept_note(self) -> Optional[str]:
        """What the trace file kept in full and what it summarised; None when it kept all."""
        sink = self.jsonl_sink
        if sink is None or sink.keep is None:
            return None
        return describe_kept(sink.kept, sink.summarised, sink.keep, where=str(self.jsonl))

    @property
    def written(self) -> list:
        """Every file the run wrote, in a stable order; an empty one (a failed write) is not."""
        files = [self.jsonl] if self.jsonl else []
        files += self.dot.written if self.dot else []
        files += self.findings.written if self.findings else []
        return [f for f in files if f is not None and f.exists()
                and not (f.is_file() and f.stat().st_size == 0)]


def _watch_close(sink, failed: list) -> None:
    """Note in ``failed`` a sink whose ``close`` raises; the tracer still reports it."""
    close = sink.close

    def watched_close() -> None:
        try:
            close()
        except Exception:
            failed.append(sink)
            raise

    sink.close = watched_close


def open_session(out: Optional[Path], *, sinks: Sequence[str] = DEFAULT_SINKS,
                 pass_no: Optional[int] = None, max_nodes: int = 300, modules: str = "auto",
                 check_grads: bool = False,
                 live: Optional[bool] = None, delay: float = 0.0, console: Optional[Console] = None,
                 renderer: Optional[str] = None, name_prefix: str = "",
                 metadata: Optional[dict] = None, progress: bool = False,
                 full_report: bool = False, keep: Union[str, KeepPolicy] = DEFAULT_KEEP) -> Session:
    """Build the tracer for a run (not yet started).

    Args:
        out: folder for the files; None writes no files (the terminal report only).
        sinks: any of :data:`SINKS`; ``dot`` writes only ``.dot`` files.
        pass_no: draw only this backward pass.
        modules: how diagrams draw the nodes made in a model's modules (``box``, ``fold``,
            ``none``, or ``auto``: folded when many).
        check_grads: also compare every leaf's grad with a central difference.
        progress: on a terminal, a status line counting events (unless the tree is live).
        full_report: print every pass's tree and ledger, not only those with findings.
        keep: the passes trace.jsonl and the diagrams hold in full (:class:`KeepPolicy`'s
            words, ``first:3,findings,last`` by default); every pass is analysed.
    """
    policy = keep if isinstance(keep, KeepPolicy) else KeepPolicy.parse(keep)
    unknown = [s for s in sinks if s not in SINKS]
    if unknown:
        raise ValueError(f"unknown sink {unknown[0]!r}; choose from {', '.join(SINKS)}")
    chosen = []
    tree = RichTreeSink(console, live=live, delay=delay, full=full_report) if "rich" in sinks else None
    if tree is not None:
        chosen.append(tree)
    if progress and not (tree is not None and tree.live):  # a live tree shows progress itself
        chosen.append(ProgressSink(Console(stderr=True)))
    findings = jsonl = dot = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        formats = [f for f in ("svg", "png", "pdf") if f in sinks]
        if formats or "dot" in sinks:
            dot = DotSink(out, formats=formats, pass_no=pass_no, max_nodes=max_nodes, modules=modules,
                          renderer=renderer, keep=policy)
            chosen.append(dot)
        if "json" in sinks:
            jsonl = out / "trace.jsonl"
            chosen.append(JsonlSink(jsonl, metadata=metadata, keep=policy))
        findings = FindingsSink(out)
        chosen.append(findings)
    tracer = Tracer(chosen, analyzers=[Diagnoser(check_grads=check_grads)],
                    record=False, name_prefix=name_prefix)
    return Session(tracer, out, findings, dot, jsonl)


@contextlib.contextmanager
def traced_block(out: Optional[Path] = None, **options) -> Iterator[Session]:
    """``with traced_block("outputs/demo"):`` traces the block with the CLI's outputs.

    With no ``out`` the report goes to the terminal only; in Jupyter the diagrams are
    drawn in a temporary folder and displayed under the cell.
    """
    if out is None and _in_notebook():
        out = Path(tempfile.mkdtemp(prefix="autodiff_trace_"))
    session = open_session(Path(out) if out is not None else None, **options)
    with session.tracer, TorchWatch():  # PyTorch traced if the code uses it (never imported here)
        yield session
    _show_inline(session)


def traced(fn: Optional[Callable] = None, *, out: Optional[Path] = None, **options) -> Callable:
    """Decorate a function so each call is traced, with names scoped to the function.

    ``@traced`` or ``@traced(out="outputs/f", sinks=("rich", "svg"))``; the function's
    own result is returned unchanged. A generator or async function is refused with a
    TypeError: its body runs after the call returns, where the trace would not see it.
    """
    def decorate(func: Callable) -> Callable:
        _refuse_deferred_body(func)
        settings = {"name_prefix": f"{func.__qualname__}.", **options}

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with traced_block(out, **settings):
                return func(*args, **kwargs)
        return wrapper

    return decorate(fn) if fn is not None else decorate


_DEFERRED = ((inspect.isasyncgenfunction, "an async generator function"),
             (inspect.isgeneratorfunction, "a generator function"),
             (inspect.iscoroutinefunction, "an async function"))


def _refuse_deferred_body(func: Callable) -> None:
    """A function whose body runs after the call returns (it is iterated or awaited later)
    would be traced as doing nothing: say so at decoration, with the fix."""
    kind = next((name for test, name in _DEFERRED if test(func)), None)
    if kind is not None:
        raise TypeError(f"@traced cannot trace {func.__name__}(), {kind}: its body runs "
                        f"later, as it is iterated or awaited; trace the code that consumes it "
                        f"with `with traced_block():` instead")


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _show_inline(session: Session) -> None:
    """In Jupyter, display each pass's diagram under the cell."""
    if not _in_notebook() or session.dot is None:
        return
    from IPython.display import SVG, display

    for path in session.dot.written:
        if path.suffix == ".svg":
            display(SVG(filename=str(path)))

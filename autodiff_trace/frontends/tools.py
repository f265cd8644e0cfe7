"""The replay subcommands of ``autodiff-trace``: work with a saved ``trace.jsonl``
without the code that made it.

``render`` (any sink's output, as the live run made it; ``--to html`` is the player),
``diff`` (two traces of one program), ``html`` (the step-by-step player), ``export``
(Chrome/Perfetto timeline) and ``stats``. Replay only reads the file: nothing from the
trace is imported or run. Bad input gives one line on stderr and exit code 2; a read
that lasts over a second shows its progress on a terminal.
"""

from __future__ import annotations

import enum
import gc
import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Iterable, Iterator, List, Optional

import typer
from rich.console import Console

from ..core.events import Event
from ..core.tracefile import TraceFileError, iter_events, read_header
from ..views.graph.folded import MODULE_VIEWS
from .options import UsageProblem
from .reading import ReadingProgress
from .output import write_output

__all__ = ["COMMANDS", "render", "diff", "html", "export", "stats"]

TraceArg = Annotated[str, typer.Argument(help="A trace.jsonl written by trace-backward or JsonlSink "
                                               "(or the folder holding it).", show_default=False)]
PassOpt = Annotated[Optional[int], typer.Option("--pass", help="Only this backward pass (1 is the first).",
                                                min=1, show_default=False)]
RendererOpt = Annotated[Optional[str], typer.Option(
    help="Graphviz renderer: the bundled one by default, 'dot' for the system Graphviz, or a path.",
    show_default=False)]


ModuleView = enum.Enum("ModuleView", {view: view for view in MODULE_VIEWS}, type=str)


class Target(str, enum.Enum):
    rich = "rich"
    svg = "svg"
    png = "png"
    html = "html"


def _fail(message: str) -> None:
    print(f"autodiff-trace: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"autodiff-trace: warning: {message}", file=sys.stderr)


def _run(action, *, collect: bool = True) -> None:
    """Run a subcommand; turn every expected failure into one line and exit code 2.

    ``collect=False`` pauses the cyclic garbage collector while it runs: for a command whose
    reading makes no reference cycles (a run's arrays, tuples, columns), the collector
    would only scan the growing state again and again, a sixth of the time of a long trace.
    """
    from ..views.graph.render import RenderError

    saved = warnings.showwarning
    warnings.showwarning = _warn_one_line
    paused = not collect and gc.isenabled()
    try:
        if paused:
            gc.disable()
        with ReadingProgress(Console(stderr=True)):  # a bar while a big trace is read
            action()
    except (TraceFileError, UsageProblem, RenderError, ValueError) as problem:
        _fail(str(problem))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    finally:
        warnings.showwarning = saved
        if paused:
            gc.enable()


def _trace_path(trace: str) -> Path:
    """The trace file named on the command line; a folder means its ``trace.jsonl``."""
    path = Path(trace)
    if path.is_dir():
        if (path / "trace.jsonl").is_file():
            return path / "trace.jsonl"
        raise UsageProblem(f"{trace} is a folder without a trace.jsonl; give the path of a trace file")
    if not path.exists():
        raise UsageProblem(f"{trace}: no such trace file (trace-backward writes one as "
                      f"outputs/<script>/trace.jsonl)")
    read_header(path)  # empty file, not a trace, wrong schema version: fail before any output
    return path


def _only_pass(events: Iterable[Event], pass_no: Optional[int]) -> Iterator[Event]:
    """The events that one pass's report needs: nodes, zeroings and that pass's own events."""
    for event in events:
        if pass_no is None or getattr(event, "pass_no", pass_no) == pass_no:
            yield event


def _out_folder(out: Optional[Path], trace: Path) -> Path:
    folder = out if out is not None else trace.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"cannot create the output folder {folder}: {exc.strerror or exc}; "
                      f"choose another with --out") from None
    return folder


def render(
    trace: TraceArg,
    to: Annotated[Target, typer.Option("--to", help="What to produce.")] = Target.rich,
    pass_no: PassOpt = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for the files [default: the trace's folder]", show_default=False)] = None,
    max_nodes: Annotated[int, typer.Option(help="Nodes drawn per picture (svg, png, html); larger "
                                           "graphs are folded.", min=10)] = 300,
    renderer: RendererOpt = None,
    modules: Annotated[ModuleView, typer.Option(help="How a picture draws the nodes a model's modules "
                                                "make: a box per module around them, one box "
                                                "per module (fold), none; auto folds many.")] = "auto",
) -> None:
    """Draw a saved trace again: the terminal report, pictures, or the player.

    [bold]--to rich[/bold] prints the terminal report, [bold]svg[/bold] and [bold]png[/bold] write one picture per pass, [bold]html[/bold] the step-by-step player; the output is what the live run produced. Nothing from the trace is imported or run.
    """
    def action() -> None:
        path = _trace_path(trace)
        if to is Target.rich:
            from ..views.terminal.report import print_report

            print_report(_only_pass(iter_events(path), pass_no), Console(highlight=False))
            return
        folder = _out_folder(out, path)
        if to is Target.html:
            name = f"{path.stem}.html" if pass_no is None else f"{path.stem}_pass_{pass_no}.html"
            written = [_player(path, folder / name, pass_no=pass_no, max_nodes=max_nodes,
                               renderer=renderer)]
        else:
            written = _draw(path, folder, to.value, pass_no, max_nodes, renderer,
                            getattr(modules, "value", modules))
        print(f"autodiff-trace: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)

    _run(action)


def _draw(path: Path, folder: Path, fmt: str, pass_no: Optional[int], max_nodes: int,
          renderer: Optional[str], modules: str = "auto") -> List[Path]:
    from ..sinks.dot import DotSink

    said: List[str] = []
    sink = DotSink(folder, formats=(fmt,), pass_no=pass_no, max_nodes=max_nodes, renderer=renderer,
                   report=said.append, modules=modules)
    for event in iter_events(path):
        sink.handle(event)
    sink.close()
    pictures = [p for p in sink.written if p.suffix == f".{fmt}"]
    if not pictures:
        raise UsageProblem(said[0] if said else "nothing was drawn")
    for picture in pictures:  # a capped picture says so
        drawn = sink.model.pass_(int(picture.stem.rpartition("_")[2]))
        total = len(sink.model.pass_nodes(drawn)) if drawn is not None else 0
        if total > max_nodes:
            said.append(f"pass {drawn.pass_no} has {total:,} nodes, more than --max-nodes {max_nodes}: "
                        f"{picture.name} folds the rest into counted groups")
    for message in said:
        print(f"autodiff-trace: {message}", file=sys.stderr)
    return pictures


def _title(path: Path) -> str:
    header = read_header(path)
    script = header.get("script")
    return f"{Path(script).name if script else path.name}: backward passes step by step"


def diff(
    a: Annotated[str, typer.Argument(help="The first trace (A).", show_default=False)],
    b: Annotated[str, typer.Argument(help="The second trace (B).", show_default=False)],
    pass_no: Annotated[Optional[str], typer.Option(
        "--pass", help="Compare one pass of each: N, or N:M for pass N of A against pass M of B "
        "(give one file twice to compare two passes of one run).", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for diff.dot and diff.svg, the picture with the differing "
        "nodes coloured.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(help="Steps of each sort listed (all are counted).", min=1)] = 20,
    renderer: RendererOpt = None,
) -> None:
    """Compare two traces of the same program.

    Nodes are matched by name and creation site, not by id. Reports the first step where the traces part, the steps only one has, every node whose final grad differs (with both values) and the findings only one has. Exit code 0 when they match, 1 when they differ, 2 for bad input.
    """
    differ: List[bool] = []

    def action() -> None:
        from ..replay.tracediff import diff_traces

        passes = _parse_passes(pass_no)
        result = diff_traces(_trace_path(a), _trace_path(b), pass_no=passes, limit=limit)
        sys.stdout.write(result.format())
        if out is not None:
            from ..views.graph.diff import diff_diagram

            folder = _out_folder(out, Path(a))
            picture = diff_diagram(result)
            drawn = picture.pipe("svg", renderer=renderer)  # before any file: a failed render writes none
            write_output(folder / "diff.dot", lambda file: file.write(picture.source), what="the diagram")
            write_output(folder / "diff.svg", lambda file: file.write(drawn), what="the diagram",
                         binary=True)
            print(f"autodiff-trace: wrote {folder / 'diff.dot'}, {folder / 'diff.svg'}", file=sys.stderr)
        differ.append(not result.same)

    _run(action, collect=False)
    raise typer.Exit(1 if differ and differ[0] else 0)


def _parse_passes(text: Optional[str]):
    """``"2"`` -> 2, ``"1:2"`` -> (1, 2).

    >>> _parse_passes("2"), _parse_passes("1:2"), _parse_passes(None)
    (2, (1, 2), None)
    """
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) > 2 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise UsageProblem(f"--pass {text!r} should be a pass number N or N:M (pass N of A against "
                      f"pass M of B), e.g. --pass 2 or --pass 1:2")
    numbers = tuple(int(p) for p in parts)
    return numbers[0] if len(numbers) == 1 else numbers


def html(
    trace: TraceArg,
    pass_no: PassOpt = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="The HTML file to write [default: the trace's path with .html]",
        show_default=False)] = None,
    max_nodes: Annotated[int, typer.Option(help="Nodes drawn per picture; larger graphs are folded.",
                                           min=10)] = 150,
    max_frames: Annotated[int, typer.Option(help="Pictures at most; later steps show their "
                                            "pass's final picture.", min=1)] = 100,
    renderer: RendererOpt = None,
) -> None:
    """Write a self-contained HTML player that steps through the backward passes.

    One page, event by event: slider, previous/next, play/pause and the arrow keys; the current node is highlighted and its ledger line shown beside the picture. No network is needed to view it.
    """
    def action() -> None:
        path = _trace_path(trace)
        target = out if out is not None else path.with_suffix(".html")
        written = _player(path, target, pass_no=pass_no, max_nodes=max_nodes,
                          max_frames=max_frames, renderer=renderer)
        print(f"autodiff-trace: wrote {written}", file=sys.stderr)

    _run(action)


def _player(path: Path, target: Path, **options) -> Path:
    """The step-by-step player of a trace: ``html`` and ``render --to html`` both write it."""
    from ..views.player import build_player

    said: list = []
    page = build_player(path, title=_title(path), said=said, **options)
    write_output(target, lambda file: file.write(page), what="the player")
    for message in said:  # what the page leaves out, said on the terminal too
        print(f"autodiff-trace: {message}", file=sys.stderr)
    return target


def export(
    trace: TraceArg,
    chrome: Annotated[Path, typer.Option("--chrome", help="Where to write the Chrome trace event "
                                         "JSON (opens in Perfetto or chrome://tracing).",
                                         show_default=False)],
) -> None:
    """Export a trace as a Chrome/Perfetto timeline.

    Passes and backward-function firings become slices; gradient writes, node creations and findings become instant events with their numbers as args. Open the file in Perfetto or chrome://tracing.
    """
    def action() -> None:
        from ..views.chrome import write_chrome_trace

        path = _trace_path(trace)
        metadata = {"source": str(path), **read_header(path)}
        count = write_output(chrome, lambda file: write_chrome_trace(iter_events(path, runs=True), file,
                                                                     metadata=metadata),
                             what="the timeline", binary=True)
        print(f"autodiff-trace: wrote {chrome} ({count:,} trace events)", file=sys.stderr)

    _run(action, collect=False)


def stats(
    trace: TraceArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Count a trace: events per kind, nodes, passes with their time, findings per kind."""
    def action() -> None:
        from ..replay.summary import format_stats, trace_stats

        numbers = trace_stats(iter_events(_trace_path(trace), runs=True))
        sys.stdout.write(json.dumps(numbers, indent=2) + "\n" if as_json else format_stats(numbers))

    _run(action, collect=False)


COMMANDS = (render, diff, html, export, stats)

"""``trace-backward SCRIPT [ARGS...]``: run a script unmodified with every backward pass traced."""

from __future__ import annotations

import enum
import os
import runpy
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from .._version import __version__
from .session import DEFAULT_SINKS, open_session
from ..core.sites import PACKAGE_DIR

__all__ = ["app", "main"]

app = typer.Typer(rich_markup_mode="rich", add_completion=False)


class SinkName(str, enum.Enum):
    rich = "rich"
    dot = "dot"
    svg = "svg"
    png = "png"
    pdf = "pdf"
    json = "json"


class UsageProblem(Exception):
    """Bad input to the command itself: one line on stderr, exit code 2."""


def _version(show: bool) -> None:
    if show:
        print(f"autodiff_trace {__version__}")
        raise typer.Exit()


@app.command(context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def trace_backward(
    script: Annotated[str, typer.Argument(help="The Python script to run, as `python SCRIPT` would.",
                                          show_default=False)],
    script_args: Annotated[Optional[List[str]], typer.Argument(
        help="Arguments passed to the script (its sys.argv[1:]).", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for trace.jsonl, the SVGs and the findings "
        "(default: outputs/<script name>)", show_default=False)] = None,
    sink: Annotated[Optional[List[SinkName]], typer.Option(
        "--sink", "-s", help="What to produce; repeat to choose several "
        f"(default: {', '.join(DEFAULT_SINKS)})", show_default=False)] = None,
    pass_no: Annotated[Optional[int], typer.Option(
        "--pass", help="Draw only this backward pass (1 is the first).", min=1)] = None,
    max_nodes: Annotated[int, typer.Option(
        help="Nodes drawn per diagram; larger graphs are folded into counted groups.", min=10)] = 300,
    check_grads: Annotated[bool, typer.Option(
        "--check-grads", help="Compare every leaf's gradient with a central difference "
        "(autodiff_trace.Value graphs).")] = False,
    live: Annotated[Optional[bool], typer.Option(
        "--live/--no-live", help="Redraw the tree while a pass runs (default: when the output is "
        "a terminal)", show_default=False)] = None,
    delay: Annotated[float, typer.Option(
        help="Seconds to wait at each event in the live view, to watch a pass unfold.", min=0)] = 0.0,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No terminal report; still write the files.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with 1 when an error-level finding exists (for CI).")] = False,
    engine: Annotated[Optional[str], typer.Option(
        help="Your node class as module:Class, when it is not found by itself.",
        show_default=False)] = None,
    attr: Annotated[Optional[List[str]], typer.Option(
        help="Attribute names of your node class, e.g. --attr grad=der --attr parents=_prev "
        "(keys: value, grad, parents, backward, op).", show_default=False)] = None,
    renderer: Annotated[Optional[str], typer.Option(
        help="Graphviz renderer: the bundled one by default, 'dot' for the system Graphviz, "
        "or a path to a dot program.", show_default=False)] = None,
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """Run [bold]SCRIPT[/bold] and show every backward pass it makes: which node fired, what it
    added to which parent, and what was already there.

    Works on autodiff_trace.Value, on micrograd, and on your own engine, unmodified.

    Example: [bold]trace-backward examples/notebook_bug.py[/bold]
    """
    try:
        path = _readable_script(script)
        if path.suffix == ".ipynb" and script_args:
            raise UsageProblem(f"a notebook takes no arguments; put options before it: "
                               f"trace-backward {' '.join(script_args)} {script}")
        instrumentation = _instrumentation(engine, attr or [])
        folder = out if out is not None else Path("outputs") / path.stem
        _writable_folder(folder)
    except UsageProblem as problem:
        print(f"trace-backward: {problem}", file=sys.stderr)
        raise typer.Exit(2)
    chosen = [s.value for s in sink] if sink else list(DEFAULT_SINKS)
    if quiet and "rich" in chosen:
        chosen.remove("rich")
    console = Console(highlight=False, record="rich" in chosen)
    try:
        session = open_session(folder, sinks=chosen, pass_no=pass_no, max_nodes=max_nodes,
                               check_grads=check_grads, live=live, delay=delay, console=console,
                               renderer=renderer, progress=True,
                               metadata={"script": str(path), "script_args": list(script_args or [])})
        code = _run(path, list(script_args or []), session, instrumentation)
    except (OSError, UsageProblem) as problem:  # the output cannot be written, or --engine is wrong
        print(f"trace-backward: {problem}", file=sys.stderr)
        raise typer.Exit(2)
    reports = _save_report(console, folder, path) if "rich" in chosen else []
    _summarise(session.written + reports)
    if strict and code == 0 and session.findings.errors:
        code = 1
    raise typer.Exit(code)


def _run(path: Path, args: List[str], session, instrumentation) -> int:
    """Run the script as ``python SCRIPT ARGS`` would; returns its exit code. Whatever
    happens, the tracer is closed, so every file holds the trace up to that point."""
    from ..adapters import EngineSpecError

    saved_argv, saved_path0 = sys.argv[:], sys.path[0]
    sys.argv = [str(path), *args]
    sys.path[0] = str(path.parent.resolve())
    code = 0
    try:
        with session.tracer, instrumentation as found:
            try:
                if path.suffix == ".ipynb":
                    from .notebook import run_notebook
                    code = run_notebook(path)
                else:
                    runpy.run_path(str(path), run_name="__main__")
            except SystemExit as exit_:
                code = _exit_code(exit_)
            except KeyboardInterrupt:
                print("\ntrace-backward: interrupted; the trace so far is kept", file=sys.stderr)
                code = 130
            except EngineSpecError as problem:  # the class named by --engine lacks an attribute
                print(f"trace-backward: {problem}", file=sys.stderr)
                code = 2
            except BaseException as exc:  # the user's script failed: report it as python would
                _print_user_traceback(exc, path)
                code = 1
        if found.nodes_seen == 0 and session.tracer.event_count == 0:
            print(f"trace-backward: the script made no autodiff nodes that could be traced. "
                  f"{found.describe_search()}", file=sys.stderr)
        elif found.nodes_seen == 0 and found.engine:  # autodiff_trace.Value was traced, not it
            print(f"trace-backward: {found.describe_search()}", file=sys.stderr)
    finally:
        sys.argv, sys.path[0] = saved_argv, saved_path0
    return code


def _instrumentation(engine: Optional[str], attr_options: List[str]):
    """The adapters' instrumentation for ``--engine`` and ``--attr``; a malformed one is
    a usage problem, found before the script runs."""
    from ..adapters import EngineSpecError, Instrumentation, parse_attr_options

    try:
        return Instrumentation(engine=engine, attrs=parse_attr_options(attr_options) or None)
    except EngineSpecError as problem:
        raise UsageProblem(str(problem)) from None


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=sys.stderr)
    return 1


def _print_user_traceback(exc: BaseException, script: Path) -> None:
    """The traceback as ``python SCRIPT`` prints it: from the script's own frames down,
    without the frames of this tool (the runner, the engine's internals, the adapters)."""
    target = str(script.resolve())
    report = traceback.TracebackException.from_exception(exc)
    part: Optional[traceback.TracebackException] = report
    while part is not None:
        frames = list(part.stack)
        start = next((i for i, f in enumerate(frames) if os.path.abspath(f.filename) == target), 0)
        part.stack = traceback.StackSummary.from_list(
            [f for f in frames[start:] if not f.filename.startswith(PACKAGE_DIR)])
        part = part.__cause__ or part.__context__
    print("".join(report.format()), end="", file=sys.stderr)


def _readable_script(script: str) -> Path:
    path = Path(script)
    if not path.exists():
        raise UsageProblem(f"no such script: {script} (give the path of a Python file)")
    if path.is_dir():
        raise UsageProblem(f"{script} is a folder; give the path of a Python file inside it")
    if not os.access(path, os.R_OK):
        raise UsageProblem(f"cannot read {script} (permission denied); check its permissions")
    if path.suffix == ".ipynb":
        from .notebook import NotebookError, read_notebook
        try:
            read_notebook(path)
        except NotebookError as problem:
            raise UsageProblem(str(problem)) from None
    return path


def _writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"cannot create the output folder {folder}: {exc.strerror or exc}; "
                           f"choose another with --out") from None
    try:  # os.access says yes to root everywhere: try it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageProblem(f"cannot write to the output folder {folder} ({exc.strerror or exc}); "
                           f"choose another with --out") from None


def _save_report(console: Console, folder: Path, script: Path) -> List[Path]:
    """The terminal report as text and as an SVG picture (Rich's own export)."""
    as_text, as_svg = folder / "report.txt", folder / "report.svg"
    try:
        as_text.write_text(console.export_text(clear=False), encoding="utf-8")
        console.save_svg(str(as_svg), title=f"trace-backward {script.name}")
    except OSError as exc:
        print(f"trace-backward: could not save the report in {folder}: {exc}", file=sys.stderr)
        return []
    return [as_text, as_svg]


def _summarise(files: List[Path]) -> None:
    if files:
        shown = ", ".join(str(f) for f in files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
        print(f"trace-backward: wrote {shown}", file=sys.stderr)


def main() -> None:
    """Entry point of the ``trace-backward`` command."""
    app(prog_name="trace-backward")


if __name__ == "__main__":
    main()

"""``autodiff-trace``: the command line, one Typer app.

``autodiff-trace run SCRIPT [ARGS...]`` runs a script unmodified with every backward
pass traced (``trace-backward`` is the same command under its own name);
``render``, ``diff``, ``html``, ``export`` and ``stats`` work on a saved trace.
The run options are declared in :mod:`.options`; the running is :mod:`.runner`'s.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from .._version import __version__
from .options import UsageProblem, chosen_sinks, nothing_traced, typer_parameters, RUN_OPTIONS
from .output import claim_folder
from .runner import Target, Voice, default_folder, resolve_target, run_target
from .session import open_session
from .tools import COMMANDS

__all__ = ["app", "trace_backward", "main", "main_trace_backward"]

PROG = "trace-backward"
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
# Options before the script are the tool's; from the script on, every word is the script's.
RUN_SETTINGS = {**HELP_OPTIONS, "allow_interspersed_args": False, "ignore_unknown_options": True}
FLAG_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


class _FlagHelp:
    """``--help`` is a flag: its row in the help shows no value after it, like the others."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Command(_FlagHelp, TyperCommand):
    pass


class _Group(_FlagHelp, TyperGroup):
    pass


def _version(show: bool) -> None:
    if show:
        print(f"autodiff_trace {__version__}")
        raise typer.Exit()


VersionOption = Annotated[Optional[bool], typer.Option(
    "--version", callback=_version, is_eager=True, metavar="", help="Show the version and exit.")]


def run(script: Annotated[Optional[str], typer.Argument(
            metavar="SCRIPT", show_default=False,
            help="The Python script, notebook (.ipynb) or folder with __main__.py to run, as "
                 "`python SCRIPT` would.")] = None,
        script_args: Annotated[Optional[List[str]], typer.Argument(
            metavar="ARGS", show_default=False,
            help="Everything after SCRIPT: the script's own arguments (its sys.argv[1:]).")] = None,
        *, version: VersionOption = None, **options) -> None:
    """Run [bold]SCRIPT[/bold] and show every backward pass it makes: which node fired, what it
    added to which parent, and what was already there.

    Works on autodiff_trace.Value, on micrograd, and on your own engine, unmodified.

    Options go before SCRIPT; everything after SCRIPT is passed to it.

    Example: [bold]trace-backward examples/notebook_bug.py[/bold]
    """
    voice = Voice(PROG)
    args = list(script_args or [])
    try:
        target = _target(script, args, options)
        if options["module"] is not None and script is not None:
            args.insert(0, script)
        instrumentation = _instrumentation(options["engine"], options["attr"] or [], options["sweep"])
        claim = claim_folder(options["out"] if options["out"] is not None
                             else default_folder(target))
    except UsageProblem as problem:
        voice.say(str(problem))
        raise typer.Exit(2)
    folder = claim.folder  # held until the run ends: a concurrent run writes elsewhere
    if claim.notice is not None:
        voice.say(claim.notice)
    chosen = chosen_sinks(options["sink"], options["quiet"])
    console = Console(file=sys.stdout, highlight=False, record="rich" in chosen)
    try:
        session = open_session(
            folder, sinks=chosen, pass_no=options["pass_no"], max_nodes=options["max_nodes"],
            modules=options["modules"], check_grads=options["check_grads"], live=options["live"],
            delay=options["delay"],
            console=console, renderer=options["renderer"], progress=True,
            full_report=options["full_report"], keep=options["keep"],
            metadata={"script": target.shown_as, "script_args": args})
    except OSError as problem:  # the trace file cannot be written
        voice.say(str(problem))
        claim.release()
        raise typer.Exit(2)
    code, found = run_target(target, args, session, instrumentation, voice)
    note = nothing_traced(found, session.tracer.event_count, "script")
    if note is not None:
        voice.say(note)
    reports = _save_report(console, folder, target, voice) if "rich" in chosen else []
    if not options["quiet"]:
        if session.kept_note is not None:
            voice.say(session.kept_note)
        _summarise(session.written + (reports or []), voice)
    if code == 0 and (session.output_failed or reports is None):
        code = 2
    if options["strict"] and code == 0 and (session.findings.errors or note is not None):
        code = 1
    if options["open"]:
        _open_result(session, voice)
    claim.release()
    raise typer.Exit(code)


def _target(script: Optional[str], args: List[str], options: dict) -> Target:
    """The program to run; a word that looks like an option or a flag's value is refused."""
    if options["module"] is None and script is not None and not Path(script).exists():
        if script.startswith("-"):
            raise UsageProblem(f"no such option: {script}; the options are listed by "
                               f"{PROG} --help (they go before the script)")
        set_flags = [o.flags[0] for o in RUN_OPTIONS if o.kind is bool and options[o.name]]
        if script.lower() in FLAG_WORDS and set_flags:
            raise UsageProblem(f"{set_flags[-1]} takes no value, so {script!r} was read as the "
                               f"script; write {PROG} {set_flags[-1]} {' '.join(args[:1]) or 'SCRIPT'}")
    target = resolve_target(script, options["module"])
    if target.kind == "notebook" and args:
        raise UsageProblem(f"a notebook takes no arguments; put options before it: "
                           f"{PROG} {' '.join(args)} {script}")
    return target


def _instrumentation(engine: Optional[str], attr_options: List[str], sweep: Optional[str] = None):
    """The adapters' instrumentation for ``--engine``, ``--attr`` and ``--sweep``; a malformed
    one is a usage problem, found before the script runs."""
    from ..adapters import EngineSpecError, Instrumentation, parse_attr_options

    try:
        return Instrumentation(engine=engine, attrs=parse_attr_options(attr_options) or None, sweep=sweep)
    except EngineSpecError as problem:
        raise UsageProblem(str(problem)) from None


def _save_report(console: Console, folder: Path, target: Target,
                 voice: Voice) -> Optional[List[Path]]:
    """The terminal report as text and as an SVG picture (Rich's own export); None when
    they cannot be written (and nothing half-written is left)."""
    as_text, as_svg = folder / "report.txt", folder / "report.svg"
    try:
        as_text.write_text(console.export_text(clear=False), encoding="utf-8")
        console.save_svg(str(as_svg), title=f"{PROG} {Path(target.name).name}")
    except OSError as exc:
        voice.say(f"could not save the report in {folder}: {exc}")
        for path in (as_text, as_svg):
            if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
                path.unlink()
        return None
    return [as_text, as_svg]


def _summarise(files: List[Path], voice: Voice) -> None:
    if files:
        shown = ", ".join(str(f) for f in files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
        voice.say(f"wrote {shown}")


def _open_result(session, voice: Voice) -> None:
    """``--open``: the last pass's SVG, in the system's viewer."""
    import click

    pictures = [p for p in (session.dot.written if session.dot else []) if p.suffix == ".svg"]
    if not pictures:
        voice.say("--open: no pass was drawn as SVG, so there is nothing to open")
        return
    click.launch(str(pictures[-1]))


_declared = list(inspect.signature(run, eval_str=True).parameters.values())
run.__signature__ = inspect.Signature([*_declared[:2], *typer_parameters(), _declared[2]])
run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}

app = typer.Typer(cls=_Group, rich_markup_mode="rich", add_completion=False, no_args_is_help=True,
                  context_settings=HELP_OPTIONS)
app.command("run", cls=_Command, context_settings=RUN_SETTINGS)(run)
for _command in COMMANDS:
    app.command(cls=_Command, context_settings=HELP_OPTIONS)(_command)


@app.callback()
def _options(version: VersionOption = None) -> None:
    """Trace backward passes ([bold]run[/bold]), and replay, compare, play and export the
    saved traces (trace.jsonl)."""


# `trace-backward` is `autodiff-trace run` under its own name: the same function.
trace_backward = typer.Typer(rich_markup_mode="rich", add_completion=False)
trace_backward.command(cls=_Command, context_settings=RUN_SETTINGS)(run)


def main() -> None:
    """Entry point of the ``autodiff-trace`` command."""
    app(prog_name="autodiff-trace")


def main_trace_backward() -> None:
    """Entry point of the ``trace-backward`` command (and of ``python -m autodiff_trace``)."""
    trace_backward(prog_name=PROG)


if __name__ == "__main__":
    main()

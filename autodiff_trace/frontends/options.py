"""The run options, declared once: ``autodiff-trace run`` (and ``trace-backward``) builds
its Typer parameters from :data:`RUN_OPTIONS`, and ``%%trace_backward`` its argparse
arguments, so an option added here appears in both.

Also here: the one usage-error exception and what the options mean for a run
(which sinks ``--quiet`` leaves, the note when nothing was traced).
"""

from __future__ import annotations

import argparse
import enum
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional, Sequence, Tuple

from ..core.keep import DEFAULT_KEEP, KeepPolicy
from ..views.graph.folded import MODULE_VIEWS
from .session import DEFAULT_SINKS, SINKS

__all__ = ["RunOption", "RUN_OPTIONS", "UsageProblem", "typer_parameters", "add_arguments",
           "flags_taking_values", "chosen_sinks", "nothing_traced"]


class UsageProblem(Exception):
    """Bad input to a command: one line naming the problem and the fix, exit code 2."""


@dataclass(frozen=True)
class RunOption:
    """One option of a traced run.

    Args:
        name: the parameter's Python name (``pass_no`` for ``--pass``).
        flags: its spellings, long first (``("--out", "-o")``).
        kind: ``str``, ``int``, ``float``, ``Path`` or ``bool`` (a flag: it takes no value).
        default: its value when not given; ``None`` means "decided by the run".
        help: one sentence for ``--help``.
        many: may be repeated; the value is a list.
        choices: the values allowed, when they are few.
        minimum: the smallest value allowed (numbers).
        negatable: a flag with a ``--no-`` form, ``None`` when neither is given.
        in_magic: also an option of ``%%trace_backward``.
        magic_help: the help text there, when it differs.
        check: refuses a bad value with a one-line ValueError (the value as given).
    """

    name: str
    flags: Tuple[str, ...]
    kind: type
    default: Any
    help: str
    many: bool = False
    choices: Tuple[str, ...] = ()
    minimum: Optional[float] = None
    negatable: bool = False
    in_magic: bool = True
    magic_help: Optional[str] = None
    check: Optional[Callable[[Any], Any]] = None


RUN_OPTIONS: Tuple[RunOption, ...] = (
    RunOption("module", ("-m",), str, None, "Run a module as `python -m MODULE` does; the "
              "arguments after it are its own.", in_magic=False),
    RunOption("out", ("--out", "-o"), Path, None, "Folder for trace.jsonl, the SVGs and the "
              "findings (default: outputs/<script name>, outputs/<name>_ipynb for a notebook)",
              magic_help="Folder for trace.jsonl, the SVGs and the findings (default: a "
              "temporary folder)"),
    RunOption("sink", ("--sink", "-s"), str, None, "What to produce; repeat to choose several "
              f"(default: {', '.join(DEFAULT_SINKS)})", many=True, choices=SINKS),
    RunOption("pass_no", ("--pass",), int, None, "Draw only this backward pass (1 is the first).",
              minimum=1),
    RunOption("max_nodes", ("--max-nodes",), int, 300, "Nodes drawn per diagram; larger graphs "
              "are folded into counted groups.", minimum=10),
    RunOption("modules", ("--modules",), str, "auto", "How a diagram draws the nodes a model's "
              "modules make (PyTorch): box (a box per module around its nodes), fold (one box per "
              "module), none; auto folds a pass with many of them.", choices=MODULE_VIEWS),
    RunOption("check_grads", ("--check-grads",), bool, False, "Compare every leaf's gradient "
              "with a central difference (autodiff_trace.Value graphs)."),
    RunOption("live", ("--live",), bool, None, "Redraw the tree while a pass runs (default: "
              "when the output is a terminal)", negatable=True, in_magic=False),
    RunOption("delay", ("--delay",), float, 0.0, "Seconds to wait at each event in the live "
              "view, to watch a pass unfold.", minimum=0, in_magic=False),
    RunOption("keep", ("--keep",), str, DEFAULT_KEEP, "Passes whose every event trace.jsonl "
              "keeps and the diagrams draw: words joined by commas, from all, first:N, last, "
              "last:N, findings, every:N; every other pass is analysed, then summarised in "
              "one line.", check=KeepPolicy.parse),
    RunOption("full_report", ("--full-report",), bool, False, "Print every pass's tree and "
              "ledger; by default only those of passes with findings, when short enough."),
    RunOption("quiet", ("--quiet", "-q"), bool, False, "No terminal report and no 'wrote' "
              "line; still write the files.",
              magic_help="No report; only the findings and the diagrams."),
    RunOption("strict", ("--strict",), bool, False, "Exit with 1 when an error-level finding "
              "exists or nothing could be traced (for CI).",
              magic_help="Raise an error when an error-level finding exists (for CI)."),
    RunOption("open", ("--open",), bool, False, "Open the last pass's SVG when the run ends.",
              in_magic=False),
    RunOption("engine", ("--engine",), str, None, "Your node class as module:Class, when it is "
              "not found by itself."),
    RunOption("attr", ("--attr",), str, None, "Attribute names of your node class, e.g. "
              "--attr grad=der --attr parents=_prev (keys: value, grad, parents, backward, op).",
              many=True),
    RunOption("sweep", ("--sweep",), str, None, "The function of your engine that fills a dict "
              "of gradients, as module:function, when it is not found by itself."),
    RunOption("renderer", ("--renderer",), str, None, "Graphviz renderer: the bundled one by "
              "default, 'dot' for the system Graphviz, or a path to a dot program."),
)


def typer_parameters() -> List[inspect.Parameter]:
    """The run options as keyword parameters annotated for Typer."""
    import typer

    parameters = []
    for option in RUN_OPTIONS:
        settings: dict = {"help": option.help, "show_default": option.default is not None
                          and option.default is not False}
        if option.kind is bool:
            flags = (f"{option.flags[0]}/--no-{option.flags[0][2:]}", *option.flags[1:]) \
                if option.negatable else option.flags
            settings["metavar"] = ""  # a flag: --help shows no value after it
            annotation = Optional[bool] if option.default is None else bool
        else:
            flags = option.flags
            kind = _choice(option) if option.choices else option.kind
            annotation = List[kind] if option.many else kind
            if option.default is None:
                annotation = Optional[annotation]
        if option.minimum is not None:
            settings["min"] = option.minimum
        if option.check is not None:
            settings["callback"] = _typer_check(option.check)
        parameters.append(inspect.Parameter(
            option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default,
            annotation=Annotated[annotation, typer.Option(*flags, **settings)]))
    return parameters


def _typer_check(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An option's ``check`` as a Typer callback: a bad value is a usage error."""
    import typer

    def callback(value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except ValueError as problem:
                raise typer.BadParameter(str(problem)) from None
        return value

    return callback


def _choice(option: RunOption) -> type:
    """The option's choices as the ``str`` Enum through which Typer offers a choice."""
    return enum.Enum(option.name.title().replace("_", ""), {c: c for c in option.choices}, type=str)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``%%trace_backward`` (those with ``in_magic``) on an argparse parser."""
    for option in RUN_OPTIONS:
        if not option.in_magic:
            continue
        settings: dict = {"dest": option.name, "help": option.magic_help or option.help}
        if option.kind is bool:
            settings["action"] = "store_true"
        else:
            settings["type"] = _checked(option)
            settings["action"] = "append" if option.many else "store"
            settings["default"] = option.default
        if option.choices:
            settings["choices"] = option.choices
        parser.add_argument(*option.flags, **settings)


def _checked(option: RunOption) -> Callable[[str], Any]:
    """The option's type, refusing values under its minimum in argparse's own words."""
    def convert(text: str):
        value = option.kind(text)
        if option.check is not None:
            try:
                option.check(value)
            except ValueError as problem:
                raise argparse.ArgumentTypeError(str(problem)) from None
        if option.minimum is not None and value < option.minimum:
            raise argparse.ArgumentTypeError(f"{option.flags[0]} must be at least {option.minimum}")
        return value

    convert.__name__ = option.kind.__name__  # argparse names the type in its messages
    return convert


def flags_taking_values(in_magic: bool = True) -> frozenset:
    """Every spelling of the options that are followed by a value."""
    return frozenset(flag for option in RUN_OPTIONS if option.kind is not bool
                     and (option.in_magic or not in_magic) for flag in option.flags)


def chosen_sinks(sink: Optional[Sequence[str]], quiet: bool) -> List[str]:
    """The sinks of a run: those asked for (or the default); ``--quiet`` drops the report."""
    chosen = [str(getattr(s, "value", s)) for s in sink] if sink else list(DEFAULT_SINKS)
    return [s for s in chosen if not (quiet and s == "rich")]


def nothing_traced(found, event_count: int, what: str) -> Optional[str]:
    """The note after a run that traced no node of the user's engine, or None.

    Args:
        found: the instrumentation, which knows what it looked for.
        event_count: events the tracer received.
        what: "script" or "cell".
    """
    if found.nodes_seen == 0 and event_count == 0:
        return (f"the {what} made no autodiff nodes that could be traced. "
                f"{found.describe_search()}")
    if found.nodes_seen == 0 and found.engine:  # autodiff_trace.Value was traced, not it
        return found.describe_search()
    return None

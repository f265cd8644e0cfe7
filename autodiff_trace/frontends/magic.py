"""The IPython extension: ``%load_ext autodiff_trace``, then ``%%trace_backward`` on a cell.

``%%trace_backward [options]`` runs the cell with every backward pass traced and shows,
under it, the report with its findings and the diagram of each pass;
``%trace_backward [options] statement`` does the same for one statement. The options
are the command line's. Sites read ``cell 5, line 3``, for this cell and the cells run
before it.
"""

from __future__ import annotations

import ast
import linecache
import re
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from rich.console import Console

from .options import UsageProblem, add_arguments, chosen_sinks, flags_taking_values, nothing_traced
from .runner import prepare_folder
from .session import Session, open_session
from ..core.sites import label_source

__all__ = ["TraceBackwardMagics", "load_ipython_extension", "unload_ipython_extension",
           "split_options"]

_TAKES_VALUE = flags_taking_values(in_magic=True)
_TOKEN = re.compile(r"""("[^"]*"|'[^']*'|\S+)\s*""")


def split_options(line: str) -> Tuple[List[str], str]:
    """The leading options of a magic's line, and the statement after them (``--`` ends
    the options early).

    >>> split_options('--pass 2 -q --out "my dir" backward(z, "a b")')
    (['--pass', '2', '-q', '--out', 'my dir'], 'backward(z, "a b")')
    >>> split_options("-- -x.grad")
    ([], '-x.grad')
    """
    options: List[str] = []
    rest = line.strip()
    wants_value = False
    while rest:
        match = _TOKEN.match(rest)
        token = match.group(1)
        if wants_value:
            options.append(token.strip("'\"") if token[0] in "'\"" else token)
            wants_value = False
        elif token == "--":
            rest = rest[match.end():]
            break
        elif token.startswith("-") and token[1:2].isalpha() or token.startswith("--"):
            options.append(token)
            wants_value = token in _TAKES_VALUE
        else:
            break
        rest = rest[match.end():]
    return options, rest


def _python(source: str, filename: str, shell) -> str:
    """The code as Python: as written when it compiles (its line numbers kept exactly),
    else IPython's translation of its ``%magic`` and ``!shell`` lines."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
        return source
    except SyntaxError:
        blank = len(source) - len(source.lstrip("\n"))  # IPython drops leading blank lines
        return "\n" * blank + shell.transform_cell(source)


@magics_class
class TraceBackwardMagics(Magics):
    """``%%trace_backward`` and ``%trace_backward``; see the module's docstring."""

    def __init__(self, shell=None, **kwargs) -> None:
        super().__init__(shell, **kwargs)
        self._labelled: set = set()  # IPython's names for earlier cells, already labelled
        self.last: Optional[Session] = None  # the session of the last traced cell

    @line_cell_magic
    def trace_backward(self, line: str, cell: Optional[str] = None):
        """Trace the backward passes of this cell (``%%trace_backward [options]``) or of one
        statement (``%trace_backward [options] statement``), and show them under it."""
        tokens, statement = split_options(line)
        options = PARSER.parse_args(tokens)
        if cell is None and not statement.strip():
            raise UsageError("%trace_backward needs a statement, e.g. %trace_backward "
                             "backward(z); use %%trace_backward to trace a whole cell")
        if cell is not None and statement.strip():
            raise UsageError(f"%%trace_backward takes options only, not {statement.strip()!r}; "
                             f"put the code on the lines below it")
        from ..adapters import EngineSpecError, parse_attr_options

        try:
            attrs = parse_attr_options(options.attr)
        except EngineSpecError as problem:
            raise UsageError(str(problem)) from None
        number = self._cell_number()
        source, first_line, raw = self._locate(line, cell, statement, number)
        return self._trace(source, first_line, raw, number, options, attrs)

    # -- where the code is ----------------------------------------------------------
    def _cell_number(self) -> int:
        """The execution count of the cell running this magic: that of the innermost calling
        frame IPython compiled, since IPython versions differ on when the count moves on."""
        numbered = getattr(self.shell.compile, "_filename_map", None) or {}
        frame = sys._getframe(1)
        while frame is not None:
            number = numbered.get(frame.f_code.co_filename)
            if isinstance(number, int):
                return number
            frame = frame.f_back
        return self.shell.execution_count

    def _locate(self, line: str, cell: Optional[str], statement: str,
                number: int) -> Tuple[str, int, str]:
        """(code to run, its first line in the cell, the whole cell as written)."""
        if cell is not None:
            return cell, 2, f"%%trace_backward {line}\n{cell}"
        history = getattr(self.shell.history_manager, "input_hist_raw", [])
        raw = (history[number] if 0 <= number < len(history) else None) or f"%trace_backward {line}"
        first_line = next((n for n, text in enumerate(raw.splitlines(), start=1)
                           if "trace_backward" in text and statement.strip() in text), 1)
        return statement, first_line, raw

    def _label_cells(self, filename: str, raw: str, count: int) -> str:
        """Register this cell's source; label IPython's earlier cells ``cell N`` too."""
        linecache.cache[filename] = (len(raw), None, raw.splitlines(True), filename)
        numbered = getattr(self.shell.compile, "_filename_map", None)
        if isinstance(numbered, dict):
            numbered[filename] = count  # IPython's tracebacks then say "Cell In[N]"
            for name, number in list(numbered.items()):
                if name not in self._labelled:
                    label_source(name, f"cell {number}")
                    self._labelled.add(name)
        label_source(filename, f"cell {count}")
        return f"cell {count}"

    # -- running it -----------------------------------------------------------------
    def _trace(self, source: str, first_line: int, raw: str, number: int, options, attrs: dict):
        from ..adapters import EngineSpecError, instrument

        shell = self.shell
        filename = f"<cell {number}: trace_backward>"
        label = self._label_cells(filename, raw, number)
        code = "\n" * (first_line - 1) + _python(source, filename, shell)
        tree = ast.parse(code, filename)
        shown = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        try:
            folder = prepare_folder(options.out) if options.out else \
                Path(tempfile.mkdtemp(prefix="autodiff_trace_"))
        except UsageProblem as problem:
            raise UsageError(str(problem)) from None
        sinks = chosen_sinks(options.sink, options.quiet)
        session = self.last = open_session(
            folder, sinks=sinks, pass_no=options.pass_no, max_nodes=options.max_nodes,
            modules=options.modules, check_grads=options.check_grads, live=False,
            console=Console(highlight=False),
            renderer=options.renderer, metadata={"cell": label}, full_report=options.full_report,
            keep=options.keep)
        namespace = shell.user_ns
        result = None
        try:
            with session.tracer, instrument(engine=options.engine, attrs=attrs or None,
                                            sweep=options.sweep) as found:
                exec(compile(tree, filename, "exec"), namespace)
                if shown is not None:
                    result = eval(compile(ast.Expression(shown.value), filename, "eval"), namespace)
        except EngineSpecError as problem:
            raise UsageError(str(problem)) from None
        finally:
            self._show(session, quiet=options.quiet)
        note = nothing_traced(found, session.tracer.event_count, "cell")
        if note is not None:
            print(f"trace_backward: {note}")
        if options.strict and session.findings.errors:
            raise UsageError(f"--strict: {len(session.findings.errors)} error-level finding(s); "
                             f"see {folder / 'findings.txt'}")
        return None if source.rstrip().endswith(";") else result

    def _show(self, session: Session, *, quiet: bool) -> None:
        """Under the cell: the findings (already in the report unless quiet), then each
        pass's diagram."""
        from IPython.display import SVG, display

        if quiet and session.findings.findings:
            from ..views.terminal.findings import FindingsPanel

            Console(highlight=False).print(FindingsPanel(session.findings.findings,
                                                         title="findings", max_findings=200))
        for path in session.dot.written if session.dot else []:
            if path.suffix == ".svg":
                display(SVG(filename=str(path)))


PARSER = MagicArgumentParser(prog="%trace_backward", add_help=False,
                             description="Trace the backward passes of a cell or a statement.")
add_arguments(PARSER)
TraceBackwardMagics.trace_backward.__doc__ += "\n" + PARSER.format_help()


def load_ipython_extension(ipython) -> None:
    """``%load_ext autodiff_trace``: register the ``trace_backward`` magics."""
    ipython.register_magics(TraceBackwardMagics)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext autodiff_trace``: remove the ``trace_backward`` magics."""
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("trace_backward", None)

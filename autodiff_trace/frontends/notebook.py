"""Run a Jupyter notebook's code cells in order, in one namespace, as "Run all" would.

``trace-backward NOTEBOOK.ipynb`` uses this inside its tracer: each cell is compiled
under a name of its own, registered with linecache and :func:`sites.label_source`, so
node sites, findings and diagrams read ``cell 5, line 3`` (the cell's execution count
when it has one, its position in the notebook otherwise). The file is read and
validated by ``nbformat``.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import re
import sys
import traceback
import types
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, TextIO, Tuple

from ..core.sites import label_source

__all__ = ["NotebookError", "Cell", "cell_labels", "read_notebook", "run_cells", "run_notebook",
           "without_ipython_lines"]

class NotebookError(Exception):
    """The notebook cannot be read: its message is one line naming the problem and the fix."""


class Cell(NamedTuple):
    """One code cell, ready to run."""

    position: int  # 1 for the notebook's first cell, markdown cells counted
    label: str  # "cell 5": how sites and messages name it
    source: str
    filename: str  # what its code is compiled as; linecache holds its source under it


def cell_labels(positions: Sequence[int], counts: Sequence[Optional[int]]) -> List[str]:
    """``cell N`` per code cell: N is its execution count when it has one, its position
    otherwise; when that would give two cells one name, every cell goes by position.

    >>> cell_labels([2, 4, 5], [17, None, 3])
    ['cell 17', 'cell 4', 'cell 3']
    >>> cell_labels([2, 4], [3, 3])
    ['cell 2', 'cell 4']
    """
    labels = [f"cell {c if c is not None else p}" for p, c in zip(positions, counts)]
    if len(set(labels)) < len(labels):
        labels = [f"cell {p}" for p in positions]
    return labels


def read_notebook(path: Path) -> List[Cell]:
    """The code cells of a notebook, in order, after validating it with ``nbformat``.

    Raises:
        NotebookError: nbformat is missing, or the file is not a valid notebook.
    """
    try:
        import nbformat
    except ImportError:
        raise NotebookError("reading notebooks needs nbformat, a dependency of autodiff_trace; "
                            "reinstall autodiff_trace to bring it back") from None
    try:
        notebook = nbformat.read(str(path), as_version=4)
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path} is not a valid notebook: {_first_line(exc.message)}; "
                            f"open and save it in Jupyter to repair it") from None
    except OSError as exc:
        raise NotebookError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # not JSON, or JSON that nbformat cannot make a notebook of
        raise NotebookError(f"{path} is not a readable notebook ({_first_line(str(exc))}); "
                            f"give a .ipynb file saved by Jupyter") from None
    code = [(i, c) for i, c in enumerate(notebook.cells, start=1) if c.cell_type == "code"]
    labels = cell_labels([i for i, _ in code], [c.get("execution_count") for _, c in code])
    return [Cell(i, label, c.source, f"<{path.name} {label}>")
            for (i, c), label in zip(code, labels)]


def _first_line(text: str) -> str:
    """
    >>> _first_line("  'cells' is a required property\\n\\nFailed validating")
    "'cells' is a required property"
    """
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


_IPYTHON_LINE = re.compile(
    r"^\s*(?:[%!?]|[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*[%!]|[\w.]+\?{1,2}\s*$)")


def without_ipython_lines(source: str) -> Tuple[str, List[int]]:
    """The source with IPython-only lines (``%magic``, ``!shell``, ``x = !ls``, ``obj?``)
    made ``pass``, so line numbers stay; and those lines' numbers. A ``%%`` cell magic
    makes the whole cell IPython-only.

    >>> without_ipython_lines("%matplotlib inline\\nx = 1\\nfiles = !ls\\n")
    ('pass\\nx = 1\\npass\\n', [1, 3])
    >>> without_ipython_lines("%%time\\nx = 1")
    ('', [1, 2])
    """
    lines = source.splitlines(True)
    if source.lstrip().startswith("%%"):
        return "", list(range(1, len(lines) + 1))
    skipped = []
    for number, line in enumerate(lines, start=1):
        if _IPYTHON_LINE.search(line):
            indent = line[:len(line) - len(line.lstrip())]
            lines[number - 1] = indent + "pass" + ("\n" if line.endswith("\n") else "")
            skipped.append(number)
    return "".join(lines), skipped


class _Runner:
    """Runs cells in one module namespace; IPython syntax goes through an IPython shell
    bound to that namespace when IPython is installed."""

    def __init__(self, module: types.ModuleType, err: TextIO) -> None:
        self.module, self.err = module, err
        self._shell = None

    def run(self, cell: Cell) -> None:
        linecache.cache[cell.filename] = (len(cell.source), None,
                                          cell.source.splitlines(True), cell.filename)
        label_source(cell.filename, cell.label)
        source = self._python(cell)
        tree = ast.parse(source, cell.filename)
        shown = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if shown is not None:
            tree.body.pop()
        namespace = self.module.__dict__
        exec(compile(tree, cell.filename, "exec"), namespace)
        if shown is not None:  # the cell's last expression is shown, as in Jupyter
            value = eval(compile(ast.Expression(shown.value), cell.filename, "eval"), namespace)
            if value is not None and not cell.source.rstrip().endswith(";"):
                print(repr(value))

    def _python(self, cell: Cell) -> str:
        """The cell as Python source: as written when it compiles, else IPython's translation
        of it, else with its IPython-only lines skipped."""
        try:
            compile(cell.source, cell.filename, "exec", dont_inherit=True)
            return cell.source
        except SyntaxError as error:
            syntax_error = error
        shell = self._ipython()
        if shell is not None:
            return shell.transform_cell(cell.source)
        source, skipped = without_ipython_lines(cell.source)
        if not skipped:
            raise syntax_error
        lines = cell.source.splitlines()
        first = lines[skipped[0] - 1].strip()
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        print(f"trace-backward: {cell.label}: skipped IPython-only line {skipped[0]} "
              f"({first}){more}; install IPython to run them (the notebook extra of "
              f"autodiff_trace)", file=self.err)
        return source

    def _ipython(self):
        if self._shell is None:
            try:
                from IPython.core.interactiveshell import InteractiveShell
                from traitlets.config import Config
            except ImportError:
                return None
            config = Config()
            config.HistoryManager.enabled = False  # leave the user's history alone
            main = sys.modules.get("__main__")
            self._shell = InteractiveShell(user_module=self.module, config=config)
            sys.modules["__main__"] = main  # the shell installs its own; the run owns this
        return self._shell


def run_cells(cells: Sequence[Cell], *, err: Optional[TextIO] = None) -> int:
    """Run the cells in order in one fresh ``__main__`` namespace, as Jupyter's "Run all".

    A cell that raises stops the run: its traceback and a line naming the cell go to
    ``err``, and 1 is returned (0 when every cell ran). ``SystemExit`` and
    ``KeyboardInterrupt`` pass through, as from a script.
    """
    err = err if err is not None else sys.stderr
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module  # pickle and class lookups see the notebook's names
    if any("display(" in cell.source for cell in cells):
        _add_display(module)
    runner = _Runner(module, err)
    try:
        for index, cell in enumerate(cells):
            try:
                runner.run(cell)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                _print_cell_traceback(exc, cell, err)
                left = len(cells) - index - 1
                rest = f"; the {left} cells after it were not run" if left > 1 else (
                    "; the cell after it was not run" if left else "")
                print(f"trace-backward: {cell.label} raised {type(exc).__name__}{rest} "
                      f"(the trace so far is kept)", file=err)
                return 1
    finally:
        sys.modules["__main__"] = saved_main
    return 0


def _add_display(module: types.ModuleType) -> None:
    """Jupyter gives every cell ``display``; IPython's, when installed, prints outside it."""
    try:
        from IPython.display import display
    except ImportError:
        return
    module.__dict__["display"] = display


def run_notebook(path: Path, *, err: Optional[TextIO] = None) -> int:
    """Read, validate and run a notebook's code cells; see :func:`run_cells`.

    Raises:
        NotebookError: the file is not a valid notebook.
    """
    return run_cells(read_notebook(Path(path)), err=err)


def _print_cell_traceback(exc: BaseException, cell: Cell, err: TextIO) -> None:
    """The traceback from the failing cell's own frame down, as Jupyter shows it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != cell.filename:
        tb = tb.tb_next
    if tb is None and not isinstance(exc, SyntaxError):  # raised before the cell's code ran
        tb = exc.__traceback__
    traceback.print_exception(type(exc), exc, tb, file=err)


if __name__ == "__main__":
    sys.exit(run_notebook(Path(sys.argv[1])))

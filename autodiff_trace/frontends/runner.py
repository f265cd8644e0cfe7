"""Run the user's program under a session, as ``python`` would run it.

A script (``python s.py``), a module (``python -m pkg.mod``), a folder with
``__main__.py`` (``python pkgdir``) or a notebook ("Run all"). Whatever happens,
Ctrl-C, SIGTERM or an exception, the tracer is closed, so every file holds the
trace up to that point; a failure shows the traceback of the user's frames only.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import runpy
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional

from ..core.sites import PACKAGE_DIR
from .options import UsageProblem

__all__ = ["Voice", "Target", "resolve_target", "default_folder", "prepare_folder", "run_target",
           "print_user_traceback"]

INTERRUPTED, TERMINATED = 130, 128 + signal.SIGTERM


class Voice:
    """The tool's own lines on stderr, through the print and the stream of its start,
    so a script that replaces ``builtins.print`` or ``sys.stderr`` cannot silence or
    break them."""

    def __init__(self, prog: str) -> None:
        self.prog, self._print, self._stream = prog, builtins.print, sys.stderr

    def say(self, message: str) -> None:
        self._print(f"{self.prog}: {message}", file=self._stream, flush=True)


class Target(NamedTuple):
    """What to run: ``kind`` is script, notebook, package (a folder) or module."""

    kind: str
    name: str  # the path as given, or the module's dotted name
    path: Optional[Path]  # the file or folder; None for a module

    @property
    def shown_as(self) -> str:
        """How messages name it."""
        return f"-m {self.name}" if self.kind == "module" else self.name


def resolve_target(script: Optional[str], module: Optional[str]) -> Target:
    """The program named on the command line, checked before anything runs."""
    if module is not None:
        if not all(part.isidentifier() for part in module.split(".")):
            raise UsageProblem(f"-m {module}: not a module name; give a dotted name such as "
                               f"package.module")
        sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(module.split(".")[0])
        finally:
            sys.path.pop(0)
        if found is None:
            raise UsageProblem(f"no module named {module.split('.')[0]} (run from the folder "
                               f"that holds it, or install it)")
        return Target("module", module, None)
    if script is None:
        raise UsageProblem("give the Python script to run (or -m MODULE); see --help")
    path = Path(script)
    if not path.exists():
        raise UsageProblem(f"no such script: {script} (give the path of a Python file)")
    if path.is_dir():
        if not (path / "__main__.py").is_file():
            raise UsageProblem(f"{script} is a folder without __main__.py; give the path of a "
                               f"Python file inside it")
        return Target("package", script, path)
    if not os.access(path, os.R_OK):
        raise UsageProblem(f"cannot read {script} (permission denied); check its permissions")
    if path.suffix == ".ipynb":
        from .notebook import NotebookError, read_notebook
        try:
            read_notebook(path)
        except NotebookError as problem:
            raise UsageProblem(str(problem)) from None
        return Target("notebook", script, path)
    return Target("script", script, path)


def default_folder(target: Target) -> Path:
    """``outputs/<name>``: the file's stem, with its suffix when it is not ``.py``, so
    ``x.py`` and ``x.ipynb`` write to different folders.

    >>> [str(default_folder(Target(k, n, None))) for k, n in
    ...  [("script", "a/x.py"), ("notebook", "x.ipynb"), ("package", "pkg/"), ("module", "p.m")]]
    ['outputs/x', 'outputs/x_ipynb', 'outputs/pkg', 'outputs/p.m']
    """
    if target.kind == "module":
        return Path("outputs") / target.name
    path = Path(target.name)
    suffix = path.suffix if target.kind != "package" else ""
    return Path("outputs") / (path.stem + (f"_{suffix[1:]}" if suffix not in ("", ".py") else ""))


def prepare_folder(folder: Path) -> Path:
    """The output folder as an absolute path (a script's ``os.chdir`` cannot move it),
    created and checked writable."""
    folder = Path(os.path.abspath(folder))
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
    return folder


class _Terminated(BaseException):
    """SIGTERM arrived: unwind the user's program like Ctrl-C does."""


def _sigterm_handler(before) -> Callable:
    """SIGTERM unwinds the program in this process; a child it forked (a pool's worker, which
    its pool ends with SIGTERM) gets ``before``, the handling it would have had untraced:
    an exception there could leave a lock of the pool's queue held, and hang the pool."""
    pid = os.getpid()

    def on_sigterm(signum, frame) -> None:
        if os.getpid() == pid:
            raise _Terminated()
        signal.signal(signal.SIGTERM, before)  # a signal that beat the fork hook below
        if before == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGTERM)
        elif callable(before):
            before(signum, frame)

    on_sigterm.untraced = before
    return on_sigterm


def _untraced_sigterm_in_child() -> None:
    """A forked child starts with the SIGTERM handling it would have had untraced. Set at
    the fork, not when the signal comes: a Python handler runs only between bytecodes, so a
    worker blocked on its pool's queue lock would never run it and never end."""
    before = getattr(signal.getsignal(signal.SIGTERM), "untraced", None)
    if before is not None:
        try:
            signal.signal(signal.SIGTERM, before)
        except ValueError:  # not this interpreter's main thread: the handler's fallback stays
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_untraced_sigterm_in_child)


def run_target(target: Target, args: List[str], session, instrumentation, voice: Voice):
    """Run the program as ``python`` would; (its exit code, the instrumentation's findings)."""
    from ..adapters import EngineSpecError

    saved_argv, saved_path, saved_cwd = sys.argv[:], sys.path[:], os.getcwd()
    try:
        saved_term = signal.getsignal(signal.SIGTERM)
        if saved_term is None:  # set outside Python: restored as the default
            saved_term = signal.SIG_DFL
        signal.signal(signal.SIGTERM, _sigterm_handler(saved_term))
    except ValueError:  # not the main thread: leave SIGTERM alone
        saved_term = None
    code, found = 0, None
    try:
        with session.tracer, instrumentation as found:
            try:
                code = _run(target, args)
            except SystemExit as exit_:
                code = _exit_code(exit_, voice)
            except KeyboardInterrupt:
                voice.say("interrupted; the trace so far is kept")
                code = INTERRUPTED
            except _Terminated:
                voice.say("terminated; the trace so far is kept")
                code = TERMINATED
            except EngineSpecError as problem:  # the class named by --engine lacks an attribute
                voice.say(str(problem))
                code = 2
            except BaseException as exc:  # the user's program failed: report it as python would
                print_user_traceback(exc, target, voice)
                code = 1
    finally:
        if saved_term is not None:
            signal.signal(signal.SIGTERM, saved_term)
        sys.argv, sys.path[:] = saved_argv, saved_path
        try:
            os.chdir(saved_cwd)
        except OSError:
            pass
    if session.tracer.in_forked_child:  # a child the program forked ends as it would untraced
        raise SystemExit(code)
    return code, found


def _run(target: Target, args: List[str]) -> int:
    if target.kind == "module":
        sys.argv = [target.name, *args]  # runpy sets argv[0] to the module's file
        sys.path.insert(0, os.getcwd())
        runpy.run_module(target.name, run_name="__main__", alter_sys=True)
        return 0
    sys.argv = [target.name, *args]
    if target.kind == "package":  # runpy puts the folder first on sys.path itself
        runpy.run_path(target.name, run_name="__main__")
        return 0
    sys.path[0] = str(target.path.parent.resolve())
    if target.kind == "notebook":
        from .notebook import run_notebook
        return run_notebook(target.path)
    runpy.run_path(target.name, run_name="__main__")
    return 0


def _exit_code(exit_: SystemExit, voice: Voice) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    voice._print(exit_.code, file=voice._stream)
    return 1


def print_user_traceback(exc: BaseException, target: Target, voice: Voice) -> None:
    """The traceback as ``python`` prints it: from the program's own frames down,
    without the frames of this tool (the runner, the engine's internals, the adapters)."""
    first = target.path / "__main__.py" if target.kind == "package" else target.path
    origin = None if first is None else os.path.abspath(first)
    report = traceback.TracebackException.from_exception(exc)
    part: Optional[traceback.TracebackException] = report
    while part is not None:
        frames = list(part.stack)
        start = next((i for i, f in enumerate(frames)
                      if f.filename == str(first) or os.path.abspath(f.filename) == origin), None)
        if start is None:  # a module: its frames are the first outside this tool and runpy
            start = next((i for i, f in enumerate(frames) if not f.filename.startswith(PACKAGE_DIR)
                          and not f.filename.endswith("runpy.py")), 0)
        part.stack = traceback.StackSummary.from_list(
            [f for f in frames[start:] if not f.filename.startswith(PACKAGE_DIR)])
        part = part.__cause__ or part.__context__
    voice._print("".join(report.format()), end="", file=voice._stream)

"""The one owner of output paths: nothing lost, nothing overwritten.

:func:`write_output` writes a file the way every command does. A regular file (or
nothing) is replaced whole: the content goes to a temporary file beside it, renamed
over it only when complete, so a failure leaves the old file as it was. A symlink is
followed: its target is written and the link stays. A character device or a FIFO
(``/dev/stdout``, a pipe) is written directly, never replaced; a socket, a block
device or a folder is refused. Every failure is one line (:class:`OutputError`).

:func:`claim_folder` gives a run its output folder: a lock on ``<folder>/.lock`` held
while the run lasts. A second run at the same time gets the next free folder,
``outputs/train-2``, and says so; a run that ends lets the next one reuse the folder.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path
from typing import IO, Callable, Dict, Optional, Tuple, TypeVar, Union

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not separated there
    fcntl = None

from ..sinks._errors import cannot_write
from .options import UsageProblem
from .runner import prepare_folder

__all__ = ["OutputError", "write_output", "FolderClaim", "claim_folder"]

T = TypeVar("T")
LOCK_NAME = ".lock"
MAX_FOLDERS = 100
# What a run writes into its folder; only these are removed when a failed write left them empty.
RUN_OUTPUT = re.compile(r"(trace\.jsonl|findings\.(json|txt)|report\.(txt|svg)"
                        r"|pass_\d+\.(dot|svg|png|pdf))")
_KINDS = ((stat.S_ISSOCK, "socket"), (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "folder"))


class OutputError(OSError):
    """An output that cannot be written, said in one line naming it and the fix."""


def write_output(path: Union[str, os.PathLike], write: Callable[[IO], T], *, what: str,
                 binary: bool = False) -> T:
    """Write ``path`` through ``write(file)`` and return what it returns.

    Args:
        path: the file as the user named it; messages say it this way.
        write: fills the open file (text, UTF-8; bytes when ``binary``).
        what: what the file holds, for messages (``"the timeline"``).
    """
    shown = f"{what} to {path}"
    try:
        mode = os.stat(path).st_mode  # through any symlink: what would be written
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _one_line(shown, exc) from None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):  # /dev/stdout may lead to a pipe
            return _write_in_place(Path(path), write, shown, binary)
        kind = next((name for test, name in _KINDS if test(mode)), "special file")
        raise OutputError(f"cannot write {shown}: it is a {kind}, not a file; give the path of a file")
    target = Path(os.path.realpath(path))  # a symlink writes its target; the link stays
    return _write_beside(target, mode, write, shown, binary)


def _open(fd: int, binary: bool) -> IO:
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")


def _write_in_place(target: Path, write: Callable[[IO], T], shown: str, binary: bool) -> T:
    """A device or a FIFO: written as a shell redirection would, never replaced."""
    try:
        with _open(os.open(target, os.O_WRONLY), binary) as file:
            return write(file)
    except OSError as exc:
        raise _one_line(shown, exc) from None


def _write_beside(target: Path, mode: Optional[int], write: Callable[[IO], T], shown: str,
                  binary: bool) -> T:
    """A regular file or nothing: a temporary file beside it, renamed over it when whole."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # a new file gets the umask's permissions; one being replaced keeps its own
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _one_line(shown, exc) from None
    try:
        with _open(fd, binary) as file:
            if mode is not None:
                os.fchmod(file.fileno(), stat.S_IMODE(mode))
            result = write(file)
            file.flush()
            os.fsync(file.fileno())
        if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
            raise OutputError(f"cannot write {shown}: it was replaced by a special file while "
                              f"being written; give the path of a file")
        os.replace(temp, target)
        return result
    except OutputError:
        raise
    except OSError as exc:
        raise _one_line(shown, exc) from None
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _one_line(shown: str, exc: OSError) -> OutputError:
    said = cannot_write(shown, exc)
    error = OutputError(str(said))
    error.errno = said.errno
    return error


class FolderClaim:
    """A run's hold on its output folder, from :func:`claim_folder` until :meth:`release`.

    ``folder`` is absolute (a script's ``os.chdir`` cannot move it); ``notice`` is the
    line to show when the run was sent to another folder than the one asked, else None.
    """

    def __init__(self, folder: Path, lock: Optional[int], *, asked: Path, given: Path) -> None:
        self.folder = folder
        self.notice = (f"{asked} is in use by another run; writing to {given} instead"
                       if given != asked else None)
        self._lock, self._pid = lock, os.getpid()
        self._before = _snapshot(folder)

    def release(self) -> None:
        """End the claim: remove the run's outputs that a failed write left empty, then
        the lock. A forked child leaves both to the run that claimed them."""
        if self._pid is None or os.getpid() != self._pid:
            return
        for name, seen in _snapshot(self.folder).items():
            if RUN_OUTPUT.fullmatch(name) and seen[1] == 0 and self._before.get(name) != seen:
                _unlink_quietly(self.folder / name)
        if self._lock is not None:
            _unlink_quietly(self.folder / LOCK_NAME)  # still ours: unlinked before it is let go
            os.close(self._lock)
        self._lock = self._pid = None

    def __enter__(self) -> "FolderClaim":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def claim_folder(folder: Union[str, os.PathLike]) -> FolderClaim:
    """The output folder for a run: ``folder`` (created and checked writable), or, while
    another run holds it, the next free one of ``folder-2``, ``folder-3``, ...

    Raises:
        UsageProblem: the folder cannot be created or written, or every candidate is in use.
    """
    asked = Path(folder)
    for number in range(1, MAX_FOLDERS + 1):
        candidate = asked if number == 1 else asked.with_name(f"{asked.name}-{number}")
        absolute = prepare_folder(candidate)
        if fcntl is None:
            return FolderClaim(absolute, None, asked=asked, given=candidate)
        lock = _try_lock(absolute / LOCK_NAME)
        if lock is not None:
            return FolderClaim(absolute, lock, asked=asked, given=candidate)
    raise UsageProblem(f"{asked} and the {MAX_FOLDERS - 1} folders after it are all in use by "
                       f"other runs; choose another folder with --out")


def _try_lock(path: Path) -> Optional[int]:
    """An open, exclusively locked ``path``; None when another run holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UsageProblem(f"cannot lock the output folder {path.parent} ({exc.strerror or exc}); "
                               f"choose another with --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the holder before us may have removed the file as it let go: lock the new one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _snapshot(folder: Path) -> Dict[str, Tuple[int, int]]:
    """Each regular file in ``folder`` (not a link): its modification time and size."""
    seen = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return seen
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                seen[entry.name] = (info.st_mtime_ns, info.st_size)
        except OSError:
            continue
    return seen


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

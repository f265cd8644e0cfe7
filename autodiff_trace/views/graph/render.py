"""Turn DOT source into SVG, PNG or PDF with a Graphviz program run as a subprocess.

The default renderer is ``graphviz-pure``, a self-contained port of Graphviz's ``dot``
that pip installs with this package, so ``pip install`` alone can draw, with the same
bytes on every platform. A system Graphviz ``dot`` is used when asked for
(``renderer="dot"``, or the ``AUTODIFF_TRACE_DOT`` environment variable naming a
binary) and for PDF, which graphviz-pure cannot write. Every run is bounded: a
timeout ends it, and PNG output is scaled down to at most ``max_png_side`` pixels a
side (graphviz-pure's PNG has no cap of its own). Failures raise :class:`RenderError`
with a one-line message that says what to do.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import NamedTuple, Optional, Union

from ...core.text import number

__all__ = [
    "ENV_VAR", "FORMATS", "PURE", "RenderError", "Renderer",
    "find_renderer", "render", "render_to_file", "render_command",
]

ENV_VAR = "AUTODIFF_TRACE_DOT"
PURE = "graphviz-pure"
FORMATS = ("svg", "png", "pdf")
PURE_FORMATS = frozenset({"svg", "png"})  # graphviz-pure 0.2 has no PDF or PostScript writer
PNG_DPI = 96


class RenderError(RuntimeError):
    """Rendering failed; the message is one line naming the cause and the fix."""


class Renderer(NamedTuple):
    """A Graphviz program to run: ``name`` for messages, ``path`` to execute."""

    name: str
    path: str

    @property
    def is_pure(self) -> bool:
        return Path(self.path).name.lower().startswith(PURE)


def _pure_path() -> Optional[str]:
    """Where pip put ``graphviz-pure``: on PATH, or beside this interpreter's scripts."""
    found = shutil.which(PURE)
    if found:
        return found
    folders = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    try:
        folders.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:  # pragma: no cover - a platform without a user scheme
        pass
    for folder in folders:
        found = shutil.which(PURE, path=folder) if folder else None
        if found:
            return found
    return None


def _system_dot() -> Renderer:
    named = os.environ.get(ENV_VAR, "").strip()
    if named:
        found = shutil.which(named)
        if not found:
            raise RenderError(f"{ENV_VAR}={named!r} is not an executable program; "
                              f"set it to the path of Graphviz's dot, or unset it")
        return Renderer(named, found)
    found = shutil.which("dot")
    if not found:
        raise RenderError("no Graphviz `dot` on PATH; install Graphviz (e.g. `apt-get install "
                          f"graphviz`), set {ENV_VAR} to its path, or use the default renderer {PURE}")
    return Renderer("dot", found)


def _pure() -> Renderer:
    found = _pure_path()
    if not found:
        raise RenderError(f"{PURE} is not installed; `pip install {PURE}`, or install Graphviz "
                          f"and pass renderer='dot'")
    return Renderer(PURE, found)


def find_renderer(renderer: Optional[str] = None, fmt: str = "svg") -> Renderer:
    """The program that will render ``fmt``.

    Args:
        renderer: None for the default (``AUTODIFF_TRACE_DOT`` if set, else graphviz-pure,
            else a system ``dot``; PDF always goes to a system ``dot``), ``"dot"`` for the
            system Graphviz, ``"graphviz-pure"``, or the name or path of any dot-compatible
            program.
        fmt: the output format, one of :data:`FORMATS`.
    """
    fmt = _check_format(fmt)
    if renderer in (None, "", "auto"):
        if os.environ.get(ENV_VAR, "").strip() or fmt not in PURE_FORMATS:
            return _system_dot()
        try:
            return _pure()
        except RenderError:
            try:
                return _system_dot()
            except RenderError:
                raise RenderError(f"no Graphviz renderer found: `pip install {PURE}` or install "
                                  f"Graphviz (e.g. `apt-get install graphviz`)") from None
    if renderer == "dot":
        return _system_dot()
    if renderer == PURE:
        chosen = _pure()
    else:
        found = shutil.which(str(renderer))
        if not found:
            raise RenderError(f"renderer {renderer!r} is not an executable program; use 'dot', "
                              f"'{PURE}' or the path of a dot-compatible program")
        chosen = Renderer(str(renderer), found)
    if chosen.is_pure and fmt not in PURE_FORMATS:
        raise RenderError(f"{PURE} cannot write {fmt.upper()}; install Graphviz (e.g. `apt-get "
                          f"install graphviz`) and use renderer='dot'")
    return chosen


def _check_format(fmt: str) -> str:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise RenderError(f"cannot render format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _png_size(data: bytes) -> tuple:
    """Width and height from a PNG header.

    >>> _png_size(bytes.fromhex('89504e470d0a1a0a0000000d49484452000000640000001e'))
    (100, 30)
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        raise RenderError("the renderer's PNG output is not a PNG image")
    return struct.unpack(">II", data[16:24])


def render(source: str, fmt: str = "svg", *, renderer: Optional[str] = None,
           timeout: float = 30.0, max_png_side: int = 4096) -> bytes:
    """Lay out and draw DOT ``source``; returns the image's bytes.

    Args:
        source: DOT text.
        fmt: ``"svg"``, ``"png"`` or ``"pdf"``.
        renderer: see :func:`find_renderer`.
        timeout: seconds before the renderer is stopped and :class:`RenderError` raised.
        max_png_side: a PNG is scaled down so that neither side exceeds this many pixels.
    """
    fmt = _check_format(fmt)
    program = find_renderer(renderer, fmt)
    args = [program.path, f"-T{fmt}"]
    if fmt == "png":  # never let a huge layout become a gigapixel bitmap
        inches = max_png_side / PNG_DPI
        args += [f"-Gdpi={PNG_DPI}", f"-Gsize={inches:.2f},{inches:.2f}"]
    try:
        done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{program.name} did not finish within {number(timeout)} s; draw fewer "
                          f"nodes (max_nodes) or allow more time (timeout)") from None
    except OSError as exc:
        raise RenderError(f"cannot run {program.name} ({program.path}): "
                          f"{exc.strerror or exc}") from None
    if done.returncode != 0 or not done.stdout:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[0] if lines else f"exit status {done.returncode}"
        raise RenderError(f"{program.name} could not render {fmt.upper()}: {reason}")
    if fmt == "png":
        width, height = _png_size(done.stdout)
        if max(width, height) > max_png_side + 1:
            raise RenderError(f"{program.name} drew a {width}x{height} PNG, larger than "
                              f"max_png_side={max_png_side}; use SVG for large graphs")
    return done.stdout


def render_to_file(source: str, path: Union[str, os.PathLike], fmt: Optional[str] = None,
                   **options) -> Path:
    """Render ``source`` into ``path`` (format from its suffix unless given); returns the path.

    ``dot`` (or ``gv``) writes the source itself. Nothing is written when rendering
    fails, so a stale image never passes for a new one.
    """
    path = Path(path)
    fmt = str(fmt or path.suffix or "svg").lower().lstrip(".")
    data = source.encode("utf-8") if fmt in ("dot", "gv") else render(source, fmt, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def render_command(dot_path: Union[str, os.PathLike], fmt: str = "svg") -> str:
    """The shell command that renders a written ``.dot`` file by hand.

    >>> render_command("out/pass_1.dot", "svg")
    'graphviz-pure -Tsvg out/pass_1.dot -o out/pass_1.svg'
    >>> render_command("pass_1.dot", "pdf")
    'dot -Tpdf pass_1.dot -o pass_1.pdf'
    """
    dot_path = Path(dot_path)
    program = PURE if fmt in PURE_FORMATS else "dot"
    return f"{program} -T{fmt} {dot_path.as_posix()} -o {dot_path.with_suffix('.' + fmt).as_posix()}"

"""The engine corpus: learner autodiff engines in many designs, each with a correct driver
and bugs to inject one at a time.

Every design is a folder beside this file holding the engine's modules, a driver script
and a ``case.py`` that defines ``DESIGN = Design(...)``. A bug is a one-line patch
(``find`` -> ``replace``) applied to a copy of the folder; ``at`` names the line the
finding must point at (by default, the patched line itself).
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

__all__ = ["HERE", "Bug", "Design", "designs", "materialise", "line_of"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bug:
    """One injected bug: the finding kind it must produce and where."""

    kind: str
    file: str
    find: str
    replace: str
    at: Optional[Tuple[str, str]] = None
    note: str = ""
    deterministic: bool = True  # False: the buggy program's output varies from run to run

    @property
    def name(self) -> str:
        return self.note or self.kind


@dataclass(frozen=True)
class Design:
    """One engine design with its correct driver."""

    name: str
    description: str
    backward_passes: int
    script: str = "train.py"
    options: Tuple[str, ...] = ()
    bugs: Tuple[Bug, ...] = field(default_factory=tuple)


def designs() -> list[Design]:
    """Every design in the corpus, sorted by folder name."""
    found = []
    for case in sorted(HERE.glob("*/case.py")):
        spec = importlib.util.spec_from_file_location(f"_corpus_{case.parent.name}", case)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append(module.DESIGN)
    return found


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the one line of ``path`` that contains ``text``."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    if len(hits) != 1:
        raise ValueError(f"{text!r} is on {len(hits)} lines of {path}, not exactly one")
    return hits[0]


def materialise(design: Design, bug: Optional[Bug], into: Path) -> Tuple[Path, Optional[Tuple[Path, int]]]:
    """Copy a design's folder into ``into`` with ``bug`` applied.

    Returns the driver script's path and, for a bug, the (file, line) a finding must name.
    """
    folder = into / design.name
    shutil.copytree(HERE / design.name, folder, ignore=shutil.ignore_patterns("__pycache__", "case.py"))
    if bug is None:
        return folder / design.script, None
    target = folder / bug.file
    source = target.read_text()
    if source.count(bug.find) != 1:
        raise ValueError(f"{bug.find!r} occurs {source.count(bug.find)} times in {design.name}/{bug.file}")
    target.write_text(source.replace(bug.find, bug.replace))
    at_file, at_text = bug.at or (bug.file, bug.replace)
    return folder / design.script, (folder / at_file, line_of(folder / at_file, at_text))

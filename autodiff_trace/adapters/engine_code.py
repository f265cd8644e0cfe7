"""Which source files hold the user's engine being traced: its node classes' methods and
its op functions, as the reporters learn them.

The line to change for a pass's start is the user's call into the engine, whatever the
engine calls its backward pass (``loss.propagate()``, ``reverse(loss)``): the analysis
steps out of these files to find it. It also reads the nodes' values as they are now
(read statically, as the grads before a pass are), to tell gradients added up over a
mini-batch from gradients left over an update.
"""

from __future__ import annotations

import sys
import weakref
from types import CodeType, FunctionType
from typing import Collection, Dict, Set

from .nodeids import as_float
from .roles import static_attr

__all__ = ["register", "unregister", "engine_files", "values_of", "EngineCode"]

_reporters: "weakref.WeakSet" = weakref.WeakSet()


def register(reporter) -> None:
    """Count ``reporter``'s engine (its ``skip`` set of code objects, its nodes): it traces
    a pass."""
    _reporters.add(reporter)


def unregister(reporter) -> None:
    """``reporter`` stopped tracing: its engine is no longer the one being traced."""
    _reporters.discard(reporter)


def engine_files() -> Set[str]:
    """The files defining the code of every engine being traced, and the modules of its
    node classes (a dataclass's methods are compiled from no file): empty when none is."""
    files = set()
    for reporter in list(_reporters):
        files.update(code.co_filename for code in list(reporter.skip))
        for cls in list(reporter.vocab_of):
            files.add(getattr(sys.modules.get(cls.__module__), "__file__", None))
    files.discard(None)
    return files


def values_of(node_ids: Collection[int]) -> Dict[int, float]:
    """The values the live nodes among ``node_ids`` hold now, read without running user
    code; nodes no reporter knows (another engine's, or a replay's) are left out."""
    found: Dict[int, float] = {}
    if not node_ids:
        return found
    for reporter in list(_reporters):  # each id looked up, not every live node scanned
        for node_id in node_ids:
            node = reporter.ids.node(node_id)
            if node is not None:
                vocab = reporter.vocabulary(node)
                if vocab is not None and vocab.value:
                    found[node_id] = as_float(static_attr(node, vocab.value))
    return found


class EngineCode:
    """Tells the engine's code from the user's, for one reporter: a method of the node
    classes, an op function (the reporter's ``skip``), or code in a file that defines a
    node class's methods."""

    def __init__(self, reporter) -> None:
        self.reporter = reporter
        self._files: Dict[type, frozenset] = {}  # node class -> the files of its methods

    def __call__(self, code: CodeType, cls: type) -> bool:
        """Is ``code`` the engine's, for nodes of ``cls``?"""
        if code in self.reporter.skip:
            return True
        files = self._files.get(cls)
        if files is None:
            files = self._files[cls] = frozenset(
                getattr(v, "__wrapped__", v).__code__.co_filename for k in cls.__mro__[:-1]
                for v in vars(k).values() if isinstance(v, FunctionType))
        return code.co_filename in files

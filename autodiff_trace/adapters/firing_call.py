"""A node's backward function as the hooks hand it out: calling it reports the firing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .detect import Vocabulary

if TYPE_CHECKING:
    from .reporter import EngineReporter

__all__ = ["FiringCall"]


class FiringCall:
    """A node's backward function as read from the node: calling it reports the firing."""

    __slots__ = ("fn", "node", "vocab", "reporter")

    def __init__(self, fn, node, vocab: Vocabulary, reporter: "EngineReporter") -> None:
        self.fn, self.node, self.vocab, self.reporter = fn, node, vocab, reporter

    def __call__(self, *args, **kwargs):
        return self.reporter.fire(self, args, kwargs)

    def __getattr__(self, name):  # __name__, __code__, ... of the user's function
        return getattr(self.fn, name)

    def __repr__(self) -> str:
        return repr(self.fn)

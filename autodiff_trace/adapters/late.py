"""Nodes read once the line that made them is done, not when their ``__init__`` returns.

Two designs need it: an op that links its result after making it (``ret = Tensor(...)``;
``ret._ctx = ctx``), and a class whose code reads the frame that called its ``__init__``
(``sys._getframe(1).f_code.co_name`` to name its op), which is hooked at ``__new__`` so
that its ``__init__`` runs as the user's own. The tracer holds such a node's report
until its line is done and then asks here for its op, value and parents.
"""

from __future__ import annotations

from types import FrameType
from typing import Dict, Tuple

from .detect import Vocabulary
from .nodeids import as_float
from .roles import linking_object, op_label, static_attr
from ..core.sites import element_name

__all__ = ["LateNodes"]


class LateNodes:
    """Nodes reported before they are finished, for one reporter."""

    def __init__(self, reporter) -> None:
        self.reporter = reporter
        self.waiting: Dict[int, tuple] = {}  # id() of a node born -> (creator, its offset then, node, vocab)

    def linked(self, node, vocab: Vocabulary, code, value: float) -> Tuple[str, float, tuple]:
        """(op, value, parent ids) of a node whose op may set its parents after making it;
        the op is named by the object linking it (``Mul`` for a ``_ctx``)."""
        reporter = self.reporter
        parents = reporter.graph.parents(node)
        holder = linking_object(node, reporter.is_node) if parents else None
        op = type(holder).__name__.lower() if holder is not None else op_label(node, vocab, parents, code, reporter.skip)
        return op, value, tuple([reporter.ids.of(p) for p in parents])

    def born(self, tracer, node, vocab: Vocabulary, creator: FrameType) -> None:
        """Report a node just allocated: numbered now, after the parents it is made from,
        and read when its line is done."""
        reporter = self.reporter
        node_id = reporter.ids.of(node)
        reporter.constructing.add(id(node))
        self.waiting[id(node)] = (creator, creator.f_lasti, node, vocab)
        tracer.node_created(node_id, "", 0.0, lambda: self._finished(node, vocab, creator),
                            element_name(creator, reporter.skip), skip=reporter.skip, obj=node)

    def still_constructing(self, node) -> bool:
        """Is the node (in ``constructing``) still inside its ``__init__``? One born here
        is not once the line that made it has moved on."""
        born = self.waiting.get(id(node))
        if born is None or born[0].f_lasti == born[1]:
            return True
        self._settle(id(node))
        return False

    def settle(self) -> None:
        """Read the nodes whose ``__init__`` is done, before a write or a firing asks for
        their parents."""
        for key, (creator, lasti, _, _) in list(self.waiting.items()):
            if creator.f_lasti != lasti:
                self._settle(key)

    def _settle(self, key: int) -> None:
        creator, _, node, vocab = self.waiting.pop(key)
        reporter = self.reporter
        reporter.constructing.discard(key)
        reporter.graph.remember(node, reporter.ids.of(node), vocab, creator)
        reporter.rulecheck.node_made(node, vocab, creator)

    def _finished(self, node, vocab: Vocabulary, creator: FrameType) -> Tuple[str, float, tuple]:
        if id(node) in self.waiting:
            self._settle(id(node))
        reporter = self.reporter
        parents = tuple([reporter.ids.of(p) for p in reporter.graph.parents(node)])
        return op_label(node, vocab, parents, creator.f_code, reporter.skip), as_float(static_attr(node, vocab.value)), parents

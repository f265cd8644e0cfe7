"""Compare two traces of the same program: where they part, and which grads end up different.

Node ids are not comparable between runs, so nodes are matched by a key made of the
node's name and its creation site: the function that made it, how many nodes of that
name it had made since the last backward pass, and which backward pass came before.
Line numbers are left out on purpose, so adding a ``zero_grad()`` line does not
unmatch every node after it. A node nobody named (``add#4``) is keyed by its op and
its parents' keys instead. The traces are read pass by pass, in step, so memory
grows with the nodes and the largest pass, not with the length of the trace.
"""

from __future__ import annotations

import difflib
import itertools
import os
from typing import Iterable, List, Optional, Tuple, Union

from ..core.describe import describe
from ..core.events import Event
from ..core.text import number, plural, visible
from .diffkeys import NUMBERS_AT
from .diffside import END, Batch, Keys, Side

__all__ = ["TraceDiff", "diff_traces"]

Source = Union[str, os.PathLike, Iterable[Event]]
ALIGN_LIMIT = 20_000  # events per pass above which the middle is compared in place


def _n(x: Optional[float]):
    """A number made comparable: NaN equals NaN, and 12 significant digits decide.

    >>> _n(0.1 + 0.2) == _n(0.3), _n(float("nan")) == _n(float("nan"))
    (True, True)
    """
    if x is None or x.__class__ is bool:
        return x
    if isinstance(x, complex):
        return ("complex", _n(x.real), _n(x.imag))
    return "nan" if x != x else float(f"{x:.12g}")


def _same(a: Optional[float], b: Optional[float]) -> bool:
    return _n(a) == _n(b)


class TraceDiff:
    """The result of :func:`diff_traces`; ``same`` is True when nothing differs.

    Attributes:
        first: the first pair of steps that disagree, ``(side A event, side B event)``,
            either one None when a trace has an extra step there.
        only_a, only_b: steps present in one trace only (the first ``limit`` of them).
        changed: pairs of steps in the same place that disagree.
        grads: ``(name, grad in A, grad in B)`` for every matched node whose final grad differs.
        differing: the keys of those nodes; :func:`autodiff_trace.views.graph.diff.diff_diagram`
            draws them.
    """

    def __init__(self, a: Side, b: Side, limit: int) -> None:
        self.a, self.b, self.limit = a, b, limit
        self.first: Optional[Tuple[Optional[str], Optional[str]]] = None
        self.only_a: List[str] = []
        self.only_b: List[str] = []
        self.changed: List[Tuple[str, str]] = []
        self.counts = {"only_a": 0, "only_b": 0, "changed": 0}
        self.grads: List[Tuple[str, float, float]] = []
        self.differing: set = set()  # keys of the matched nodes whose final grads differ
        self.nodes_only_a: List[str] = []
        self.nodes_only_b: List[str] = []
        self.findings_only_a: list = []
        self.findings_only_b: list = []

    @property
    def same(self) -> bool:
        return not (self.first or self.grads or self.findings_only_a or self.findings_only_b)

    def _note(self, bucket: str, line) -> None:
        self.counts[bucket] += 1
        target = getattr(self, bucket)
        if len(target) < self.limit:
            target.append(line)

    def _step(self, side: Side, e: Event) -> str:
        where = f"pass {e.pass_no}, " if hasattr(e, "pass_no") else ""
        return f"{where}seq {e.seq}: {describe(e, side.name)}"

    def compare(self, piece_a: list, piece_b: list) -> None:
        """Align one piece of each trace and record what differs."""
        sa = [self.a.sig(e, _n) for _, e in piece_a]  # numbers compared to 12 digits
        sb = [self.b.sig(e, _n) for _, e in piece_b]
        start = next((i for i, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
        end = 0
        while end < min(len(sa), len(sb)) - start and sa[-1 - end] == sb[-1 - end]:
            end += 1
        mid_a, mid_b = sa[start:len(sa) - end], sb[start:len(sb) - end]
        if not mid_a and not mid_b:
            return
        if len(mid_a) + len(mid_b) <= ALIGN_LIMIT:
            ops = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes()
        else:
            ops = [("replace", 0, len(mid_a), 0, len(mid_b))]
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                continue
            ea = [e for _, e in piece_a[start + i1:start + i2]]
            eb = [e for _, e in piece_b[start + j1:start + j2]]
            if self.first is None:
                self.first = (self._step(self.a, ea[0]) if ea else None,
                              self._step(self.b, eb[0]) if eb else None)
            for x, y in itertools.zip_longest(ea, eb):
                if x is not None and y is not None:
                    self._note("changed", (self._step(self.a, x), self._step(self.b, y)))
                elif x is not None:
                    self._note("only_a", self._step(self.a, x))
                else:
                    self._note("only_b", self._step(self.b, y))

    def finish(self) -> None:
        a, b = self.a, self.b
        for key, grad, other in a.grads.unequal(b.grads):
            if not _same(grad, other):
                self.differing.add(key)
                self.grads.append((a.names.get(key, "?"), grad, other))
        nodes_a, nodes_b = self._nodes(a), self._nodes(b)
        self.nodes_only_a = [a.names.get(k, "?") for k in b.lacking(nodes_a)]
        self.nodes_only_b = [b.names.get(k, "?") for k in a.lacking(nodes_b)]
        self.findings_only_a = [f for k, f in a.findings.items() if k not in b.findings]
        self.findings_only_b = [f for k, f in b.findings.items() if k not in a.findings]

    @staticmethod
    def _nodes(side: Side):
        """The nodes compared: every node of a whole trace, or those of the chosen pass."""
        return side.made() if side.pass_no is None else dict.fromkeys(side.last_pass)

    def format(self) -> str:
        """The report as plain text, one fact per line."""
        a, b = self.a, self.b
        lines = [f"{label}: {side.path or 'events'} " + (
            f"(pass {side.pass_no})" if side.pass_no is not None else
            f"({plural(side.count, 'event')}, {plural(side.passes, 'pass')})")
            for label, side in (("A", a), ("B", b))]
        matched = len(self._nodes(a)) - len(self.nodes_only_a)
        lines.append(f"nodes: {matched} matched by name and creation site, "
                     f"{len(self.nodes_only_a)} only in A, {len(self.nodes_only_b)} only in B")
        for label, names in (("A", self.nodes_only_a), ("B", self.nodes_only_b)):
            if names:
                lines.append(f"  only in {label}: " + ", ".join(visible(n) for n in names[:10])
                             + (", ..." if len(names) > 10 else ""))
        if self.first:
            lines += ["", "first divergence:", f"  A {self.first[0] or '(nothing: the trace ends here)'}",
                      f"  B {self.first[1] or '(nothing: the trace ends here)'}"]
        for bucket, title in (("only_a", "steps only in A"), ("only_b", "steps only in B")):
            items = getattr(self, bucket)
            if items:
                lines += ["", f"{title} ({self.counts[bucket]}):"] + [f"  {visible(s, 200)}" for s in items]
                if self.counts[bucket] > len(items):
                    lines.append(f"  ... and {self.counts[bucket] - len(items)} more")
        if self.changed:
            lines += ["", f"steps that differ ({self.counts['changed']}):"]
            for x, y in self.changed:
                lines += [f"  A {visible(x, 200)}", f"  B {visible(y, 200)}"]
        if self.grads:
            width = max(len(visible(n)) for n, _, _ in self.grads[:self.limit])
            lines += ["", f"final grads that differ ({len(self.grads)}):"]
            lines += [f"  {visible(n):<{width}}  A {number(x)}  B {number(y)}" for n, x, y in self.grads[:self.limit]]
        for label, found in (("A", self.findings_only_a), ("B", self.findings_only_b)):
            if found:
                lines += ["", f"findings only in {label} ({len(found)}):"]
                lines += [f"  {visible(describe(f), 300)}" for f in found[:self.limit]]
        lines += ["", "the traces differ" if not self.same else "the traces match"]
        return "\n".join(lines) + "\n"


def _not_end(step) -> bool:
    return step is not END


class _Row:
    """A step of a :class:`~.diffside.Batch` whose event is read only when it is needed."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch, self.index = batch, index

    def event(self) -> Event:
        return self.batch.run.event(self.index)


def _normal(side: Side, step: tuple) -> tuple:
    """The step's signature with numbers taken to 12 digits (:func:`_n`)."""
    sig, e = step
    if e.__class__ is not _Row:
        return side.sig(e, _n)
    sig = list(sig)
    for at in NUMBERS_AT[sig[0]]:
        sig[at] = _n(sig[at])
    return tuple(sig)


def _read(step):
    """The step with its event read."""
    return (step[0], step[1].event()) if step.__class__ is tuple and step[1].__class__ is _Row else step


class _Steps:
    """A side's steps, a step at a time or (while both sides are in runs) many at once."""

    def __init__(self, side: Side) -> None:
        self.steps = side.steps()
        self.batch: Optional[Batch] = None  # the run under way
        self.at = 0  # its next step

    def left(self) -> int:
        """Steps left in the run under way (0: none under way)."""
        return len(self.batch.sigs) - self.at if self.batch is not None else 0

    def skip(self, count: int) -> None:
        self.at += count
        if self.at == len(self.batch.sigs):
            self.batch = None

    def next(self):
        """The next step ``(signature, event or _Row)``, :data:`END`, or None at the end."""
        batch = self.batch
        if batch is None:
            step = next(self.steps, None)
            if step.__class__ is not Batch:
                return step
            batch = self.batch = step
            self.at = 0
        at = self.at
        self.skip(1)
        return batch.sigs[at], _Row(batch, at)

    def rest(self) -> list:
        """The steps up to the end of the piece (:data:`END` taken, not given), events read."""
        return [_read(step) for step in itertools.takewhile(_not_end, iter(self.next, None))]


def _agreeing(a: _Steps, b: _Steps) -> None:
    """Skip the steps both sides' runs under way share as read, many at a time."""
    while a.batch is not None and b.batch is not None:
        count = min(a.left(), b.left())
        sigs_a, sigs_b, at_a, at_b = a.batch.sigs, b.batch.sigs, a.at, b.at
        if sigs_a != sigs_b if at_a == at_b == 0 and len(sigs_a) == len(sigs_b) == count \
                else sigs_a[at_a:at_a + count] != sigs_b[at_b:at_b + count]:
            count = next(i for i in range(count) if sigs_a[at_a + i] != sigs_b[at_b + i])
            a.skip(count)
            b.skip(count)
            return
        a.skip(count)
        b.skip(count)


def diff_traces(a: Source, b: Source, *, pass_no: Union[None, int, Tuple[int, int]] = None,
                limit: int = 20) -> TraceDiff:
    """Compare trace ``a`` with trace ``b`` (paths to ``trace.jsonl`` files, or event lists).

    Args:
        pass_no: None compares whole traces; ``n`` compares pass n of each; ``(n, m)``
            compares pass n of A with pass m of B (two passes of one run: give one file twice).
        limit: list at most this many steps of each sort (all are counted).
    """
    pa, pb = pass_no if isinstance(pass_no, tuple) else (pass_no, pass_no)
    keys = Keys()
    side_a, side_b = Side("A", a, keys, pa), Side("B", b, keys, pb)
    result = TraceDiff(side_a, side_b, limit)
    steps_a, steps_b = _Steps(side_a), _Steps(side_b)
    while True:  # in step while the traces agree; buffer only the rest of a piece that differs
        if steps_a.batch is not None and steps_b.batch is not None:
            _agreeing(steps_a, steps_b)
        x, y = steps_a.next(), steps_b.next()
        if x.__class__ is tuple and y.__class__ is tuple and x[0] == y[0]:
            continue  # the common case: the same step, as read
        if x is None and y is None:
            break
        if x is END and y is END or (x is not None and y is not None and x is not END
                                     and y is not END and (x[0] == y[0] or _normal(side_a, x)
                                                           == _normal(side_b, y))):
            continue  # the same step: equal as read, or once numbers are taken to 12 digits
        rest_a = [] if x is None or x is END else [_read(x), *steps_a.rest()]
        rest_b = [] if y is None or y is END else [_read(y), *steps_b.rest()]
        result.compare(rest_a, rest_b)
    for missing, side in ((pa, side_a), (pb, side_b)):
        if missing is not None and side.root is None:
            raise ValueError(f"pass {missing} is not in trace {side.label} ({side.path or 'events'}, "
                             f"{side.passes} passes)")
    result.finish()
    return result

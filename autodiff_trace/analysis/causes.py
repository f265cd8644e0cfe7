"""One finding per cause: occurrences of the same kind at the same line are grouped.

A *cause* is a finding kind, its severity and the line to change (``site``). Every
time a check sees the bug again it adds an *occurrence* (the pass, the nodes, and
whatever the check needs to word it). A cause is reported live on its first
occurrence; later occurrences update it at the end of each pass and at close, as
another ``diagnostic`` event with the same kind, severity and site, whose message
covers every occurrence so far and whose nodes are the ones new since the last
report. :func:`group` folds such a stream back into one record per cause.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..core.events import Finding
from ..core.text import plural

__all__ = ["Occurrence", "Cause", "Causes", "cause_key", "group", "passes_text", "names_text"]

Key = Tuple[str, str, Optional[str]]


def cause_key(finding: Any) -> Key:
    """The cause a finding or diagnostic belongs to: (kind, severity, site)."""
    return finding.finding, finding.severity, finding.site


class Occurrence:
    """One sighting of a cause: in which pass, about which nodes, with the check's details."""

    __slots__ = ("pass_no", "nodes", "detail")

    def __init__(self, pass_no: int, nodes: Tuple[int, ...], detail: Any) -> None:
        self.pass_no, self.nodes, self.detail = pass_no, nodes, detail


class Cause:
    """Every occurrence of one kind of bug at one line, and how far it has been reported.

    ``describe(cause)`` is the check's wording: it returns ``(message, hint)`` for all
    the occurrences so far.
    """

    __slots__ = ("kind", "severity", "site", "describe", "occurrences", "reported")

    def __init__(self, kind: str, severity: str, site: Optional[str],
                 describe: Callable[["Cause"], Tuple[str, str]]) -> None:
        self.kind, self.severity, self.site, self.describe = kind, severity, site, describe
        self.occurrences: List[Occurrence] = []
        self.reported = 0  # occurrences covered by the findings given so far

    @property
    def first(self) -> Occurrence:
        return self.occurrences[0]

    @property
    def passes(self) -> List[int]:
        """The passes the occurrences belong to, in order, each once (0: outside any pass)."""
        return sorted({o.pass_no for o in self.occurrences})

    def nodes(self, occurrences: Optional[Sequence[Occurrence]] = None) -> Tuple[int, ...]:
        """The nodes of ``occurrences`` (default: all), each once, in order of appearance."""
        seen: Dict[int, None] = {}
        for o in self.occurrences if occurrences is None else occurrences:
            seen.update(dict.fromkeys(o.nodes))
        return tuple(seen)

    def distinct(self, position: int = 0) -> Tuple[int, ...]:
        """The ``position``-th node of every occurrence, each once: the nodes the bug is about."""
        seen: Dict[int, None] = {}
        for o in self.occurrences:
            if len(o.nodes) > position:
                seen[o.nodes[position]] = None
        return tuple(seen)


class Causes:
    """The causes found so far, and the findings that report them.

    Args:
        name: the name to show for a node id.
        limit: at most this many causes of one kind are reported; the others are
            counted in one summary finding at close.
    """

    def __init__(self, name: Callable[[int], str], limit: int) -> None:
        self.name = name
        self.limit = limit
        self.by_key: Dict[Key, Cause] = {}
        self.order: List[Cause] = []
        self.fresh: List[Cause] = []  # causes made since the last new(): most events make none
        self._kinds: Dict[str, int] = {}  # kind -> causes reported
        self._left_out: Dict[str, List] = {}  # kind -> [causes not reported, severity]

    def add(self, kind: str, severity: str, site: Optional[str], pass_no: int, nodes: Iterable[int],
            detail: Any, describe: Callable[[Cause], Tuple[str, str]]) -> None:
        """Record one occurrence of the cause (kind, severity, site)."""
        key = (kind, severity, site)
        cause = self.by_key.get(key)
        if cause is None:
            cause = self.by_key[key] = Cause(kind, severity, site, describe)
            self.order.append(cause)
            self.fresh.append(cause)
        cause.occurrences.append(Occurrence(pass_no, tuple(nodes), detail))

    def new(self) -> List[Finding]:
        """Findings for causes seen for the first time: reported as they happen."""
        if not self.fresh:
            return []
        fresh, self.fresh = self.fresh, []  # in the order they were made, as in ``order``
        return [f for cause in fresh if cause.reported == 0 for f in self._report(cause)]

    def updates(self) -> List[Finding]:
        """Findings for every cause with occurrences not yet reported (end of a pass, close)."""
        return [f for cause in self.order if cause.reported < len(cause.occurrences)
                for f in self._report(cause)]

    def left_out(self) -> List[Finding]:
        """One summary per kind whose causes went over the limit."""
        found = []
        for kind, (count, severity) in self._left_out.items():
            found.append(Finding(
                0, kind, severity,
                f"not listed: {plural(count, 'more ' + kind + ' cause')} in this trace "
                f"(the limit is {self.limit} per kind)",
                (), (), None, "fix the findings above first; raise Diagnoser(limit=...) to list more"))
        self._left_out.clear()
        return found

    def _report(self, cause: Cause) -> List[Finding]:
        fresh = cause.occurrences[cause.reported:]
        if cause.reported == 0:
            count = self._kinds.get(cause.kind, 0)
            if count >= self.limit:
                cause.reported = len(cause.occurrences)
                self._left_out.setdefault(cause.kind, [0, cause.severity])[0] += 1
                return []
            self._kinds[cause.kind] = count + 1
        cause.reported = len(cause.occurrences)
        message, hint = cause.describe(cause)
        nodes = cause.nodes(fresh)
        return [Finding(fresh[-1].pass_no, cause.kind, cause.severity, message, nodes,
                        tuple(self.name(n) for n in nodes), cause.site, hint)]


def passes_text(passes: Sequence[int]) -> str:
    """``backward pass 2``, ``backward passes 2 and 3``, ``backward passes 2–9``.

    >>> passes_text([2]), passes_text([2, 3]), passes_text([2, 3, 4]), passes_text([2, 5, 6])
    ('backward pass 2', 'backward passes 2 and 3', 'backward passes 2–4', 'backward passes 2, 5 and 6')
    """
    passes = sorted(set(passes))
    if len(passes) == 1:
        return f"backward pass {passes[0]}"
    if len(passes) > 2 and passes[-1] - passes[0] == len(passes) - 1:
        return f"backward passes {passes[0]}–{passes[-1]}"
    return f"backward passes {', '.join(map(str, passes[:-1]))} and {passes[-1]}"


def names_text(names: Sequence[str], limit: int = 4) -> str:
    """A few names in full, many as first…last.

    >>> names_text(["x"]), names_text(["x", "y"]), names_text(["a", "b", "c"]), names_text([f"w{i}" for i in range(17)])
    ('x', 'x and y', 'a, b and c', 'w0…w16')
    """
    if len(names) == 1:
        return names[0]
    if len(names) <= limit:
        return f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{names[0]}…{names[-1]}"


def group(diagnostics: Iterable) -> List[dict]:
    """One JSON-ready record per cause from a stream of ``diagnostic`` events (or their
    dicts): the latest message and hint, every pass and node it covers, and one
    occurrence per pass with that pass's nodes."""
    records: Dict[Key, dict] = {}
    for d in diagnostics:
        get = d.get if isinstance(d, dict) else lambda field, d=d: getattr(d, field)
        key = (get("finding"), get("severity"), get("site"))
        record = records.get(key)
        if record is None:
            record = records[key] = {
                "finding": key[0], "severity": key[1], "site": key[2], "message": "", "hint": "",
                "passes": [], "nodes": [], "names": [], "occurrences": []}
        record["message"], record["hint"] = get("message"), get("hint")
        nodes, names = list(get("nodes")), list(get("names"))
        pass_no = get("pass_no")
        occurrence = next((o for o in record["occurrences"] if o["pass_no"] == pass_no), None)
        if occurrence is None:
            occurrence = {"pass_no": pass_no, "nodes": [], "names": []}
            record["occurrences"].append(occurrence)
            if pass_no not in record["passes"]:
                record["passes"].append(pass_no)
        for node, name in zip(nodes, names):
            if node not in occurrence["nodes"]:
                occurrence["nodes"].append(node)
                occurrence["names"].append(name)
            if node not in record["nodes"]:
                record["nodes"].append(node)
                record["names"].append(name)
    for record in records.values():
        record["passes"].sort()
    return list(records.values())

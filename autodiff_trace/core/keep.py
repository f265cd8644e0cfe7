"""Which backward passes keep their full detail in a long run: the keep policy.

Every pass is analysed, whatever the policy; the policy decides only which passes a
trace file (and the diagrams) hold in full. The others are written as one
``pass_summary`` line each. The words of ``--keep``:

- ``all``: every pass in full;
- ``first:N``: the first N passes;
- ``last`` (or ``last:N``): the last pass (the last N), known when the trace ends;
- ``findings``: every pass where a finding first shows (a bug that repeats every
  step keeps the pass where it began, not every later one);
- ``every:N``: passes N, 2N, 3N, ... (a sample of a long run);
- ``small:N``: every pass over at most N nodes (a learner's passes are drawn whole).

Words are joined with commas: the default is ``first:2,findings,last,small:2000``.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from .text import plural

__all__ = ["KeepPolicy", "DEFAULT_KEEP", "NewFindings", "describe_kept"]

DEFAULT_KEEP = "first:2,findings,last,small:2000"
_WORDS = ("all", "first:N", "last", "last:N", "findings", "every:N", "small:N")


class KeepPolicy:
    """The passes to keep in full, parsed from ``--keep``'s text.

    >>> p = KeepPolicy.parse("first:2,findings,last")
    >>> [p.keeps(n, has_findings=n == 5, last=9) for n in (1, 2, 3, 5, 8, 9)]
    [True, True, False, True, False, True]
    >>> KeepPolicy.parse("first:1,small:50").keeps_early(7, False, nodes=40)
    True
    >>> KeepPolicy.parse("all").keeps_everything, str(KeepPolicy.parse("every:10,last"))
    (True, 'every:10,last')
    """

    __slots__ = ("first", "last", "findings", "every", "small", "everything")

    def __init__(self, *, first: int = 0, last: int = 0, findings: bool = False, every: int = 0,
                 small: int = 0, everything: bool = False) -> None:
        self.first, self.last, self.findings = first, last, findings
        self.every, self.small, self.everything = every, small, everything

    @classmethod
    def parse(cls, text: str) -> "KeepPolicy":
        """The policy ``text`` names; a ValueError, one line naming the word and the choices."""
        settings: dict = {}
        words = [w.strip() for w in str(text).split(",")]
        if not any(words):
            raise ValueError(f"--keep needs at least one of {', '.join(_WORDS)}")
        for word in words:
            name, _, count = word.partition(":")
            name = name.lower()
            if name in ("all", "findings") and not count:
                settings["everything" if name == "all" else "findings"] = True
            elif name == "last" and not count:
                settings["last"] = 1
            elif name in ("first", "last", "every", "small") and count:
                if not count.isdigit() or int(count) < (0 if name == "first" else 1):
                    raise ValueError(f"--keep {word}: {name} takes a whole number"
                                     f"{' (0 or more)' if name == 'first' else ' (1 or more)'}, "
                                     f"as in {name}:3")
                settings[name] = int(count)
            else:
                raise ValueError(f"--keep: {word!r} is not a choice; use {', '.join(_WORDS)}, "
                                 f"joined by commas (default {DEFAULT_KEEP})")
        return cls(**settings)

    @property
    def keeps_everything(self) -> bool:
        return self.everything

    def keeps_early(self, pass_no: int, has_findings: bool, nodes: Optional[int] = None) -> bool:
        """Known to be kept as soon as the pass and its findings are in (before the end);
        ``nodes``: how many nodes the pass walks, when known."""
        return (self.everything or pass_no <= self.first or (self.findings and has_findings)
                or (self.every > 0 and pass_no % self.every == 0)
                or (nodes is not None and nodes <= self.small))

    def keeps(self, pass_no: int, has_findings: bool, last: int, nodes: Optional[int] = None) -> bool:
        """Is ``pass_no`` kept in a trace whose last pass is ``last``?"""
        return self.keeps_early(pass_no, has_findings, nodes) or pass_no > last - self.last

    def __str__(self) -> str:
        if self.everything:
            return "all"
        words = [f"first:{self.first}"] if self.first else []
        words += ["findings"] if self.findings else []
        words += [f"every:{self.every}"] if self.every else []
        words += ["last" if self.last == 1 else f"last:{self.last}"] if self.last else []
        words += [f"small:{self.small}"] if self.small else []
        return ",".join(words) or "first:0"


class NewFindings:
    """Tells a finding seen for the first time from a cause reported again (same kind,
    same site): only the first keeps its pass under ``findings``.

    >>> from autodiff_trace.core.events import Diagnostic
    >>> new = NewFindings()
    >>> d = Diagnostic(5, 0.1, 3, "stale_gradient", "warning", "...", (1,), ("w",), "t.py:9", "...")
    >>> new.is_new(d), new.is_new(d._replace(seq=9, pass_no=4)), new.is_new(d._replace(site="t.py:2"))
    (True, False, True)
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set = set()

    def is_new(self, diagnostic) -> bool:
        key = (diagnostic.finding, diagnostic.site)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _ranges(numbers: Iterable[int]) -> str:
    """``1–3, 5 and 9``: pass numbers with their runs joined.

    >>> _ranges([1, 2, 3, 5, 9]), _ranges([4]), _ranges([2, 3, 7])
    ('1–3, 5 and 9', '4', '2, 3 and 7')
    """
    runs: List[Tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    shown = [f"{a}–{b}" if b > a + 1 else str(n) for a, b in runs for n in ((a,) if b > a + 1 else range(a, b + 1))]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def describe_kept(kept: List[int], summarised: List[int], policy: KeepPolicy,
                  where: str = "trace.jsonl") -> Optional[str]:
    """The line that says what a run kept in full, or None when it kept every pass.

    >>> describe_kept([1, 2, 3, 7], [4, 5, 6], KeepPolicy.parse("first:3,findings,last"))
    'trace.jsonl holds every event of passes 1–3 and 7 (--keep first:3,findings,last); 3 passes are summarised in one line each (--keep all keeps every event)'
    """
    if not summarised:
        return None
    held = f"every event of pass{'es' if len(kept) != 1 else ''} {_ranges(kept)}" if kept else "no pass in full"
    each = "is summarised in one line" if len(summarised) == 1 else "are summarised in one line each"
    return (f"{where} holds {held} (--keep {policy}); {plural(len(summarised), 'pass')} {each} "
            f"(--keep all keeps every event)")

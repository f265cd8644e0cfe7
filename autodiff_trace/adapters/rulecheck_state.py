"""What the derivative-rule check keeps while a script runs: how nodes were made, each
op's rules and how their checks stand, and the firings being collected."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .nodeids import ToolRef, lifetime_observed

__all__ = ["AGREEING_CHECKS", "MAX_TRIES", "Made", "Rule", "Op", "Firing", "is_number"]

AGREEING_CHECKS = 3  # checks of an (op, rule line) that agree before it is left alone
MAX_TRIES = 8  # firings of one op queued for checking, conclusive or not


class Made:
    """A node made by an op that is still being checked: what is needed to re-run it."""

    __slots__ = ("ref", "op", "frames", "init_frame")

    def __init__(self, node, op, frames: list, init_frame, on_death=None) -> None:
        self.ref = _held_weakly(node, on_death)
        self.op, self.frames, self.init_frame = op, frames, init_frame  # FrameCopy, never frames


def _held_weakly(node, on_death=None):
    """A weak reference to ``node`` (``on_death`` is told when it dies) when the script can
    see the node die (a weak registry, a ``__del__``): the check never keeps such a node
    alive, and drops what it kept of it with it. Any other node is held until checked."""
    if lifetime_observed(node):
        try:
            return ToolRef(node, on_death)
        except TypeError:  # a __del__ on a node that takes no weak reference
            pass
    return lambda node=node: node


class Rule:
    """How the checks of one rule (an op's backward function, or its stored derivatives) stand."""

    __slots__ = ("tries", "pending", "agreed", "reported", "failure", "judged", "unsure")

    def __init__(self) -> None:
        self.tries = self.pending = 0
        self.agreed: Dict[str, int] = {}  # rule line -> agreeing checks
        self.reported: set = set()  # rule lines already named in a finding
        self.failure: Optional[str] = None  # why it could not be re-run, until it is
        self.judged: set = set()  # operand slots some check could judge
        self.unsure: set = set()  # operand slots a check could not judge (a gradient lost in rounding)

    @property
    def done(self) -> bool:
        if self.tries >= MAX_TRIES:
            return True
        settled = sum(self.agreed.values()) >= AGREEING_CHECKS and all(
            n >= AGREEING_CHECKS or site in self.reported for site, n in self.agreed.items()) \
            and self.unsure <= self.judged
        return settled or (bool(self.reported) and not self.pending and self.tries >= AGREEING_CHECKS)


class Op:
    """The nodes made by one op (keyed by the code that made them), and their rules: one
    helper such as ``_result(value, fn)`` may make the nodes of every op."""

    __slots__ = ("recent", "made", "rules", "resting", "unsure")

    def __init__(self) -> None:
        self.recent: List[int] = []  # id() of the latest nodes remembered
        self.made = 0
        self.rules: Dict[object, Rule] = {}  # rule code (or None) -> its checks
        self.resting = False  # enough checks queued, or every rule done: no node is remembered
        self.unsure = False  # some operand of a rule could not be judged yet: nodes sampled densely

    def rule(self, code) -> Rule:
        """The checks of the rule ``code``, made on its first firing."""
        rule = self.rules.get(code)
        if rule is None:
            rule = self.rules[code] = Rule()
            self.restate()
        return rule

    def restate(self) -> None:
        """Recompute ``resting`` and ``unsure`` from the rules; called whenever a rule's checks
        change, so that sampling a new node reads two attributes, not sums over the rules."""
        rules = self.rules.values()
        self.resting = sum(r.pending for r in rules) >= AGREEING_CHECKS \
            or (bool(self.rules) and all(r.done for r in rules))
        self.unsure = any(r.unsure - r.judged for r in rules)


class Firing:
    """One firing of a remembered node: what its rule wrote, and the values it ran on."""

    __slots__ = ("made", "ref", "node_id", "upstream", "pass_no", "parents", "values", "node_value",
                 "rule", "writes", "own")

    def __init__(self, made: Made, node, node_id: int, upstream: float, pass_no: int,
                 parents: list, values: list, node_value, rule, on_death=None) -> None:
        self.made, self.node_id, self.upstream, self.pass_no = made, node_id, upstream, pass_no
        self.ref = _held_weakly(node, on_death)  # a firing ends with its node: dropped, never checked
        self.parents, self.values, self.node_value = parents, values, node_value  # as the rule ran
        self.rule = rule  # the code of the node's backward function, if it has one
        self.writes: List[Tuple[object, float, float, bool, Optional[str]]] = []
        self.own: Optional[Tuple[float, float]] = None  # (grad before, added): writes to its own grad

    @property
    def node(self):
        return self.ref()


def is_number(value) -> bool:
    """A real number an op can be re-run around (numpy scalars included, bools not)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or hasattr(value, "dtype")

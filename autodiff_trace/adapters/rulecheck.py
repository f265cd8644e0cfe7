"""Check a user's derivative rules against their own forward ops, while the script runs.

When a node's backward function fires, the contributions it adds to each parent, divided
by the node's own grad, are the local derivatives its rule applied. The op that made the
node (``__mul__``, ``tanh``, ``mul(a, b)``, ``Mul(a, b)``) is re-run on the parents'
values nudged either way, in a forked copy of the process (:mod:`.rulecheck_rerun`), and
the central difference is compared with the rule. Each op is checked a few times; a rule
that disagrees is one ``wrong_derivative`` finding at the line computing the local
derivative (:mod:`.rulecheck_lines`). Which firing a write belongs to: :mod:`.rulecheck_credit`.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from types import FrameType
from typing import Dict, List, Optional, Tuple

from ..core import active
from ..core.events import Finding
from ..core.text import number
from .detect import Vocabulary
from .engine_code import EngineCode
from .framecopy import FrameCopy
from .nodeids import lifetime_observed
from .roles import static_attr
from .rulecheck_lines import (asked_methods, op_closure, own_rule, rule_code, rule_site, site_at,
                              stored_rule, storing_line)
from .rulecheck_credit import WriteCredit
from .rulecheck_ops import candidates, display_names, made_from_arguments, op_name
from .rulecheck_rerun import Candidate, Job, judge, rerun_in_child, why_no_fork
from .rulecheck_state import AGREEING_CHECKS, MAX_TRIES, Firing, Made, Op, Rule, is_number

__all__ = ["RuleCheck", "AGREEING_CHECKS", "MAX_TRIES"]

BATCH = 16  # firings checked in one forked child
_RECENT = 4  # nodes per op remembered until they fire (the latest made fire first)
_DEPTH = 4  # frames above a node's __init__ searched for the op that made it
_FIRST, _EVERY, _DENSE = 16, 64, 4  # an op's first 16 nodes are remembered, then one in 64 (4 while unsure)
_EPS = 2.0 ** -52


class RuleCheck(WriteCredit):
    """Owned by one :class:`EngineReporter`: remembers how nodes were made, collects what
    their rules apply, and checks a bounded number of firings per op."""

    def __init__(self, reporter) -> None:
        self.reporter = reporter
        self.ops: Dict[object, Op] = {}
        self.made: Dict[int, Made] = {}
        self.forks = 0
        self.fork_seconds = 0.0  # time spent forking and waiting for re-runs
        self.checks: Dict[Tuple[str, str], int] = {}  # (op, rule line) -> checks run
        self.off = False  # set when the check itself failed
        self._open: Dict[int, Firing] = {}  # node id -> its firing, until the pass is over
        self._queue: List[Tuple[Firing, Job, list, list, Rule]] = []
        self._is_engine = EngineCode(reporter)  # (code, node class) -> is it the engine's
        self._key_by_ids: Dict[tuple, tuple] = {}  # (ids of creator's, caller's code, class) -> (codes, key, op)
        self._with_parents: set = set()  # classes whose nodes know their parents when made
        self._reported: set = set()  # (op, rule line) named in a finding
        self._site_ops: Dict[str, set] = {}  # grad-write line -> ops whose rules wrote there
        self._rule_ops: Dict[object, set] = {}  # rule code -> the op functions whose nodes ran it
        self._subclass_rules: Dict[type, object] = {}
        self._no_fork_said = False
        self._walking = False  # one call runs every node's rule: writes are credited by the loop's node
        self._late: set = set()  # id() of the node whose writes were under way when that was found
        self._made_in_child: list = []  # in a forked copy: the nodes a re-run made
        self._unsure: set = set()  # ids of nodes whose writes this pass cannot be told apart
        self._nested = False  # a node fired within another node's backward function

    # -- reports from the reporter ------------------------------------------------------
    def node_made(self, node, vocab: Vocabulary, creator: FrameType) -> None:
        """A node was made (while tracing); ``creator`` called its ``__init__``."""
        if self.off:
            return
        try:
            if (self._open or self._queue) and not self.reporter.firing:  # a forward step: the pass is over
                self._close_firings()
                if self._queue:
                    self.flush()
            code, caller = creator.f_code, creator.f_back and creator.f_back.f_code
            known = self._key_by_ids.get((id(code), id(caller), type(node)))  # its entry holds both codes
            if known is not None:  # the fast way out for most nodes (ids: a code object hashes slowly)
                key, op = known[2], known[3]
                op.made += 1
                if op.made > _FIRST and (op.made % _DENSE or op.made % _EVERY and not op.unsure) \
                        or op.resting:  # (_EVERY is a multiple of _DENSE; op's state kept by restate)
                    return
            self._node_made(node, vocab, creator, key if known is not None else None)
        except Exception as exc:
            self._give_up(exc)

    def fired(self, node, node_id: int, upstream: float, pass_no: int, rule=None) -> None:
        """``node``'s rule (``rule``: its code, if known) starts; ``upstream``, its grad, is passed on."""
        if self.off or (id(node) not in self.made and node_id not in self._open):
            return
        try:
            self._fired(node, node_id, upstream, pass_no, rule)
        except Exception as exc:
            self._give_up(exc)

    def returned(self) -> None:
        """The outermost backward function returned: when the rules of other nodes ran
        within it (a whole pass), their firings are complete and checked now, while the
        nodes are alive (a script may drop its graph before the next forward step)."""
        if self._nested and not self.off:
            self._nested = False
            try:
                self._close_firings()
                self.flush()
            except Exception as exc:
                self._give_up(exc)

    def finish(self) -> None:
        """Tracing stops: check what is queued, and say once which ops could not be checked."""
        if not self.off:
            try:
                self._finish()
            except Exception as exc:
                self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        """A failure of the check itself: it stops, the trace and the script go on."""
        self.off = True
        self._queue, self._open, self.made = [], {}, {}
        print(f"autodiff_trace: the derivative-rule check stopped ({type(exc).__name__}: {exc}); "
              f"the rest of the trace is unaffected", file=sys.stderr)

    def _node_made(self, node, vocab: Vocabulary, creator: FrameType, key) -> None:
        """Remember how the node was made (a new op's first node, or one the sampling keeps:
        past an op's first 16 nodes, one in 64 is enough to have some that fire early)."""
        cls = type(node)
        parents = self.reporter.parents(node, vocab)
        if key is None:
            code, caller = creator.f_code, creator.f_back and creator.f_back.f_code
            key = cls
            if made_from_arguments(creator, parents, self.reporter.is_node):
                key = code  # a gate's forward(u0, u1): an op of its own
            if self._is_engine(code, cls):  # a helper that makes every op's nodes: key by its caller too
                key = (code, caller) if caller is not None and caller.co_name != "<module>" \
                    and self._is_engine(caller, cls) else code
            if key not in self.ops:
                self.ops[key] = Op()
            self._key_by_ids[id(code), id(caller), cls] = (code, caller, key, self.ops[key])
            op = self.ops[key]
            op.made += 1
            if op.resting:
                return
        op = self.ops[key]
        if parents:
            self._with_parents.add(cls)
        elif cls in self._with_parents:
            return  # a leaf: it never fires
        frames, frame = [], creator
        while frame is not None and len(frames) < _DEPTH and frame.f_code.co_name != "<module>" \
                and (self._is_engine(frame.f_code, cls)
                     or frame is creator and made_from_arguments(frame, parents, self.reporter.is_node)):
            frames.append((FrameCopy(frame), frame.f_lineno))
            frame = frame.f_back
        init_frame = sys._getframe(1)  # the hooked __init__: the frame ``creator`` called
        while init_frame is not None and init_frame.f_back is not creator:
            init_frame = init_frame.f_back
        if init_frame is not None and init_frame.f_locals.get("self") is not node:
            init_frame = None
        elif init_frame is not None:
            init_frame = FrameCopy(init_frame, ("args", "kwargs"))
        recent = op.recent
        recent.append(id(node))
        if len(recent) > _RECENT:
            self.made.pop(recent.pop(0), None)
        self.made[id(node)] = Made(node, key, frames, init_frame, functools.partial(self._made_died, id(node)))

    def _fired(self, node, node_id: int, upstream: float, pass_no: int, rule=None) -> None:
        if node_id in self._open:  # fired again: its first firing is complete
            self._close(self._open.pop(node_id))
        if (self._open or self._queue) and not self.reporter.firing and lifetime_observed(node):
            self._close_firings()  # the script sees nodes die: a sweep's earlier firings are
            self.flush()  # complete, checked now while their nodes live (it may drop the graph)
        if node_id in self._unsure:
            return
        self._nested = self._nested or bool(self.reporter.firing)  # within another's backward function
        made = self.made.get(id(node))
        if made is None or made.ref() is not node:
            return
        del self.made[id(node)]
        self.ops[made.op].recent.remove(id(node))
        reporter = self.reporter
        vocab = reporter.vocabulary(node)
        parents = reporter.parents(node, vocab)
        values = [static_attr(p, reporter.vocabulary(p).value) for p in parents]
        if parents and all(is_number(v) for v in values):
            rule = rule or rule_code(node, vocab.backward, reporter.is_node) or self._subclass_rule(type(node))
            self._open[node_id] = Firing(made, node, node_id, upstream, pass_no, parents, values,
                                          static_attr(node, vocab.value), rule,
                                          functools.partial(self._firing_died, node_id))

    def _made_died(self, key: int, ref) -> None:
        """A remembered node died unfired: its op's arguments are let go with it."""
        made = self.made.get(key)
        if made is not None and made.ref is ref:
            del self.made[key]
            recent = self.ops[made.op].recent
            if key in recent:
                recent.remove(key)

    def _firing_died(self, node_id: int, ref) -> None:
        """A node died while its firing was open (the script dropped its graph before the next
        forward step): the firing is dropped unchecked, its parents let go."""
        firing = self._open.get(node_id)
        if firing is not None and firing.ref is ref:
            del self._open[node_id]

    def _subclass_rule(self, cls: type):
        """The rule method of an op class (a subclass of a traced node class), if it has one."""
        if cls not in self._subclass_rules:
            is_op_class = any(issubclass(cls, t) and cls is not t for t in self.reporter.node_types)
            self._subclass_rules[cls] = own_rule(cls) if is_op_class else None
        return self._subclass_rules[cls]

    def _finish(self) -> None:
        self._close_firings()
        self.flush()
        failed = sorted({(op_name(key), rule.failure) for key, op in self.ops.items()
                         for rule in op.rules.values() if rule.failure and not rule.agreed})
        tracer = active.active_tracer()
        if failed and tracer is not None:
            which = "; ".join(f"{name}: {why}" for name, why in failed)
            tracer.report_finding(Finding(
                0, "rule_not_checked", "info",
                f"the derivative rules of {len(failed)} op(s) could not be checked against their "
                f"forward ops ({which})", (), (), None,
                "the other findings still hold; an op that can be called again with the same "
                "arguments, giving the same value, can be checked"))

    # -- a firing, finished -------------------------------------------------------------
    def _close_firings(self) -> None:
        opened, self._open = self._open, {}
        self._late.clear()
        self._unsure.clear()
        for firing in opened.values():
            self._close(firing)

    def _close(self, firing: Firing) -> None:
        owner = self.ops[firing.made.op]
        op = owner.rule(firing.rule)
        for *_, site in firing.writes:
            self._site_ops.setdefault(site, set()).add(firing.made.op)
        upstream = firing.upstream
        if firing.own is not None:  # a sum over paths: judged on a node's first visit only
            upstream = firing.own[1] if firing.own[0] == 0.0 else math.nan
        if not firing.writes or op.done or op.pending >= AGREEING_CHECKS \
                or not math.isfinite(upstream) or upstream == 0.0 \
                or any(replaced for _, _, _, replaced, _ in firing.writes):
            return  # nothing to divide by, or an overwrite (a finding of its own)
        parents = firing.parents
        found = candidates(type(firing.node), firing.made.init_frame, firing.made.frames, parents)
        if not found:
            op.failure = op.failure or "its op function could not be found from the frames that made it"
            return
        applied, where = [], []
        for parent in parents:
            writes = [w for w in firing.writes if w[0] is parent]
            applied.append(sum(after - before for _, before, after, _, _ in writes) / upstream
                           if writes else None)
            slack = sum(4 * _EPS * (abs(b) + abs(a)) for _, b, a, _, _ in writes) / abs(upstream)
            where.append((slack, [s for *_, s in writes if s], len(writes)))
        if all(a is None for a in applied):
            return
        vocab = self.reporter.vocabulary(firing.node)
        asked = asked_methods(firing.rule, type(firing.node)) if firing.rule is not None else ()
        job = Job(found, parents, firing.values, firing.node_value, vocab.value, self._read_value,
                  firing.node, asked)
        op.tries += 1
        op.pending += 1
        owner.restate()
        self._queue.append((firing, job, applied, where, op))
        if len(self._queue) >= BATCH:
            self.flush()

    def _in_child(self) -> None:
        """In the forked copy: remember the nodes each re-run makes (the copy's own reporter)."""
        self._made_in_child = []
        self.reporter.node_made = lambda node, vocab, creator: self._made_in_child.append(node)

    def _read_value(self, result) -> Optional[float]:
        """The value of the node an op re-run made: what it returned, or, when it returns a
        handle (``Var(tape, index)``), the last node it made."""
        made, self._made_in_child = self._made_in_child, []
        if not isinstance(result, self.reporter.node_types) and made and not is_number(result):
            result = made[-1]
        vocab = self.reporter.vocabulary(result) if isinstance(result, self.reporter.node_types) else None
        value = static_attr(result, vocab.value) if vocab is not None else result
        return float(value) if is_number(value) else None

    # -- checking -------------------------------------------------------------------------
    def flush(self) -> None:
        """Re-run the queued firings' ops in one child and report the rules that disagree."""
        queue, self._queue = self._queue, []
        if not queue:
            return
        for *_, op in queue:
            op.pending -= 1
        self._restate()
        reason = why_no_fork()
        if reason is not None:
            for *_, op in queue:
                op.tries = MAX_TRIES
                if not self._no_fork_said:
                    op.failure = reason
            self._no_fork_said = True
            self._restate()
            return
        self.forks += 1
        started = time.perf_counter()
        results = rerun_in_child([job for _, job, *_ in queue], self._in_child)
        self.fork_seconds += time.perf_counter() - started
        failed = results is None
        results = results or [(None, [], [])] * len(queue)
        for (firing, job, *_), (index, *_) in zip(queue, results):
            if index is not None:
                self._rule_ops.setdefault(firing.rule, set()).add(job.candidates[index].fn)
        for (firing, job, applied, where, op), (index, slopes, answers) in zip(queue, results):
            if index is None:
                op.failure = op.failure or ("re-running it did not give the node's value again"
                                            if not failed else "re-running it failed or took too long")
                continue
            op.failure = None
            self._judge(firing, job, job.candidates[index], applied, where, slopes, op, answers)
        self._restate()

    def _restate(self) -> None:
        """The checks of queued firings changed: what sampling reads of each op is recomputed."""
        for op in self.ops.values():
            op.restate()

    def _judge(self, firing: Firing, job: Job, candidate: Candidate, applied: list,
               where: list, slopes: list, op: Rule, answers: list) -> None:
        names = display_names(candidate)
        for i, (rate, (slack, sites, count), slope) in enumerate(zip(applied, where, slopes)):
            if rate is None or slope is None or count > len(candidate.slots[i]):
                continue  # more writes than operand slots: the rule ran more than once
            verdict = judge(rate, slack, slope)
            (op.unsure if verdict is None else op.judged).add(i)
            if verdict is None:
                continue
            site = self._rule_site(firing, candidate, sites, candidate.slots[i][0], firing.parents[i])
            answered = [site_at(job.asked[k].__code__, line) for k, line, numbers in answers
                        if any(abs(n - rate) <= 1e-9 * max(1.0, abs(rate)) for n in numbers)]
            if answered:
                site = answered[0]  # the method that gave the rule this parent's local derivative
            if site is None or site in op.reported:
                continue
            key = (candidate.name, site)
            self.checks[key] = self.checks.get(key, 0) + 1
            if verdict:
                op.agreed[site] = op.agreed.get(site, 0) + 1
                continue
            op.reported.add(site)
            op.agreed.setdefault(site, 0)
            if key not in self._reported:
                self._reported.add(key)
                self._report(firing, candidate, names, job.values, i, rate, slope, site)

    def _rule_site(self, firing: Firing, candidate: Candidate, sites: list, arg_name: str,
                   parent) -> Optional[str]:
        """The line to name for a parent's rule (see :mod:`.rulecheck_lines`): the write in
        the op's own rule, or its return; when one rule or loop serves every op, the
        local-derivative function the node stores for the parent, or the op's line that
        stored the local derivative."""
        rule = firing.rule
        if rule is not None and len(self._rule_ops.get(rule, ())) <= 1:
            return rule_site(rule, sites)
        if any(len(self._site_ops.get(s, ())) > 1 for s in sites):  # one line writes for every op
            stored = stored_rule(firing.node, parent) or op_closure(firing.node, candidate.code)
            if stored is not None:
                return rule_site(stored, sites)
            if candidate.code is not None:
                return site_at(candidate.code, storing_line(candidate.code, candidate.made_at, arg_name))
        return sites[0] if sites else None

    def _report(self, firing: Firing, candidate: Candidate, names: list, values: list,
                i: int, rate: float, slope, site: str) -> None:
        tracer = active.active_tracer()
        if tracer is None:
            return
        at = ", ".join(f"{n} = {number(v)}" for n, v in zip(names, values))
        name = candidate.name
        message = (f"{name}'s backward ({site}) applies d/d{names[i]} = {number(rate)} at {at}; "
                   f"{name}'s own forward changes at {number(slope.central)} there")
        hint = (f"the local derivative written at {site} should be the rate at which {name}'s "
                f"forward changes with {names[i]} (here {number(slope.central)}); check which "
                f"value it multiplies by")
        nodes = (firing.node_id, *[self.reporter.ids.of(p) for p in firing.parents])
        model = getattr(tracer, "model", None)
        shown = tuple(model.name(n) for n in nodes) if model is not None else ()
        tracer.report_finding(Finding(firing.pass_no, "wrong_derivative", "error", message,
                                      nodes, shown, site, hint))

"""One ``backward()`` or ``autograd.grad()`` call, traced: the nodes in the order they fired,
the gradient each received, and every leaf's gradient before, added and after.

During the pass the hooks only keep references (a prehook per node appends the node
and the gradients it received); norms are taken once the pass is over, so tracing
adds no work to autograd's own loop. Events go out in the order things happened.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch

from ...core.sites import user_site
from .graph import EVERYTHING, KEY, Leaf, Registry, walk
from .summary import PassNorms, norm, op_name, quiet
from . import rules

__all__ = ["PassTracer"]

_ACCUMULATE = "AccumulateGrad"


class _Filled(tuple):
    """What the hook of a leaf with no ``.grad`` yet keeps instead of the gradient: holding
    it would make AccumulateGrad copy it into ``.grad`` rather than take it, and the
    ``.grad`` it sets holds the same numbers."""


_FILLED = _Filled()


def _untouched_after(leaf: Leaf) -> bool:
    """No hook of the script's runs once the leaf's gradient is accumulated (one could step
    an optimizer and drop ``.grad`` there): its ``.grad`` after the pass is what it received."""
    tensor = leaf.ref()
    return tensor is not None and not getattr(tensor, "_post_accumulate_grad_hooks", None)


class _Started:
    """A pass under way: what its start found."""

    __slots__ = ("pass_no", "site", "nodes", "senders", "order", "ledger")

    def __init__(self, pass_no, site, nodes, senders, order, ledger) -> None:
        self.pass_no, self.site, self.nodes, self.senders = pass_no, site, nodes, senders
        self.order, self.ledger = order, ledger


class PassTracer:
    """Traces passes for one run; remembers what the findings across passes need."""

    def __init__(self, registry: Registry, recorder) -> None:
        self.registry = registry
        self.recorder = recorder  # the ForwardRecorder: where graphs were cut
        self.roots: Dict[int, Tuple[int, Optional[str], str]] = {}  # root id -> (pass, site, name)
        self.passes: set = set()  # numbers of the passes traced here
        self.cut_sites: set = set()
        self.duplicates: Optional[rules.GenericDuplicates] = None
        # decided later: pass -> (site, [node, name, before, left by, Leaf, used]) of the gradients
        # a pass added to after an update; and the cuts whose leaves may learn in another pass
        self.pending_stale: Dict[int, tuple] = {}
        self.pending_cuts: List[tuple] = []  # (pass, .detach() site, root name, [Leaf])

    # -- zeroing --------------------------------------------------------------------------
    def check_zeroed(self, tracer, leaves: List[Leaf]) -> None:
        """Report the leaves among ``leaves`` whose gradient was reset since the trace saw it."""
        zeroed = []
        for leaf in leaves:
            if leaf.grad_after != 0:
                grad, now = leaf.grad_now()
                if now == 0:
                    zeroed.append((leaf, grad))
        if not zeroed:
            return
        if self.pending_stale:
            self.settle_stale(tracer, {leaf.node for leaf, _ in zeroed})
        tracer.grads_zeroed(tuple(leaf.node for leaf, _ in zeroed),
                            tuple(leaf.grad_after for leaf, _ in zeroed))
        for leaf, grad in zeroed:
            leaf.remember(grad, 0.0, leaf.pass_no, leaf.site)

    def leaves_of(self, tensors) -> List[Leaf]:
        leaves = self.registry.leaves
        found = (leaves.get(id(t)) for t in tensors)
        return [leaf for leaf in found if leaf is not None]

    # -- a pass ---------------------------------------------------------------------------
    def run(self, tracer, call, roots, seed: Optional[torch.Tensor], accumulates: bool, warn):
        """Call ``call()`` (the original backward) with the pass from ``roots`` traced; a
        failure of the tracing itself is passed to ``warn`` and never reaches the script."""
        fns = [r.grad_fn for r in roots if isinstance(r, torch.Tensor) and r.grad_fn is not None]
        if not fns:
            return call()
        try:
            started = self._start(tracer, fns, seed, accumulates)
        except Exception as exc:
            warn(exc)
            tracer.backward_finished()  # if the pass had begun
            return call()
        fired: List[tuple] = []
        keep = fired.append
        handles = []
        try:
            ledger = started.ledger
            for fn in started.nodes:
                node = fn.metadata[KEY]
                entry = ledger.get(node)
                if entry is not None and entry[1] is None and _untouched_after(entry[0]):  # see _FILLED
                    handles.append(fn.register_prehook(lambda grads, node=node: keep((node, _FILLED))))
                elif entry is not None or node not in self.registry.leaf_of:
                    handles.append(fn.register_prehook(lambda grads, node=node: keep((node, grads))))
        except Exception as exc:
            warn(exc)
        try:
            return call()
        finally:
            for handle in handles:
                handle.remove()
            try:
                with quiet():
                    self._report_fired(tracer, started, fired)
            except Exception as exc:
                warn(exc)
            tracer.backward_finished()
            for node in started.order:
                self.registry.made.pop(node, None)

    def _start(self, tracer, fns, seed, accumulates: bool) -> "_Started":
        """Report the nodes not seen yet, the zeroing since the last pass, the pass's start
        and the findings known at its start."""
        site = user_site()
        registry = self.registry
        if self.pending_stale:
            self.settle_stale(tracer, set())
        with quiet():
            for fn in fns:
                registry.report(tracer, fn, EVERYTHING)  # made while the recorder was off
            nodes, senders = walk(fns)
            ledger: Dict[int, Tuple[Leaf, Optional[torch.Tensor], float]] = {}
            order, grads_before = [], []
            for fn in nodes:
                node = fn.metadata[KEY]
                leaf = registry.leaf_of.get(node)
                if leaf is not None:
                    if not accumulates:
                        continue
                    grad, before = leaf.grad_now()
                    ledger[node] = (leaf, grad, before)
                    grads_before.append(before)
                else:
                    grads_before.append(0.0)
                order.append(node)
            self.check_zeroed(tracer, [leaf for leaf, _, _ in ledger.values()])
            root = fns[0].metadata[KEY]
            seed_norm = 1.0 if seed is None else norm(seed)
        if self.duplicates is not None:
            self.duplicates.starting = True
        try:
            pass_no = tracer.backward_started(root, seed_norm, tuple(order), tuple(grads_before))
        finally:
            if self.duplicates is not None:
                self.duplicates.starting = False
        self.passes.add(pass_no)
        started = _Started(pass_no, site, nodes, senders, order, ledger)
        self._report_at_start(tracer, pass_no, site, root, ledger)
        return started

    def _report_at_start(self, tracer, pass_no: int, site, root: int, ledger) -> None:
        registry = self.registry
        earlier = self.roots.get(root)
        if earlier is not None:
            # adds twice only into gradients still holding the first pass's (not zeroed since;
            # autograd.grad writes none)
            leaves = [leaf.name for leaf, _, before in ledger.values() if before != 0]
            if leaves:
                self._finding(tracer, rules.backward_twice(pass_no, site, root, earlier[2], earlier[0],
                                                           earlier[1], leaves))
        else:
            if len(self.roots) > 256:
                self.roots.clear()
            self.roots[root] = (pass_no, site, registry.name(root))
        stale = []
        for leaf, _, before in ledger.values():
            tensor = leaf.ref()
            if before != 0 and leaf.pass_no and tensor is not None and tensor._version != leaf.version:
                stale.append([leaf.node, leaf.name, before, leaf.pass_no, leaf, None])
        if stale:  # a finding once an update uses what this pass adds (see settle_stale)
            self.pending_stale[pass_no] = (site, sorted(stale, key=lambda entry: entry[0]))

    # -- findings decided later -------------------------------------------------------------
    def settle_stale(self, tracer, zeroed: Optional[set] = None) -> None:
        """Decide the passes that added to gradients left from before an update. A gradient
        an update then used (its parameter's version moved since the trace last saw it) makes
        the pass a ``stale_gradient``; one in ``zeroed`` first, or never used by the end of
        the run (``zeroed`` None), was harmless: a GAN's generator pass adds to the critic's
        gradients, which the critic's ``zero_grad()`` clears before its step."""
        for pass_no in sorted(self.pending_stale):
            site, entries = self.pending_stale[pass_no]
            waiting = False
            for entry in entries:
                if entry[5] is None:
                    leaf = entry[4]
                    tensor = leaf.ref()
                    if tensor is not None and tensor._version != leaf.version:
                        entry[5] = True
                    elif zeroed is None or leaf.node in zeroed:
                        entry[5] = False
                    else:
                        waiting = True
            if not waiting:
                del self.pending_stale[pass_no]
                used = [tuple(entry[:4]) for entry in entries if entry[5]]
                if used:  # every pass it happens in: the findings group it as one cause at its line
                    self._finding(tracer, rules.stale_gradient(pass_no, site, used))

    def finish(self, tracer) -> None:
        """At the end of the run: the pending stale gradients, and the cuts whose leaves never
        received a gradient from any pass (a GAN's generator, cut off in the critic's pass,
        learns in its own)."""
        self.settle_stale(tracer)
        for pass_no, site, root_name, leaves in self.pending_cuts:
            lost = sorted((leaf.node, leaf.name) for leaf in leaves if not leaf.pass_no)
            if lost:
                self._finding(tracer, rules.cut_off(pass_no, site, root_name, lost))
        self.pending_cuts.clear()

    def _report_fired(self, tracer, started: "_Started", fired: List[tuple]) -> None:
        pass_no, site, ledger, senders = started.pass_no, started.site, started.ledger, started.senders
        received: List[float] = []
        fired_at: Dict[int, int] = {}
        for i, (node, grads) in enumerate(fired):
            if grads is _FILLED:  # the leaf's new .grad is the gradient it received
                tensor = ledger[node][0].ref()
                fired[i] = (node, (None if tensor is None else tensor.grad,))
        norms = PassNorms()
        norms.measure(t for _, grads in fired for t in grads)
        for i, (node, grads) in enumerate(fired):
            entry = ledger.get(node)
            if entry is None:
                got = norms.total(grads)
                tracer.backward_fn_fired(node, got, got)
            else:
                leaf, grad_before, before = entry
                got = norms.of(grads[0])
                tensor = leaf.ref()
                grad = None if tensor is None else tensor.grad
                after = got if grad_before is None else norm(grad)
                by = max((s for s in senders.get(node, ()) if s in fired_at), key=fired_at.get, default=None)
                tracer.grad_accumulated(node, by, None, got, before, after, False, site)
                leaf.remember(grad, after, pass_no, site)
            fired_at[node] = i
            received.append(got)
        self._report_non_finite(tracer, pass_no, fired, received, senders, started.nodes)
        self._report_cuts(tracer, pass_no, started.nodes)

    def _report_non_finite(self, tracer, pass_no, fired, received, senders, nodes) -> None:
        first = next((i for i, got in enumerate(received) if not math.isfinite(got)), None)
        if first is None:
            return
        receiver = fired[first][0]
        before = {node for node, _ in fired[:first]}
        origins = [s for s in senders.get(receiver, ()) if s in before]
        if not origins:  # the root itself: the seed was not finite
            return
        origin = origins[-1]
        got = received[[node for node, _ in fired].index(origin)]
        registry = self.registry
        spread = sum(1 for got_i in received[first:] if not math.isfinite(got_i))
        self._finding(tracer, rules.non_finite(
            pass_no, origin, registry.name(origin),
            op_name(next(fn for fn in nodes if fn.metadata.get(KEY) == origin)), registry.site(origin), got,
            receiver, registry.name(receiver), received[first], spread))

    def _report_cuts(self, tracer, pass_no: int, nodes) -> None:
        cuts = self.recorder.take_cuts()
        if not cuts:
            return
        reached = {fn.metadata[KEY] for fn in nodes}
        for cut in cuts:
            if cut.site in self.cut_sites or not any(user in reached for user in cut.users):
                continue
            cut_nodes, _ = walk([cut.source])
            lost = []
            for fn in cut_nodes:
                leaf = self.registry.leaf_of.get(fn.metadata.get(KEY))
                if leaf is not None and leaf.node not in reached and leaf.ref() is not None \
                        and leaf.ref().requires_grad:
                    lost.append(leaf)
            if lost:  # reported at the end of the run if no pass ever reaches them
                self.cut_sites.add(cut.site)
                root = nodes[0].metadata[KEY]
                self.pending_cuts.append((pass_no, cut.site, self.registry.name(root), lost))

    def _finding(self, tracer, finding) -> None:
        if self.duplicates is not None:
            self.duplicates.ours.add((finding.finding, finding.message))
        tracer.report_finding(finding)

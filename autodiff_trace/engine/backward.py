"""The backward pass: every node reached from the root, newest first, passes on the
gradient it received in this pass, times its local derivatives (the table in :mod:`.rules`).

Most passes start from zeroed grads, and then what a node received in this pass is its
``grad``: such a pass runs in one loop with the common ops' derivatives written out and
no call per edge (:func:`_propagate`). A pass that a tracer watches, or that meets grads
left from an earlier one, reads every derivative from the table and, in the second case,
keeps what each node received apart (:func:`_propagate_from_table`). The two give the
same numbers: a test runs every op both ways.
"""

from __future__ import annotations

from operator import add, attrgetter
from typing import List, Optional

from ..core.captured import FIRED, WRITE
from .ids import BLOCK
from .rules import ADD, CONST, DIV, MUL, NEG, RELU, SUB, TANH

__all__ = ["backward_pass", "topological_order"]

_grad_of, _block_of, _offset_of = attrgetter("grad"), attrgetter("_block"), attrgetter("_offset")
STRETCH = 1024  # nodes of a traced pass between two turns of the tracer's lock


def topological_order(root) -> list:
    """Every node ``root`` depends on, each before the nodes it was computed from.

    A node is always made after its parents, so its id is larger than theirs: the
    reachable nodes by id, newest first, are a topological order. The walk uses an
    explicit stack, so depth is limited by memory, not by recursion. It files each node
    at its id's place in a list per block (see :mod:`.ids`), so the order needs no sort.
    """
    last_block = root._block
    in_block = [None] * BLOCK
    in_block[root._offset] = root
    blocks = {last_block: in_block}
    stack = [root]
    push, pop = stack.append, stack.pop
    while stack:
        node = pop()
        a = node._a
        if a is None:
            continue  # a leaf or a constant
        if a._block is not last_block:
            last_block = a._block
            in_block = blocks.get(last_block) or blocks.setdefault(last_block, [None] * BLOCK)
        if in_block[a._offset] is None:
            in_block[a._offset] = a
            push(a)
        if node._op.arity == 2:
            b = node._b
            if b._block is not last_block:
                last_block = b._block
                in_block = blocks.get(last_block) or blocks.setdefault(last_block, [None] * BLOCK)
            if in_block[b._offset] is None:
                in_block[b._offset] = b
                push(b)
    order = []
    for block in sorted(blocks, reverse=True):  # each block's list let go once read
        order.extend(filter(None, reversed(blocks.pop(block))))
    return order


def backward_pass(root, seed: float, tracer) -> None:
    """Add d root / d node to ``node.grad`` on every node ``root`` depends on."""
    order = topological_order(root)
    fresh = not any(map(_grad_of, order))
    if tracer is not None:
        _propagate_traced(root, seed, order, tracer, None if fresh else dict.fromkeys(order, 0.0))
    elif fresh:
        root.grad = seed or 0.0  # d root / d root (0.0 + seed)
        _propagate(order)
    else:
        _propagate_from_table(root, seed, order, None, dict.fromkeys(order, 0.0))


def _propagate(order: List) -> None:
    """Pass each node's gradient on to its parents, newest node first; every ``grad`` was
    0 when the pass began, so a node's ``grad`` is what it received in this pass.

    ``grad + c if grad else (c or 0.0)`` is ``grad + c``, but keeps the very float ``c``
    when it is the first contribution: a graph's gradients then mostly allocate nothing.
    """
    for node in order:
        op = node._op
        if op is None or op is CONST:
            continue  # leaves and constants have nothing to pass on
        a, b, g = node._a, node._b, node.grad
        # the contribution to each parent: its row's local derivative times g
        if op is MUL:
            da, db = b.data * g, a.data * g
        elif op is ADD:
            da = db = g  # 1.0 * g
        elif op is RELU:
            da, b = (g if a.data > 0 else 0.0 * g), None
        elif op is SUB:
            da, db = g, -g  # 1.0 * g, -1.0 * g
        elif op is NEG:
            da, b = -g, None
        elif op is TANH:
            out = node.data
            da, b = (1.0 - out * out) * g, None
        elif op is DIV:
            bd = b.data
            da, db = (1.0 / bd) * g, (-a.data / (bd * bd)) * g
        elif op.arity == 1:
            da, b = op.local(a.data, b, node.data) * g, None
        else:
            local_a, local_b = op.local(a.data, b.data, node.data)
            da, db = local_a * g, local_b * g
        grad = a.grad
        a.grad = grad + da if grad else (da or 0.0)
        if b is not None:
            grad = b.grad
            b.grad = grad + db if grad else (db or 0.0)


def _propagate_from_table(root, seed: float, order: List, tracer, received: Optional[dict]) -> None:
    """The pass with every derivative from the table, each step reported to ``tracer``
    when there is one. ``received`` (unless every grad was 0 when the pass began) keeps
    what each node receives in this pass apart from its grad."""

    def give(target, source, local, grad_in: float) -> None:
        """``target.grad += local * grad_in``: one step of the chain rule."""
        contribution = grad_in if local is None else local * grad_in
        before = target.grad
        target.grad = before + contribution
        if received is not None:
            received[target] += contribution
        if tracer is not None:  # ids as the ``id`` property computes them, without its call
            tracer.grad_accumulated(target._block + target._offset,
                                    None if source is None else source._block + source._offset,
                                    local, contribution, before, target.grad)

    if root is not None:
        give(root, None, None, seed)  # the seed: d root / d root
    for node in order:
        op = node._op
        if op is None or op.arity == 0:
            continue
        grad_in, a, b = node.grad if received is None else received[node], node._a, node._b
        if tracer is not None:
            tracer.backward_fn_fired(node._block + node._offset, node.grad, grad_in)
        if op.arity == 1:
            give(a, node, op.local(a.data, b, node.data), grad_in)
        else:
            local_a, local_b = op.local(a.data, b.data, node.data)
            give(a, node, local_a, grad_in)
            give(b, node, local_b, grad_in)


def _propagate_traced(root, seed: float, order: List, tracer, received: Optional[dict]) -> None:
    """The pass from the table, every step an event. A stretch of :data:`STRETCH` nodes
    holds the tracer's lock and, when the tracer lets it (:meth:`~autodiff_trace.core.tracer.Tracer.pass_capture`),
    appends its events as captured tuples itself: no call per event but the append."""
    # each node.id and grad, in tuples no local holds: they live no longer than the event
    pass_no = tracer.backward_started(root.id, seed, tuple(map(add, map(_block_of, order), map(_offset_of, order))),
                                      tuple(map(_grad_of, order)))
    _propagate_from_table(root, seed, (), tracer, received)  # the seed: d root / d root
    order.reverse()  # oldest first: each stretch comes off the end, so the list shrinks as the pass goes
    while order:
        stretch = order[-STRETCH:]
        del order[-STRETCH:]
        stretch.reverse()  # newest first again
        with tracer.lock:
            capture = tracer.pass_capture()
            if capture is None:
                _propagate_from_table(None, seed, stretch, tracer, received)
                continue
            fired = accumulated = 0
            try:
                for node in stretch:
                    op = node._op
                    if op is None or op.arity == 0:
                        continue
                    a, b, grad = node._a, node._b, node.grad
                    grad_in = grad if received is None else received[node]
                    source = node._block + node._offset
                    capture((FIRED, pass_no, source, grad, grad_in))
                    fired += 1
                    if op.arity == 1:
                        local = op.local(a.data, b, node.data)
                        contribution = local * grad_in
                        before = a.grad
                        a.grad = after = before + contribution
                        if received is not None:
                            received[a] += contribution
                        capture((WRITE, pass_no, a._block + a._offset, source, local, contribution,
                                 before, after, False, None))
                        accumulated += 1
                        continue
                    local_a, local_b = op.local(a.data, b.data, node.data)
                    contribution = local_a * grad_in
                    before = a.grad
                    a.grad = after = before + contribution
                    if received is not None:
                        received[a] += contribution
                    capture((WRITE, pass_no, a._block + a._offset, source, local_a, contribution,
                             before, after, False, None))
                    contribution = local_b * grad_in
                    before = b.grad  # after a's write: a * a adds to one grad twice
                    b.grad = after = before + contribution
                    if received is not None:
                        received[b] += contribution
                    capture((WRITE, pass_no, b._block + b._offset, source, local_b, contribution,
                             before, after, False, None))
                    accumulated += 2
            finally:
                tracer.pass_captured(fired, accumulated)
    tracer.backward_finished()

"""A from-scratch engine (node = val, der, parents, backprop) with one wrong rule.

The add rule assigns its first parent's derivative (``a.der = out.der``) where it
meant to accumulate (``+=``). For y = (x + 2)**2 + x at x = 2, dy/dx is
2 * (x + 2) + 1 = 9, but x is reached by two paths: the ``+ x`` path adds 1 first,
then the ``x + 2`` rule overwrites it with 8. The script prints 8.
"""


class Node:
    """A scalar: its value ``val``, its derivative ``der``, and how it was made."""

    def __init__(self, val, parents=()):
        self.val = val
        self.der = 0.0
        self.parents = parents
        self.backprop = lambda: None  # leaves pass nothing on


def add(a, b):
    out = Node(a.val + b.val, (a, b))

    def backprop():
        a.der = out.der  # the bug: should be a.der += out.der
        b.der += out.der
    out.backprop = backprop
    return out


def mul(a, b):
    out = Node(a.val * b.val, (a, b))

    def backprop():
        a.der += out.der * b.val
        b.der += out.der * a.val
    out.backprop = backprop
    return out


def propagate(output):
    """Seed d output / d output = 1, then run every rule from the output down."""
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.parents)
    output.der = 1.0
    for node in reversed(order):
        node.backprop()


x = Node(2.0)
u = add(x, Node(2.0))
s = mul(u, u)
y = add(s, x)
propagate(y)
print(f"y = {y.val}, dy/dx = {x.der} (expected 9.0)")

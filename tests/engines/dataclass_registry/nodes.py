"""Graph nodes as dataclasses, and the reverse sweep over them.

A Node does not carry its own backward code: each op registers its local derivative rule in
RULES with the @rule decorator, and reverse() looks the rule up by the node's op name.
"""
from dataclasses import dataclass, field

RULES = {}  # op name -> function(node) pushing node.grad into node.args


def rule(op):
    def register(fn):
        RULES[op] = fn
        return fn
    return register


@dataclass(eq=False)  # eq=False keeps identity hashing, so nodes can go in sets
class Node:
    value: float
    grad: float = 0.0
    op: str = "leaf"
    args: tuple = ()
    extra: dict = field(default_factory=dict)  # constants an op's rule needs (an exponent, ...)


def reverse(root):
    """Backpropagate from root: every node's grad ends up d(root)/d(node)."""
    def topological(node, seen, order):
        if node in seen:
            return order
        seen.add(node)
        for arg in node.args:
            topological(arg, seen, order)
        order.append(node)
        return order

    order = topological(root, set(), [])
    root.grad = 1.0
    for node in reversed(order):
        if node.op != "leaf":
            RULES[node.op](node)

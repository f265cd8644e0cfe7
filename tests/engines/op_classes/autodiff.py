"""Reverse-mode differentiation over the nodes in graph.py."""


def topological_order(root):
    """Every node root depends on, each one after all of its parents."""
    order = []
    seen = set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.parents():
            visit(parent)
        order.append(node)

    visit(root)
    return order


def backprop(root):
    root.grad = 1.0
    # walk from the output back to the leaves, so each node's grad is complete
    # before it is passed on
    for node in reversed(topological_order(root)):
        grads = node.backward(node.grad)
        for parent, g in zip(node.parents(), grads):
            parent.grad += g

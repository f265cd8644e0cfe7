import math

# ---------------------------------------------------------------------------------
# backward rules: each receives the node and pushes node.adjoint into node.inputs
# ---------------------------------------------------------------------------------


def add_rule(node):
    a, b = node.inputs
    a.adjoint += node.adjoint
    b.adjoint += node.adjoint


def sub_rule(node):
    a, b = node.inputs
    a.adjoint += node.adjoint
    b.adjoint -= node.adjoint


def mul_rule(node):
    a, b = node.inputs
    a.adjoint += b.value * node.adjoint
    b.adjoint += a.value * node.adjoint


def square_rule(node):
    (a,) = node.inputs
    a.adjoint += 2.0 * a.value * node.adjoint


def tanh_rule(node):
    (a,) = node.inputs
    a.adjoint += (1.0 - node.value ** 2) * node.adjoint


class Node:
    __slots__ = ('value', 'adjoint', 'inputs', 'rule')

    def __init__(self, value, inputs=(), rule=None):
        self.value = value
        self.adjoint = 0.0
        self.inputs = inputs
        self.rule = rule

    def __repr__(self):
        return 'Node(%.4f, adjoint=%.4f)' % (self.value, self.adjoint)

    def __add__(self, other):
        other = as_node(other)
        return Node(self.value + other.value, (self, other), add_rule)

    def __radd__(self, other):
        return as_node(other) + self

    def __sub__(self, other):
        other = as_node(other)
        return Node(self.value - other.value, (self, other), sub_rule)

    def __rsub__(self, other):
        return as_node(other) - self

    def __mul__(self, other):
        other = as_node(other)
        return Node(self.value * other.value, (self, other), mul_rule)

    def __rmul__(self, other):
        return as_node(other) * self

    def square(self):
        return Node(self.value ** 2, (self,), square_rule)

    def tanh(self):
        return Node(math.tanh(self.value), (self,), tanh_rule)


def as_node(x):
    return x if isinstance(x, Node) else Node(float(x))


def topological_order(root):
    """Inputs before the nodes made from them, found with an explicit stack."""
    order = []
    done = set()
    stack = [(root, iter(root.inputs))]
    on_stack = {id(root)}
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            on_stack.discard(id(node))
            done.add(id(node))
            order.append(node)
        elif id(child) not in done and id(child) not in on_stack:
            stack.append((child, iter(child.inputs)))
            on_stack.add(id(child))
    return order


def backward(root):
    order = topological_order(root)
    root.adjoint = 1.0
    for node in reversed(order):
        if node.rule is not None:
            node.rule(node)

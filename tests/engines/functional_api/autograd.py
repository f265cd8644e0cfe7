# Cell 1: the node
import math


class Node:
    def __init__(self, value, parents=(), backward_fn=None):
        self.value = value
        self.grad = 0
        self.parents = parents
        self.backward_fn = backward_fn

    def __repr__(self):
        return f"Node(value={self.value:.4f}, grad={self.grad:.4f})"


def const(x):
    return x if isinstance(x, Node) else Node(x)


# Cell 2: operations. Each one builds the output node and a backward_fn
# that pushes out.grad to the parents (accumulating: a parent can be used twice).
def add(a, b):
    a, b = const(a), const(b)
    out = Node(a.value + b.value, parents=(a, b))

    def backward_fn():
        a.grad += out.grad
        b.grad += out.grad
    out.backward_fn = backward_fn
    return out


def sub(a, b):
    a, b = const(a), const(b)
    out = Node(a.value - b.value, parents=(a, b))

    def backward_fn():
        a.grad += out.grad
        b.grad -= out.grad
    out.backward_fn = backward_fn
    return out


def mul(a, b):
    a, b = const(a), const(b)
    out = Node(a.value * b.value, parents=(a, b))

    def backward_fn():
        a.grad += out.grad * b.value
        b.grad += out.grad * a.value
    out.backward_fn = backward_fn
    return out


def power(a, n):
    a = const(a)
    out = Node(a.value ** n, parents=(a,))

    def backward_fn():
        a.grad += out.grad * n * a.value ** (n - 1)
    out.backward_fn = backward_fn
    return out


def tanh(a):
    a = const(a)
    t = math.tanh(a.value)
    out = Node(t, parents=(a,))

    def backward_fn():
        a.grad += out.grad * (1 - t ** 2)
    out.backward_fn = backward_fn
    return out


# Cell 3: topological order (iterative DFS, no recursion limit) and backward
last_order = []  # the order the last backward() used, to print while debugging


def topo_sort(root):
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            for p in node.parents:
                stack.append((p, False))
    return order


def backward(root):
    global last_order
    last_order = topo_sort(root)
    root.grad = 1
    for node in reversed(last_order):
        if node.backward_fn:
            node.backward_fn()

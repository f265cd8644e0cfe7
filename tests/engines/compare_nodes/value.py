"""A Value whose comparisons are graph ops too (x > 0 is a Value holding 1.0 or 0.0),
so relu can be written as x * (x > 0). Every Value gets a serial id for drawing graphs."""


class Value:
    made = 0  # how many Values exist so far; the next id

    def __init__(self, data, _prev=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._prev = _prev
        self._op = _op
        self._backward = lambda: None
        self.id = Value.made
        Value.made += 1

    def __repr__(self):
        return f"v{self.id}({self._op or 'leaf'}: {self.data:.4f})"

    __hash__ = object.__hash__  # __eq__ below builds a node, so say so explicitly

    @staticmethod
    def of(x):
        return x if isinstance(x, Value) else Value(x)

    def __add__(self, other):
        other = Value.of(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = Value.of(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    # comparisons: a step function, whose derivative is zero wherever it is defined
    def __gt__(self, other):
        return Value(1.0 if self.data > Value.of(other).data else 0.0, (self,), ">")

    def __eq__(self, other):
        return Value(1.0 if self.data == Value.of(other).data else 0.0, (self,), "==")

    def relu(self):
        return self * (self > 0)

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __sub__(self, other):
        return self + (-1.0) * other

    def backward(self):
        order, seen = [], set()
        stack = [(self, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                if node in seen:
                    continue
                seen.add(node)
            if i < len(node._prev):
                stack.append((node, i + 1))
                stack.append((node._prev[i], 0))
            else:
                order.append(node)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

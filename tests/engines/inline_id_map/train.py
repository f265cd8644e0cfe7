# %% [markdown]
# # Backprop from scratch
# Every number remembers where it came from. Instead of storing its inputs on itself,
# each Num registers them in a table keyed by its id, together with the local derivative
# d(num)/d(input) worked out right away in the forward pass.

# %%
import math

EDGES = {}  # id(num) -> [(input, d num / d input), ...]


class Num:
    def __init__(self, x, edges=()):
        self.x = x
        self.dx = 0.0
        EDGES[id(self)] = list(edges)

    def __repr__(self):
        return f"Num(x={self.x:.4f}, dx={self.dx:.4f})"

    def __add__(self, other):
        other = other if isinstance(other, Num) else Num(other)
        return Num(self.x + other.x, [(self, 1.0), (other, 1.0)])

    def __mul__(self, other):
        other = other if isinstance(other, Num) else Num(other)
        return Num(self.x * other.x, [(self, other.x), (other, self.x)])

    def __pow__(self, n):
        return Num(self.x ** n, [(self, n * self.x ** (n - 1))])

    def tanh(self):
        t = math.tanh(self.x)
        return Num(t, [(self, 1 - t ** 2)])

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __sub__(self, other):
        return self + (-1.0) * other

    def backprop(self):
        def build_order():
            order, done = [], set()

            def visit(num):
                if id(num) in done:
                    return
                done.add(id(num))
                for parent, _ in EDGES[id(num)]:
                    visit(parent)
                order.append(num)

            visit(self)
            return order

        self.dx = 1.0
        for num in reversed(build_order()):
            for parent, local in EDGES[id(num)]:
                parent.dx += local * num.dx


# %% [markdown]
# A quick check on a tiny expression: d/da of a*b + a is b + 1.

# %%
a, c = Num(2.0), Num(-3.0)
e = a * c + a
e.backprop()
print("check", a.dx, c.dx)

# %% [markdown]
# Now train two weights and a bias.

# %%
w1, w2, b = Num(0.1), Num(0.6), Num(0.0)
params = [w1, w2, b]
data = [(0.5, 0.2), (-1.0, -0.6), (1.5, 0.7)]
lr = 0.1

for step in range(3):
    for p in params:
        p.dx = 0.0
    loss = Num(0.0)
    for inp, target in data:
        h = (w1 * inp + b).tanh()
        out = w2 * h + h * h
        loss = loss + (out - target) ** 2
    loss.backprop()
    for p in params:
        p.x -= lr * p.dx
    print("step", step, "loss", round(loss.x, 6))

# %%
print("grads", [round(p.dx, 6) for p in params])

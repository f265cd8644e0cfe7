# Gates from the "hacker's guide to neural nets": forward() remembers its inputs and
# returns a new output Unit; backward() takes the gradient on that output unit and
# chains it into the input units (+=, because a unit can feed several gates).
import math

from units import Unit


class MultiplyGate:
    def forward(self, u0, u1):
        self.u0 = u0
        self.u1 = u1
        self.utop = Unit(u0.value * u1.value)
        return self.utop

    def backward(self):
        self.u0.grad += self.u1.value * self.utop.grad
        self.u1.grad += self.u0.value * self.utop.grad


class AddGate:
    def forward(self, u0, u1):
        self.u0 = u0
        self.u1 = u1
        self.utop = Unit(u0.value + u1.value)
        return self.utop

    def backward(self):
        self.u0.grad += 1 * self.utop.grad
        self.u1.grad += 1 * self.utop.grad


class SubtractGate:
    def forward(self, u0, u1):
        self.u0 = u0
        self.u1 = u1
        self.utop = Unit(u0.value - u1.value)
        return self.utop

    def backward(self):
        self.u0.grad += self.utop.grad
        self.u1.grad -= self.utop.grad


class TanhGate:
    def forward(self, u0):
        self.u0 = u0
        self.utop = Unit(math.tanh(u0.value))
        return self.utop

    def backward(self):
        t = self.utop.value
        self.u0.grad += (1 - t * t) * self.utop.grad


class SigmoidGate:
    def sig(self, x):
        return 1 / (1 + math.exp(-x))

    def forward(self, u0):
        self.u0 = u0
        self.utop = Unit(self.sig(u0.value))
        return self.utop

    def backward(self):
        s = self.sig(self.u0.value)
        self.u0.grad += (s * (1 - s)) * self.utop.grad

# every wire in the circuit is a Unit: the number flowing forward and the gradient flowing back


class Unit:
    def __init__(self, value, grad=0.0):
        self.value = value
        self.grad = grad

    def __repr__(self):
        return f"Unit(value={self.value:.4f}, grad={self.grad:.4f})"

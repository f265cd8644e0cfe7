import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="cs231n_gates",
    description="CS231n-style circuit: Unit(value, grad) wires and MultiplyGate/AddGate/SubtractGate/TanhGate objects whose forward() stores the input units and returns a new output unit and whose backward() adds into the inputs' .grad from the output unit's .grad, called by hand in reverse order after the driver sets loss.grad = 1.0.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "gates.py",
            "        self.u0.grad += self.u1.value * self.utop.grad",
            "        self.u0.grad = self.u1.value * self.utop.grad",
            note="MultiplyGate overwrites u0.grad"),
        Bug("wrong_derivative", "gates.py",
            "        self.u0.grad += self.u1.value * self.utop.grad",
            "        self.u0.grad += self.u0.value * self.utop.grad",
            note="MultiplyGate uses u0's value for u0"),
        Bug("wrong_derivative", "gates.py",
            "        self.u0.grad += (1 - t * t) * self.utop.grad",
            "        self.u0.grad += (1 - self.u0.value ** 2) * self.utop.grad",
            note="TanhGate uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        u.grad = 0.0",
            "        pass",
            at=("train.py", "    backprop(gates)"),
            note="parameter grad reset removed"),
        Bug("stale_gradient", "train.py",
            "    backprop(gates)",
            "    backprop(gates); backprop(gates)",
            note="backprop called twice"),
        Bug("fired_too_early", "train.py",
            "    for gate in reversed(gate_list):",
            "    for gate in gate_list:",
            note="gates backpropagated in forward order"),
    ),
)

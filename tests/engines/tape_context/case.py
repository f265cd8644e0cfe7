import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="tape_context",
    description="A scalar tf.GradientTape: inside `with Tape() as tape:` every op on a Variable is recorded as (output, inputs, local partials) on the context-local current tape, and tape.gradient(loss, [w, b]) sweeps the records backwards into a local adjoint dict and returns a list of gradients, nothing being stored on the Variables.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "tape.py",
            "                adjoint[inp] += d * g",
            "                adjoint[inp] = d * g",
            note="gradient() overwrites adjoint[inp]"),
        Bug("wrong_derivative", "tape.py",
            "(self, other), (other.value, self.value))",
            "(self, other), (self.value, self.value))",
            note="mul records self.value as d/dself"),
        Bug("wrong_derivative", "tape.py",
            "    return _record(t, (x,), (1.0 - t * t,))",
            "    return _record(t, (x,), (1.0 - x.value ** 2,))",
            note="tanh uses the input instead of the output"),
        Bug("fired_too_early", "tape.py",
            "        for out, inputs, partials in reversed(self.ops):",
            "        for out, inputs, partials in self.ops:",
            note="gradient() sweeps the records in recording order"),
    ),
)

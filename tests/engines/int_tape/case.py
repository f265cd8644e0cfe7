import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="int_tape",
    description="An integer-addressed tape: a flat list of entries, each with a value, an adjoint and (parent_index, weight) pairs, Var handles that hold only the tape and an index, and one backward(tape, out_index) that seeds the output's adjoint and sweeps the indices in reverse adding weight * adjoint into the parents.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "            tape[p].adjoint += weight * entry.adjoint",
            "            tape[p].adjoint = weight * entry.adjoint",
            note="sweep overwrites the parent's adjoint"),
        Bug("wrong_derivative", "engine.py",
            "[(self.index, other.value), (other.index, self.value)]",
            "[(self.index, self.value), (other.index, self.value)]",
            note="mul weight uses self's value for self"),
        Bug("wrong_derivative", "engine.py",
            "return self._push(t, [(self.index, 1.0 - t * t)])",
            "return self._push(t, [(self.index, 1.0 - self.value ** 2)])",
            note="tanh weight uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        tape[i].adjoint = 0.0",
            "        pass",
            at=("train.py", "backward(tape, loss.index)"),
            note="parameter adjoint reset removed"),
        Bug("stale_gradient", "train.py",
            "    backward(tape, loss.index)",
            "    backward(tape, loss.index); backward(tape, loss.index)",
            note="backward called twice"),
        Bug("fired_outside_graph", "train.py",
            "    del tape[n_params:]       # throw away last step's entries",
            "    pass                      # throw away last step's entries",
            note="last step's entries left on the tape"),
    ),
)

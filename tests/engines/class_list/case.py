import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="class_list",
    description="Every Variable is appended to the class-level list Variable.all_vars and keeps in `adjoints` its consumers with their local derivatives; diff(output) zeroes every derivative, seeds the output and recomputes each `derivative` from its consumers in reverse creation order.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "            v.derivative += local * consumer.derivative",
            "            v.derivative = local * consumer.derivative",
            note="diff overwrites v.derivative for each consumer"),
        Bug("wrong_derivative", "engine.py",
            "        self.adjoints.append((result, other.value))",
            "        self.adjoints.append((result, self.value))",
            note="mul records self's value for self"),
        Bug("wrong_derivative", "engine.py",
            "        self.adjoints.append((result, 1 - result.value ** 2))",
            "        self.adjoints.append((result, 1 - self.value ** 2))",
            note="tanh uses the input instead of the output"),
        Bug("fired_too_early", "engine.py",
            "    for v in reversed(Variable.all_vars):",
            "    for v in Variable.all_vars:",
            note="diff walks the list in creation order"),
    ),
)

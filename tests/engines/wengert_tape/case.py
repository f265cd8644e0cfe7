import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="wengert_tape",
    description="A Wengert list: a module-level Tape records (op, input_ids, output_id) lines as ops run, and grad(tape, output) sweeps the lines backwards, looking each op's derivative up in a rule table and accumulating adjoints in a dict keyed by variable id.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "            adj[i] += d * adj[output_id]",
            "            adj[i] = d * adj[output_id]",
            note="sweep overwrites adj[i]"),
        Bug("wrong_derivative", "engine.py",
            '"mul": lambda a, b, out: (b, a),',
            '"mul": lambda a, b, out: (a, a),',
            note="mul rule uses a where b belongs"),
        Bug("wrong_derivative", "engine.py",
            '"tanh": lambda x, t: (1 - t ** 2,),',
            '"tanh": lambda x, t: (1 - x ** 2,),',
            note="tanh rule uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        TAPE.adjoint[p.id] = 0.0  # forget last step's gradients",
            "        pass",
            at=("train.py", "g = grad(TAPE, loss)"),
            note="param adjoint reset removed"),
        Bug("stale_gradient", "train.py",
            "    g = grad(TAPE, loss)",
            "    g = grad(TAPE, loss); g = grad(TAPE, loss)",
            note="grad called twice"),
        Bug("fired_outside_graph", "train.py",
            "    TAPE.clear()                 # new graph, new tape",
            "    pass                         # new graph, new tape",
            note="tape not cleared between steps"),
    ),
)

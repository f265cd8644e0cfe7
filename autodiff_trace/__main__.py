"""``python -m autodiff_trace SCRIPT [ARGS...]``: the same as ``trace-backward``."""

from .frontends.cli import main_trace_backward

if __name__ == "__main__":
    main_trace_backward()

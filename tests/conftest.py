"""The engine corpus under tests/engines/ holds scripts to trace, not tests to collect; and
the one in-process IPython shell the magic's tests share."""

import sys

import pytest

collect_ignore = ["engines"]


@pytest.fixture
def shell(monkeypatch):
    """An in-process IPython shell with the extension loaded and a fresh namespace."""
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ipython = interactiveshell.InteractiveShell.instance(config=config)
    ipython.reset()
    monkeypatch.setitem(sys.modules, "__main__", ipython.user_module)  # as IPython runs
    ipython.run_cell("%load_ext autodiff_trace", store_history=True)
    yield ipython
    ipython.run_cell("%unload_ext autodiff_trace", store_history=True)

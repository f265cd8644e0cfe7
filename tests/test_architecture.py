"""The package's floor plan, as code: layers, independent sinks, no cycles, small modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autodiff_trace"


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """Run import-linter's contracts (pyproject.toml) on the package found in ``project``."""
    code = ("import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())")
    return subprocess.run([sys.executable, "-c", code, "--config", str(project / "pyproject.toml")],
                          cwd=project, capture_output=True, text=True, env={"PYTHONPATH": str(project)})


@pytest.fixture(scope="module")
def copy_of_the_project(tmp_path_factory) -> Path:
    """The package and its contracts, copied so a test can break them."""
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(PACKAGE, project / "autodiff_trace", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    return project


class TestLayers:
    """Dependencies point one way: frontends, sinks | replay, views, analysis, engine | adapters, core."""

    def test_every_contract_is_kept(self):
        """import-linter finds no upward import, no sink importing a sink, and no cycle."""
        done = lint_imports(ROOT)
        assert done.returncode == 0, done.stdout + done.stderr

    @pytest.mark.parametrize("module, line, contract", [
        ("core/model.py", "from ..views.graph import diagram", "layers"),
        ("engine/rules.py", "from ..analysis import diagnoser", "layers"),
        ("sinks/jsonl.py", "from . import findings", "No sink imports another sink"),
        ("core/events.py", "from . import tracer", "No import cycles"),
    ])
    def test_a_broken_rule_is_caught(self, copy_of_the_project, module, line, contract):
        """Adding one forbidden import to a copy of the package makes the check fail, naming it."""
        target = copy_of_the_project / "autodiff_trace" / module
        original = target.read_text()
        target.write_text(original + f"\n{line}  # noqa\n")
        try:
            done = lint_imports(copy_of_the_project)
        finally:
            target.write_text(original)
        assert done.returncode != 0
        assert contract.lower() in done.stdout.lower()


class TestLightImport:
    """A notebook that only wants the engine does not pay for the views."""

    def test_importing_value_loads_no_rich_graphviz_or_typer(self):
        """`from autodiff_trace import Value` imports the engine and the event core only."""
        code = ("import sys; from autodiff_trace import Value; "
                "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'graphviz', 'typer', 'torch'}))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "[]"

    def test_every_public_name_resolves(self):
        """Each name in autodiff_trace.__all__ loads from its home."""
        import autodiff_trace

        missing = [name for name in autodiff_trace.__all__ if getattr(autodiff_trace, name, None) is None]
        assert missing == []


class TestModuleSize:
    """No module is longer than a reader can hold: 400 lines at most."""

    @pytest.mark.parametrize("module", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")))
    def test_module_is_at_most_400_lines(self, module):
        """The module fits the budget."""
        lines = (PACKAGE / module).read_text().count("\n")
        assert lines <= 400, f"{module} has {lines} lines"

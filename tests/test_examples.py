"""Every example runs, the fixtures in tests/golden/ are what a fresh run produces, and
outputs/ (the showcase the README links to) holds every file the README names."""

import json
import re
import sys
from pathlib import Path

import pytest
from trace_lines import line_objects

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(ROOT / "examples"))
import make_outputs  # noqa: E402

# micrograd walks a set of parents, whose order changes from run to run, and so does
# its firing order: its outputs are compared by what does not depend on that order.
UNORDERED = {"micrograd_mlp"}
# Keys that hold times or the machine's details.
VOLATILE = {"t", "duration", "created", "python", "argv"}


def stable(path: Path):
    """A file's content without what changes from run to run."""
    if path.suffix in (".jsonl", ".json"):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        return [scrub(json.loads(line)) for line in lines]
    return path.read_bytes()


def scrub(data):
    if isinstance(data, dict):
        return {k: scrub(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [scrub(v) for v in data]
    return data


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """The examples' outputs regenerated into a temporary folder by the documented command."""
    out = tmp_path_factory.mktemp("outputs")
    make_outputs.regenerate(out_root=out)
    return out


class TestOutputs:
    def test_every_committed_file_is_regenerated(self, fresh):
        """The fresh run writes the same set of files as tests/golden/ holds."""
        committed = sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file())
        regenerated = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
        assert regenerated == committed

    @pytest.mark.parametrize("folder", sorted(p.name for p in GOLDEN.iterdir()
                                              if p.is_dir() and p.name not in UNORDERED))
    def test_committed_outputs_match_a_fresh_run(self, fresh, folder):
        """Diagrams, reports, findings and traces (times aside) are identical to a fresh run."""
        for committed in sorted((GOLDEN / folder).iterdir()):
            assert stable(fresh / folder / committed.name) == stable(committed), committed.name

    def test_micrograd_outputs_tell_the_same_story(self, fresh):
        """micrograd's run has the same nodes, grads and findings, whatever order it fired in."""
        def summary(folder: Path):
            events = line_objects(folder / "trace.jsonl")[1:]
            created = sorted((e["node"], e["op"], e["value"]) for e in events if e["kind"] == "node_created")
            final = {e["target"]: e["grad_after"] for e in events if e["kind"] == "grad_accumulated"}
            return created, final, (folder / "findings.txt").read_text()

        assert summary(fresh / "micrograd_mlp") == summary(GOLDEN / "micrograd_mlp")

    def test_the_showcase_holds_every_file_the_readme_links(self):
        """Each outputs/ path in README.md exists, and outputs/ has the same examples as the fixtures."""
        readme = (ROOT / "README.md").read_text()
        linked = set(re.findall(r"\(outputs/([^)\s]+)\)", readme))
        assert linked, "the README links no file under outputs/"
        assert [name for name in sorted(linked) if not (ROOT / "outputs" / name).exists()] == []
        assert sorted(p.name for p in (ROOT / "outputs").iterdir()) == sorted(p.name for p in GOLDEN.iterdir())


class TestExamplesTellTheirStory:
    def test_notebook_bug_shows_both_bugs(self):
        """The demo's findings: x.grad stale at 2, pass 1's z firing in pass 2, 18 for a fresh graph;
        the terminal report shows x's grad going 2 → 22 and z #3 firing outside the graph."""
        text = (GOLDEN / "notebook_bug" / "findings.txt").read_text()
        assert "x.grad was 2 when backward pass 2 began" in text
        assert "z #3 (examples/notebook_bug.py:57) fired in backward pass 2" in text
        assert "x.grad would be 18\n" in text
        report = (GOLDEN / "notebook_bug" / "report.txt").read_text()
        assert "x #1  leaf  value 5  grad 2 → 11 → 20 → 21 → 22  ⚠ stale" in report
        assert "┗━━ z #3  add  value 10  grad 1  ⚠ stale  fired 4th" in report

    def test_overwrite_bug_is_found(self):
        """The = for += in the other seed's vocabulary is named, with the fixed line."""
        text = (GOLDEN / "overwrite_bug" / "findings.txt").read_text()
        assert "replacing 1 instead of adding to it, which would give 9" in text

    def test_wrong_order_finds_the_node_that_fired_too_early(self):
        """Visiting nodes in the order a search found them lets u pass on an incomplete grad."""
        text = (GOLDEN / "wrong_order" / "findings.txt").read_text()
        assert "u fired too early in backward pass 1: z, which uses it, fired after it" in text

    def test_nan_origin_names_the_sqrt(self):
        """The first non-finite grad is traced to sqrt at 0."""
        text = (GOLDEN / "nan_origin" / "findings.txt").read_text()
        assert "the derivative of r = sqrt(u = 0) with respect to u is inf" in text

    def test_forgot_zero_grad_flags_stale_gradients(self):
        """Training without zero_grad leaves stale gradients from pass 2 on."""
        text = (GOLDEN / "forgot_zero_grad" / "findings.txt").read_text()
        assert re.search(r"WARNING stale_gradient \(pass(es)? 2\b", text)

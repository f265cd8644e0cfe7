"""Every example runs, and the committed outputs/ are what a fresh run produces."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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
    """outputs/ regenerated into a temporary folder by the documented command."""
    out = tmp_path_factory.mktemp("outputs")
    make_outputs.regenerate(out_root=out)
    return out


class TestOutputs:
    def test_every_committed_file_is_regenerated(self, fresh):
        """The fresh run writes the same set of files as outputs/ holds."""
        committed = sorted(p.relative_to(ROOT / "outputs") for p in (ROOT / "outputs").rglob("*")
                           if p.is_file())
        regenerated = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
        assert regenerated == committed

    @pytest.mark.parametrize("folder", sorted(p.name for p in (ROOT / "outputs").iterdir()
                                              if p.is_dir() and p.name not in UNORDERED))
    def test_committed_outputs_match_a_fresh_run(self, fresh, folder):
        """Diagrams, reports, findings and traces (times aside) are identical to a fresh run."""
        for committed in sorted((ROOT / "outputs" / folder).iterdir()):
            assert stable(fresh / folder / committed.name) == stable(committed), committed.name

    def test_micrograd_outputs_tell_the_same_story(self, fresh):
        """micrograd's run has the same nodes, grads and findings, whatever order it fired in."""
        def summary(folder: Path):
            events = [json.loads(line) for line in (folder / "trace.jsonl").read_text().splitlines()[1:]]
            created = sorted((e["node"], e["op"], e["value"]) for e in events if e["kind"] == "node_created")
            final = {e["target"]: e["grad_after"] for e in events if e["kind"] == "grad_accumulated"}
            return created, final, (folder / "findings.txt").read_text()

        assert summary(fresh / "micrograd_mlp") == summary(ROOT / "outputs" / "micrograd_mlp")


class TestExamplesTellTheirStory:
    def test_notebook_bug_shows_both_bugs(self):
        """The demo's findings: x.grad stale at 2, pass 1's z firing in pass 2, 18 for a fresh graph."""
        text = (ROOT / "outputs" / "notebook_bug" / "findings.txt").read_text()
        assert "x.grad was 2.0 when backward pass 2 began (left from pass 1" in text
        assert "z #3 (examples/notebook_bug.py:57) fired in backward pass 2" in text
        assert "x.grad would be 18.0" in text

    def test_overwrite_bug_is_found(self):
        """The = for += in the other seed's vocabulary is named, with the fixed line."""
        text = (ROOT / "outputs" / "overwrite_bug" / "findings.txt").read_text()
        assert "replacing 1.0 instead of adding to it, which would give 9.0" in text

    def test_wrong_order_finds_the_node_that_fired_too_early(self):
        """Visiting nodes in the order a search found them lets u pass on an incomplete grad."""
        text = (ROOT / "outputs" / "wrong_order" / "findings.txt").read_text()
        assert "u fired too early in backward pass 1: z, which uses it, fired after it" in text

    def test_nan_origin_names_the_sqrt(self):
        """The first non-finite grad is traced to sqrt at 0."""
        text = (ROOT / "outputs" / "nan_origin" / "findings.txt").read_text()
        assert "the derivative of r = sqrt(u = 0.0) with respect to u is inf" in text

    def test_forgot_zero_grad_flags_stale_gradients(self):
        """Training without zero_grad leaves stale gradients from pass 2 on."""
        text = (ROOT / "outputs" / "forgot_zero_grad" / "findings.txt").read_text()
        assert "WARNING stale_gradient (pass 2)" in text

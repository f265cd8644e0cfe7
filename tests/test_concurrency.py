"""Threads and forks: every pass is one unbroken block of the trace, nothing lost or doubled."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from autodiff_trace import Diagnoser, Recorder, Value, trace
from trace_lines import line_objects

PASS_KINDS = ("backward_fn_fired", "grad_accumulated")


def train_in_thread(passes: int, grads: list, start: threading.Barrier) -> None:
    """One thread's small training loop on our engine; its final grad goes to ``grads``."""
    start.wait()
    w = Value(0.5)
    for step in range(passes):
        w.grad = 0.0
        loss = (w * 3.0 + 1.0) ** 2
        loss.backward()
        w.data -= 0.01 * w.grad
    grads.append(w.grad)


@pytest.fixture(scope="module")
def threaded_trace():
    """8 threads, 50 passes each, traced into one recorder with the diagnostics on."""
    record, grads, start = Recorder(), [], threading.Barrier(8)
    with trace([record], analyzers=[Diagnoser()]):
        threads = [threading.Thread(target=train_in_thread, args=(50, grads, start)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return record.events, grads


class TestThreads:
    """Threads take turns: a pass under way in one thread is never interleaved with another's."""

    def test_sequence_numbers_increase_without_gaps(self, threaded_trace):
        """seq is 0, 1, 2, ... in the order the events are delivered."""
        events, _ = threaded_trace
        assert [e.seq for e in events] == list(range(len(events)))

    def test_every_pass_is_found_and_finished(self, threaded_trace):
        """400 passes start and 400 finish, with distinct numbers."""
        events, _ = threaded_trace
        started = [e.pass_no for e in events if e.kind == "backward_started"]
        finished = [e.pass_no for e in events if e.kind == "backward_finished"]
        assert len(started) == len(set(started)) == 400
        assert sorted(started) == sorted(finished)

    def test_a_pass_is_one_block(self, threaded_trace):
        """Between a pass's start and its end, every firing and write belongs to that pass."""
        events, _ = threaded_trace
        current = None
        for e in events:
            if e.kind == "backward_started":
                assert current is None
                current = e.pass_no
            elif e.kind == "backward_finished":
                assert e.pass_no == current
                current = None
            elif e.kind in PASS_KINDS:
                assert e.pass_no == current

    def test_no_node_is_used_before_it_is_created(self, threaded_trace):
        """Every node a pass names was announced by a node_created event before the pass."""
        events, _ = threaded_trace
        created = set()
        for e in events:
            if e.kind == "node_created":
                created.add(e.node)
            elif e.kind == "backward_started":
                assert set(e.order) <= created
            elif e.kind == "grad_accumulated":
                assert e.target in created

    def test_correct_threaded_training_has_no_findings(self, threaded_trace):
        """Each thread zeroes its own grad: no warning or error."""
        events, _ = threaded_trace
        assert [e.message for e in events if e.kind == "diagnostic" and e.severity != "info"] == []

    def test_the_users_grads_are_unchanged(self, threaded_trace):
        """Every thread ends with the grad the same loop gives untraced."""
        _, grads = threaded_trace
        expected = []
        train_in_thread(50, expected, threading.Barrier(1))
        assert grads == expected * 8


FORKING_SCRIPT = '''
import multiprocessing as mp
import os
import sys

from autodiff_trace import Value


def step(seed):
    x = Value(float(seed))
    y = x * x + x
    y.backward()
    return x.grad


if __name__ == "__main__":
    a = Value(2.0)
    b = a * a
    b.backward()
    with mp.get_context("fork").Pool(2) as pool:
        print(pool.map(step, [1, 2, 3, 4]))
    pid = os.fork()
    if pid == 0:
        c = Value(5.0)
        (c * c).backward()
        sys.exit(0)  # a normal exit, which flushes whatever the child holds buffered
    os.waitpid(pid, 0)
    d = a * 3
    d.backward()
    print(a.grad)
'''


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
class TestForks:
    """A forked child is not traced: the parent's trace holds the parent's passes only."""

    @pytest.fixture(scope="class")
    @classmethod
    def forked_run(cls, tmp_path_factory):
        folder = tmp_path_factory.mktemp("forks")
        script = folder / "forking.py"
        script.write_text(textwrap.dedent(FORKING_SCRIPT))
        done = subprocess.run([sys.executable, "-m", "autodiff_trace", "--out", str(folder / "out"),
                               "--no-live", str(script)], capture_output=True, text=True, cwd=folder)
        lines = (folder / "out" / "trace.jsonl").read_text().splitlines()
        return done, line_objects("\n".join(lines))[1:]

    def test_the_script_runs_as_it_does_untraced(self, forked_run):
        """The children's results and the parent's grad print as without the tool."""
        done, _ = forked_run
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[:1] == ["[3.0, 5.0, 7.0, 9.0]"]
        assert "7.0" in done.stdout.splitlines()

    def test_sequence_numbers_are_unique_and_in_order(self, forked_run):
        """No child wrote into the parent's file: seq is 0, 1, 2, ..."""
        _, events = forked_run
        assert [e["seq"] for e in events] == list(range(len(events)))

    def test_only_the_parents_two_passes_are_in_the_trace(self, forked_run):
        """The children's passes are not mixed into the parent's."""
        _, events = forked_run
        assert [e["pass_no"] for e in events if e["kind"] == "backward_started"] == [1, 2]

    def test_the_child_does_not_report(self, forked_run):
        """Only the parent prints what the tool wrote."""
        done, _ = forked_run
        assert done.stdout.count("wrote") + done.stderr.count("wrote") <= 1

    def test_a_child_ended_by_sigterm_ends_as_it_would_untraced(self, tmp_path):
        """A forked child (a pool's worker, which its pool ends so) that gets SIGTERM is killed
        by it, as untraced, instead of unwinding through the tool and exiting with a code."""
        script = tmp_path / "terminated.py"
        script.write_text(textwrap.dedent("""
            import os, signal, time
            pid = os.fork()
            if pid == 0:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM)
        """))
        done = subprocess.run([sys.executable, "-m", "autodiff_trace", "--out", str(tmp_path / "out"),
                               "--quiet", str(script)], capture_output=True, text=True, cwd=tmp_path)
        assert done.stdout.splitlines() == ["True"] and "terminated" not in done.stderr

    def test_a_forked_child_starts_with_the_untraced_sigterm_handling(self, tmp_path):
        """A child has SIGTERM's untraced handling from its first instruction, so a worker
        blocked in a lock wait (where no Python handler can run) still dies of it."""
        script = tmp_path / "disposition.py"
        script.write_text(textwrap.dedent("""
            import os, signal
            pid = os.fork()
            if pid == 0:
                os._exit(0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 1)
            _, status = os.waitpid(pid, 0)
            print(os.waitstatus_to_exitcode(status))
        """))
        done = subprocess.run([sys.executable, "-m", "autodiff_trace", "--out", str(tmp_path / "out"),
                               "--quiet", str(script)], capture_output=True, text=True, cwd=tmp_path)
        assert done.stdout.splitlines() == ["0"]

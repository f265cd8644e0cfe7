"""Commands run side by side from the test's own thread: each run is processes of its own,
so while a test waits for one, the next few are already running.

Processes are started with ``subprocess.Popen`` from the calling thread only (a process
spawned from a helper thread is not something every sandbox takes), their output goes
to files (no pipe to fill while nobody reads it), and a result is read when asked for.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Callable, Dict, Hashable, List


class Launched:
    """One command started now; ``result()`` waits for it and gives a ``CompletedProcess``."""

    def __init__(self, command: List[str], *, text: bool = True, timeout: float = 120, **popen) -> None:
        self.command, self.text, self.timeout = command, text, timeout
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdout=self._out, stderr=self._err, **popen)
        self._done = None

    def result(self) -> subprocess.CompletedProcess:
        if self._done is None:
            try:
                code = self.process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
            outputs = []
            for file in (self._out, self._err):
                file.seek(0)
                data = file.read()
                file.close()
                outputs.append(data.decode(errors="replace") if self.text else data)
            self._done = subprocess.CompletedProcess(self.command, code, *outputs)
        return self._done


class RunsAhead:
    """Results made in the order the tests ask for them, the next few started early.

    ``start(key)`` starts a key's processes and returns something ``finish`` turns into
    the result; both run in the caller's thread. ``ahead`` keys are kept running.
    """

    def __init__(self, keys: List[Hashable], start: Callable, finish: Callable, ahead: int = 0) -> None:
        self.keys, self.start, self.finish = list(keys), start, finish
        self.ahead = ahead or max(1, os.cpu_count() or 1)
        self.started: Dict[Hashable, object] = {}
        self.results: Dict[Hashable, object] = {}

    def __call__(self, *key):
        key = key[0] if len(key) == 1 else key
        if key not in self.results:
            at = self.keys.index(key)
            for k in [key, *self.keys[at + 1:at + self.ahead]]:
                if k not in self.started and k not in self.results:
                    self.started[k] = self.start(k)
            self.results[key] = self.finish(self.started.pop(key))
        return self.results[key]

    def __enter__(self) -> "RunsAhead":
        return self

    def __exit__(self, *exc) -> None:
        for started in self.started.values():  # runs no test asked for: do not leave them behind
            for launched in _launched_in(started):
                launched.process.kill()
                launched.process.wait()
        self.started.clear()


def _launched_in(started) -> list:
    if isinstance(started, Launched):
        return [started]
    if isinstance(started, (tuple, list)):
        return [item for part in started for item in _launched_in(part)]
    return []

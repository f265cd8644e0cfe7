"""The one-line error a sink raises when its output cannot be written."""

from __future__ import annotations

import errno

__all__ = ["cannot_write"]


def cannot_write(target: str, exc: OSError) -> OSError:
    """A failed write as one line naming the file and what to do; ``errno`` is kept.

    Args:
        target: what was written where, as the message says it (``"the trace to out.jsonl"``).
        exc: the error the write raised.

    >>> full = OSError(errno.ENOSPC, "No space left on device")
    >>> error = cannot_write("the trace to out/trace.jsonl", full)
    >>> str(error), error.errno == errno.ENOSPC
    ('cannot write the trace to out/trace.jsonl: No space left on device; free some disk space', True)
    """
    out_of_room = exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # a full disk or quota
    fix = "free some disk space" if out_of_room else "choose a writable folder"
    error = OSError(f"cannot write {target}: {exc.strerror or exc}; {fix}")
    error.errno = exc.errno
    return error

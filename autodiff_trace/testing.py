"""Helpers for testing code that uses autodiff_trace."""

from __future__ import annotations

from .sinks.recorder import Recorder

__all__ = ["ListSink"]


class ListSink(Recorder):
    """A sink that collects events in ``self.events``, for assertions in tests."""

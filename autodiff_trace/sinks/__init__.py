"""Sinks: each consumes the event stream, live or replayed; none knows another."""

from .jsonl import JsonlSink
from .recorder import Recorder

__all__ = ["JsonlSink", "Recorder"]

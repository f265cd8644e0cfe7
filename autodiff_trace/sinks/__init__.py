"""Sinks: each consumes the event stream, live or replayed; none knows another."""

from .dot import DotSink
from .findings import FindingsSink
from .jsonl import JsonlSink
from .recorder import Recorder
from .rich_tree import RichTreeSink

__all__ = ["DotSink", "FindingsSink", "JsonlSink", "Recorder", "RichTreeSink"]

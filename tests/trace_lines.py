"""A trace file's lines as the JSON objects they stand for, for tests that look at lines.

An object line reads as itself; a compact line (an array) reads as the object line its
event would have had, so a test can say ``line["kind"]`` whatever form a line took.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Union

from autodiff_trace.core.compact import read_compact, read_site_line
from autodiff_trace.core.events import to_dict
from autodiff_trace.core.tracefile import encode_line


def line_objects(trace: Union[str, Path]) -> List[dict]:
    """Every event line of a trace (a path, or the text itself) as an object, the header
    first; site lines are read into the nodes that name them."""
    text = Path(trace).read_text() if isinstance(trace, Path) else trace
    objects, t, sites, seq = [], 0.0, {}, None
    for line in text.splitlines():
        data = json.loads(line)
        if isinstance(data, dict) and data.get("kind") == "header":  # from version 4 an array's seq is the one after the event before
            seq = 0 if data["version"] >= 4 else None
        if isinstance(data, dict) and "site_no" in data:  # a site line: its nodes get the site back
            read_site_line(data, sites)
            continue
        if isinstance(data, list):
            data = json.loads(encode_line(to_dict(read_compact(data, t, sites, seq))))
        t = data.get("t", t)
        if seq is not None and "seq" in data:
            seq = data["seq"] + 1
        objects.append(data)
    return objects

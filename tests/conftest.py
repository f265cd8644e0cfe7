"""The engine corpus under tests/engines/ holds scripts to trace, not tests to collect."""

collect_ignore = ["engines"]

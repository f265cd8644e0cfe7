"""The event core: the event schema, the tracer that stamps and delivers events, the model
folded from them, where user code is, how numbers and events are put in words, and
the trace file format.

It imports no engine, view, sink or front end: everything else builds on it.
"""

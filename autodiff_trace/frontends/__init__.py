"""Front ends: the command line, the notebook runner, the decorator and the Jupyter magic.

Only front ends wire engines, analyses, views and sinks together.
"""

"""Reading saved traces back: comparing two runs, and summarising one."""

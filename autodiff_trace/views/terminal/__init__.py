"""Rich renderables for the terminal: the pass tree, the ledger and the findings."""

"""Rich renderables for the terminal: the pass tree, the ledger, the findings, the pass
report and live view (report.py), all styled from styles.py."""

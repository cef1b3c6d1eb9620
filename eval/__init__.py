"""Answer-quality evals: golden datasets, metrics (one module each), runs and reports."""

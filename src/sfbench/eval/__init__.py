"""Evaluation: distances between sample sets, NLL, the analytic oracle."""

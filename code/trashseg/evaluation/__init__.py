"""Evaluation stage: the competition scorer, validation, out-of-fold scoring and run reports."""

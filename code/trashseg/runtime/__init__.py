"""Processes and randomness, below every stage: the DDP context (ranks, barriers, reductions) and the
seeds of runs, epochs and loader workers, which the data loaders and the trainer both use."""

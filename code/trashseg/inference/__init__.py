"""Inference stage: one predictor turns a checkpoint into probabilities at the scoring size, with TTA
and DenseCRF beside it; probability files are what the later stages read."""

"""Modeling stage: build any SMP architecture from the config, encoder weights (hub or offline), and
checkpoints as plain tensors."""

"""Training stage: one trainer (losses, speed switches, DDP, seeding, run records) for every model."""

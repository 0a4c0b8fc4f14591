"""Data stage: COCO JSON -> class-index masks (cached) -> datasets and loaders, folds, checks, and the
augmentations that change training data (albumentations recipe, copy-paste)."""

"""trashseg: shared data, training, inference and submission code for the model folders."""

__version__ = "0.5.0"  # the one version string (pyproject reads it)

"""trashseg: shared data, training, inference and submission code for the model folders."""

__version__ = "0.1.0"

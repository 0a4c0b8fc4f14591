"""One error type for every problem caused by the user's input, so CLIs can print it without a traceback."""


class TrashsegError(Exception):
    """Bad input (file, config, data) explained in words that name the file and the problem."""

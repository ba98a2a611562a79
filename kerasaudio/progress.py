"""Progress of the library's long work (synthesis, reading files, feature extraction),
reported to whoever asked for it: cli.py draws progress bars; a notebook or another program
that sets no reporter gets none, and the library never writes to the terminal itself."""

import contextlib

_reporter = None


def set_reporter(reporter) -> None:
    """`reporter(label, total)`: a context manager yielding `advance(n)`; None: silence."""
    global _reporter
    _reporter = reporter


@contextlib.contextmanager
def task(label: str, total: int):
    """Yields `advance(n=1)`, to call as each of `total` pieces of work is done."""
    if _reporter is None:
        yield lambda n=1: None
        return
    with _reporter(label, total) as advance:
        yield advance


def each(items, label: str, total: int):
    """The items, reporting each one done."""
    with task(label, total) as advance:
        for item in items:
            yield item
            advance(1)

"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives.
If that is a weakref callback or a `__del__` (TensorFlow and Keras run many while training),
the exception is printed as "Exception ignored" and dropped: training runs on, and the
command ends with exit status 0 as if nobody had asked it to stop. Within `remembered()`
the signal is also written down, so training raises it again after the next batch
(`StopOnInterrupt`), and leaving the block raises it if nothing did.
"""

import contextlib
import signal
import threading

import keras

_requested = threading.Event()


def _on_sigint(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


def check() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed within `remembered()`, even if the
    exception it raised then was swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def remembered():
    """Within the block, Ctrl-C raises KeyboardInterrupt as usual and is remembered too
    (`check`). Outside the main thread, where Python takes no signal handler, nothing
    changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
        check()
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises a remembered Ctrl-C (`check`) after every batch of training, validation and
    prediction."""

    def on_train_batch_end(self, batch, logs=None):
        check()

    def on_test_batch_end(self, batch, logs=None):
        check()

    def on_predict_batch_end(self, batch, logs=None):
        check()

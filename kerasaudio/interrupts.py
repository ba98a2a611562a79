"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives.
If that is a weakref callback or a `__del__` (TensorFlow and Keras run many while training),
the exception is printed as "Exception ignored" and dropped: training runs on, and the
command ends with exit status 0 as if nobody had asked it to stop. Within `remembered()`
the signal is also written down, so training raises it again after the next batch
(`StopOnInterrupt`). One that lands inside TensorFlow can come out as another exception
(pybind11's "error_already_set", a SystemError); with the signal written down, it is a
KeyboardInterrupt again.
"""

import contextlib
import signal
import threading

import keras

_requested = threading.Event()


def _on_sigint(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


def requested() -> bool:
    """Whether Ctrl-C was pressed within `remembered()`."""
    return _requested.is_set()


def check() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed within `remembered()`, even if the
    exception it raised then was swallowed."""
    if requested():
        raise KeyboardInterrupt


@contextlib.contextmanager
def remembered():
    """Within the block, Ctrl-C raises KeyboardInterrupt as usual and is remembered too
    (`requested`, `check`); an exception that escapes the block after it is a
    KeyboardInterrupt. Nothing changes outside the main thread, where Python takes no
    signal handler, nor where SIGINT is ignored (`command &` in a script)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None)):
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    except Exception as error:
        if requested():
            raise KeyboardInterrupt from error
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises a remembered Ctrl-C (`check`) after every batch of training and of the
    validation `model.fit` runs (the only place it is given)."""

    def on_train_batch_end(self, batch, logs=None):
        check()

    def on_test_batch_end(self, batch, logs=None):
        check()

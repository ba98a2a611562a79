"""TensorFlow imported without its C++ start-up chatter (absl's preamble, oneDNN and CUDA
probing lines on a CPU machine), which is noise to users and would bury a one-line error."""

import os


def import_tensorflow() -> None:
    """Imports TensorFlow and Keras with the process's stderr pointed at /dev/null: some of
    those lines come before TensorFlow reads TF_CPP_MIN_LOG_LEVEL. Python errors still
    surface (as exceptions)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow

            # Finding the devices probes CUDA ("failed call to cuInit" on a CPU machine):
            # done here, it says so to /dev/null rather than in the middle of a command.
            tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)

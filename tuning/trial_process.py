"""The start of a trial's process, which tuning/search.py spawns for every trial. Kept apart
from search.py, which imports Keras: this runs before any of the trial's code is unpickled,
so it can import TensorFlow quietly first."""

import ctypes
import os
import signal
import sys

from kerasaudio import quiet

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def start(parent: int) -> None:
    """Asks Linux to kill this process when its parent (the search) dies, so a killed search
    leaves no trial training on into the trial directory a resumed search is about to use;
    leaves Ctrl-C to the search; then imports TensorFlow without its start-up lines."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # Ctrl-C reaches the whole process group; the search stops this process itself. A
    # KeyboardInterrupt here could come out of TensorFlow as another exception, which
    # KerasTuner would record as a failed trial, never to be run again.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed before the request above sends no signal; this process has been
    # handed to another parent by then.
    if os.getppid() != parent:
        os._exit(1)
    quiet.import_tensorflow()

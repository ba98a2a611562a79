"""Pools of worker processes for the library's CPU-bound work that cannot run in threads
(speech synthesis through C libraries with global state, librosa's feature extractors).

Workers fork from a multiprocessing forkserver that has imported only the given modules:
the caller usually has TensorFlow loaded, and a process with TensorFlow's threads must not be
forked. Python's forkserver also imports the caller's main script again in every worker, so
that functions defined there can be sent to it; this library sends none, and a script that
imports TensorFlow at its top would pay about 6 s of imports per worker (the spoken-digits
corpus starts one worker per speaker: ten minutes instead of half a minute), so the workers
are started without it.
"""

import contextlib
import multiprocessing
import os
import sys
import threading
import types


def usable_cores() -> int:
    """The cores this process may run on (a container or `taskset` can allow fewer)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@contextlib.contextmanager
def pool(preload: list[str], processes: int, maxtasksperchild: int | None = None):
    """A `multiprocessing.Pool` of `processes` workers forked from a server with `preload`
    imported, none of which imports the caller's main script.

    A process has one forkserver: the `preload` of the first pool that starts it is the one
    that counts."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    with _main_script_hidden(), ctx.Pool(processes, maxtasksperchild=maxtasksperchild) as workers:
        yield workers


_hiding = threading.Lock()
_pools_open = 0  # pools of this process open at once; the first one in hides the script
_main = None  # the caller's main module while it is hidden


@contextlib.contextmanager
def _main_script_hidden():
    """While pools start workers (with `maxtasksperchild`, all through their work), the main
    module multiprocessing sees is an empty one, so workers import no script or module again.

    multiprocessing finds what to import through `sys.modules["__main__"]`'s `__spec__` (for
    `python -m`) or `__file__` (`multiprocessing.spawn.get_preparation_data`). The caller's
    module object itself is not touched; it is back in its place when the last pool open
    closes, whichever thread opened it. Meanwhile nothing defined in the script can be pickled
    by name (the library's pools send none of it)."""
    global _pools_open, _main
    with _hiding:
        if _pools_open == 0:
            _main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
        _pools_open += 1
    try:
        yield
    finally:
        with _hiding:
            _pools_open -= 1
            if _pools_open == 0:
                sys.modules["__main__"], _main = _main, None

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
import types


def usable_cores() -> int:
    """The cores this process may run on (a container or `taskset` can allow fewer)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@contextlib.contextmanager
def pool(preload: list[str], processes: int, maxtasksperchild: int | None = None):
    """A `multiprocessing.Pool` of `processes` workers forked from a server with `preload`
    imported, none of which imports the caller's main script."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    with _main_script_hidden(), ctx.Pool(processes, maxtasksperchild=maxtasksperchild) as workers:
        yield workers


@contextlib.contextmanager
def _main_script_hidden():
    """While the pool starts workers (with `maxtasksperchild`, all through its work), the main
    module multiprocessing sees is an empty one, so workers import no script or module again.

    multiprocessing finds what to import through `sys.modules["__main__"]`'s `__spec__` (for
    `python -m`) or `__file__` (`multiprocessing.spawn.get_preparation_data`); the caller's
    module object itself is not touched, and is back in its place when the pool is closed."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main

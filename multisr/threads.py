"""The threads the stages use for their frames and bands: one per core by default; ``multisr
batch`` gives each of its tasks fewer (:func:`set_workers`), so that its workers share the cores."""
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

__all__ = ["workers", "set_workers", "in_threads"]

_workers = os.cpu_count() or 1


def workers() -> int:
    """How many threads a stage runs its frames or bands in."""
    return _workers


def set_workers(count: int) -> None:
    """Run the stages in ``count`` threads from now on (at least 1)."""
    global _workers
    _workers = max(1, int(count))


def in_threads(work: Callable, items) -> list:
    """``[work(item) for item in items]``, in :func:`workers` threads (OpenCV's decoding, resizing
    and warping release the GIL); the first exception, in the items' order, is raised."""
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        return list(pool.map(work, items))

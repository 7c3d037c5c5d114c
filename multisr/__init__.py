"""multisr: multi-frame super-resolution of bursts of photographs (SRCNN + registration + fusion).

The notebook entry point is :func:`open_run`; the command line is ``multisr``.
"""

__all__ = ["open_run"]


def __getattr__(name: str):
    # imported on first use, so that ``multisr --help`` and the command line's argument errors do
    # not wait for the library (registration, cache, numpy, OpenCV)
    if name == "open_run":
        from .rundir import open_run

        return open_run
    raise AttributeError(f"module 'multisr' has no attribute {name!r}")

"""multisr: multi-frame super-resolution of bursts of photographs (SRCNN + registration + fusion).

The notebook entry point is :func:`open_run`; the command line is ``multisr``.
"""
from .rundir import open_run

__all__ = ["open_run"]

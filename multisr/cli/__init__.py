"""The ``multisr`` command line: a thin click layer over the library.

Every expected mistake surfaces as :class:`multisr.errors.UserError`; the command group prints
it as one line (``Error: ...``) and exits with status 2, never with a traceback. The commands
import the library (and torch) only when they run, so ``--help`` and argument errors are quick.
"""
import click

from .bursts import batch, cache, compare, run, stages, upscale, video
from .common import Group
from .research import bench, evaluate, scene, simulate, train

__all__ = ["cli"]


@click.group(cls=Group)
@click.version_option(package_name="multisr")
def cli():
    """Multi-frame super-resolution: a burst of low-resolution frames in, one image 2, 3 or 4 times
    as large out (3x by default)."""


for command in (run, compare, video, batch, stages, upscale, cache, scene, simulate, evaluate, train, bench):
    cli.add_command(command)

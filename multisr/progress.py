"""Progress bars: tqdm's where stderr is a terminal, none where it is a log file or a pipe.

A bar redraws its line with carriage returns, and a bar inside another (a window's stages inside
``multisr video``'s frames) moves the cursor up to redraw: on a terminal that is progress, in a
file it is noise (``multisr video 2> log`` filled the log with blank lines and cursor-up escapes).
Every bar of the package comes from :class:`progress_bar`, which leaves tqdm to decide by the stream
(``disable=None``); what a run did is in its own lines and its ``run.json`` either way.
"""
from tqdm import tqdm

__all__ = ["progress_bar"]


class progress_bar(tqdm):  # noqa: N801 - used as tqdm is, a function's name
    """``tqdm(*args, **options)``, off where stderr is not a terminal (unless ``disable`` is given);
    ``progress_bar.write(line)`` prints a line past any bar, as ``tqdm.write``."""

    def __init__(self, *args, **options):
        options.setdefault("disable", None)
        super().__init__(*args, **options)

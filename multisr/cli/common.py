"""What the commands share: one-line errors, the lists ``--help`` shows, small option helpers."""
import re
import signal
import sys
from importlib import resources
from pathlib import Path

import click

from ..errors import UserError, os_error_line
from ..params import SCALE, SCALES, parse_integer, parse_number

__all__ = ["Group", "Command", "Integer", "Number", "FrameCount", "PIPELINES_HELP", "MODELS_HELP",
           "reference_callback", "warn_left_out", "warn_passed_over", "shipped", "cache_dir_option",
           "device_option", "scale_option", "warn_uncertain_blur"]

# library argument names that a command's options call otherwise
ALIASES = {"max_disk_bytes": ("max_disk",), "pipeline": ("pipeline_name", "pipelines")}


class UserFailure(click.ClickException):
    exit_code = 2


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that the same clean-up runs as for Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


STOPPED = "what was finished is kept (the stage cache; a rerun resumes from it) and nothing half-written is left"


class Group(click.Group):
    """A click group that turns :class:`UserError`, and the file system's refusals (a full disk, a
    read-only folder, a path under a file), into a one-line message and exit status 2; Ctrl-C and
    SIGTERM into one line and the shell's status for them (130, 143), after the commands' own
    clean-up has run."""

    def invoke(self, ctx):
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise UserFailure(str(error)) from None
        except OSError as error:
            raise UserFailure(os_error_line(error)) from None
        except KeyboardInterrupt:
            _stop(f"interrupted (Ctrl-C); {STOPPED}", 128 + signal.SIGINT)
        except Terminated:
            _stop(f"stopped (SIGTERM); {STOPPED}", 128 + signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _stop(message: str, status: int):
    sys.stderr.write("\n")  # past a progress bar's line
    click.echo(f"Error: {message}", err=True)
    sys.exit(status)


class Command(click.Command):
    """A click command whose :class:`UserError` messages name its options as the user typed them:
    the library names its arguments (``n: expected ...``, ``out_dir runs/x: ...``), and a message
    that starts with the name of one of this command's options starts with its flag instead
    (``--n: expected ...``, ``--out runs/x: ...``)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise UserFailure(self.flagged(str(error))) from None

    def flagged(self, message: str) -> str:
        """``message`` with a leading argument name replaced by the flag of the option it names."""
        match = re.match(r"([a-z_]+)(?=[: ])", message)
        if match is None:
            return message
        names = (match.group(1), *ALIASES.get(match.group(1), ()))
        for param in self.params:
            if isinstance(param, click.Option) and param.name in names:
                return max(param.opts, key=len) + message[match.end():]
        return message


def shipped(folder, suffix: str) -> str:
    """The names of the files ending in ``suffix`` that ship in ``folder`` (a package resource),
    comma-separated: what ``--help`` lists, read without importing torch."""
    return ", ".join(sorted(entry.name[: -len(suffix)] for entry in folder.iterdir() if entry.name.endswith(suffix)))


PIPELINES_HELP = shipped(resources.files("multisr.pipelines"), ".toml")
MODELS_HELP = shipped(resources.files("multisr") / "weights", ".pt")


def reference_callback(ctx, param, value: str | None) -> int | str | None:
    """``--reference``'s text as a frame index when it is one, else as given (the run checks it)."""
    try:
        return parse_integer(value) if value is not None else None
    except ValueError:
        return value


class _Digits:
    """A number option's text read by ``parse`` (digits 0-9 only: click's ``int()`` and
    ``float()`` read other scripts' digits, and ``float()`` inf and nan), then checked against
    the option's bounds; ``--help`` shows the range only where there is one."""

    parse = None

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                value = type(self).parse(value)
            except ValueError as error:
                self.fail(str(error), param, ctx)
        return super().convert(value, param, ctx)

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()


class Integer(_Digits, click.IntRange):
    """An integer option, with optional bounds as :class:`click.IntRange`, in the digits 0-9."""

    name = "integer"
    parse = staticmethod(parse_integer)


class Number(_Digits, click.FloatRange):
    """A finite number option, with optional bounds as :class:`click.FloatRange`, in the digits 0-9."""

    name = "number"
    parse = staticmethod(parse_number)


class FrameCount(click.ParamType):
    """``--n``: a number of frames, or ``all`` (every frame from ``--start`` on); the library
    checks the number (at least 2)."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        text = str(value).strip().lower()
        if text == "all":
            return text
        try:
            return parse_integer(text)
        except ValueError:
            self.fail(f"expected a number of frames (digits 0-9) or all, got {value!r}", param, ctx)


def warn_left_out(excluded: list[dict]) -> None:
    for entry in excluded:
        click.echo(f"Warning: {entry['frame']} left out of the burst: {entry['reason']}", err=True)


def warn_uncertain_blur(solve: dict) -> None:
    """A notice when the multi-frame solve's blur estimate is uncertain: the widths its held-out
    frames do not tell apart (``run.json``'s ``solve.psf_range``) span
    :data:`multisr.reconstruction.reconstruct.UNCERTAIN_WIDTHS` or more."""
    from ..reconstruction.reconstruct import UNCERTAIN_WIDTHS

    widths = solve.get("psf_range")
    if widths and widths[1] - widths[0] >= UNCERTAIN_WIDTHS:
        click.echo(f"Notice: this burst does not tell its blur well: Gaussian widths from {widths[0]} to {widths[1]} LR "
                   f"px predict its frames about as well (chosen: {solve['psf']}); if you know your camera's, name it "
                   "with --set reconstruct.psf=box+WIDTH", err=True)


def warn_passed_over(source: dict) -> None:
    """One warning line for the files of a frames folder that are not frames (sidecars, system
    files, RAW files), as the load stage recorded them, and one for RAW frames that cannot be
    solved from their mosaics (and why)."""
    from ..storage.folders import passed_over_line

    line = passed_over_line(source.get("folder"), source.get("passed_over") or {})
    if line is not None:
        click.echo(f"Warning: {line}", err=True)
    reason = (source.get("raw") or {}).get("no_mosaic")
    if reason:
        click.echo(f"Warning: the RAW frames are demosaiced by LibRaw one by one, not solved from the burst's mosaics: "
                   f"{reason}", err=True)


cache_dir_option = click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
                                help="The stage cache's folder (default: $MULTISR_CACHE, else ~/.cache/multisr).")
scale_option = click.option("--scale", type=Integer(min=min(SCALES), max=max(SCALES)), default=SCALE, show_default=True,
                            help="The magnification: 2, 3 (the experiment's) or 4.")
device_option = click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")

"""Typed stage parameters: each parameter's type and allowed values, and its default, each written
once and checked before any stage runs (pipeline files, ``--set``, ``--reference``)."""
import inspect
import re
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .errors import UserError

__all__ = ["parse_integer", "parse_number", "Param", "defaults_from", "SCALE", "SCALES", "DEFAULT_FRAMES",
           "DEFAULT_REFERENCE", "REFERENCE_RULES", "check_reference", "ALL_FRAMES", "check_frame_count"]

SCALE = 3  # the default magnification (the experiment's) of the pipelines, evaluation, training and simulation
SCALES = (2, 3, 4)  # the magnifications the pipelines run at (--scale)
DEFAULT_FRAMES = 20  # --n: the frames of a burst a run uses
ALL_FRAMES = "all"  # --n all: every frame from --start on
DEFAULT_REFERENCE = "sharpest"  # --reference


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_integer(text: str) -> int:
    """``text`` (surrounding blanks aside) as an integer written with the digits 0-9 and an
    optional sign, else ``ValueError`` saying so: Python's ``int()`` also reads other scripts'
    digits ("٣") and ``str.isdigit()`` passes superscripts ("²") that ``int()`` refuses."""
    if not isinstance(text, str) or not _INTEGER.fullmatch(text.strip()):
        raise ValueError(f"expected a whole number written with the digits 0-9, got {text!r}")
    return int(text)


def parse_number(text: str) -> float:
    """``text`` as a finite decimal number written with the digits 0-9 (``1.5``, ``-2``, ``3e-4``),
    else ``ValueError``; ``float()`` would also take other scripts' digits, ``inf`` and ``nan``."""
    if not isinstance(text, str) or not _NUMBER.fullmatch(text.strip()):
        raise ValueError(f"expected a number written with the digits 0-9 (such as 1.5 or 3e-4), got {text!r}")
    return float(text)


@dataclass(frozen=True)
class Param:
    """One stage parameter: its type (``int``, ``float`` or ``str``, or a tuple of them), what it
    may be: ``choices`` (a tuple of the allowed values, or a function that raises ``ValueError``
    for a value it refuses) and inclusive bounds ``low``, ``high`` for numbers; and its
    ``default``, given here only when no library function's signature holds it
    (:func:`defaults_from`). Floats must be finite; an int is accepted where a float is expected,
    a bool never where a number is."""

    kind: type | tuple[type, ...]
    choices: tuple | Callable | None = None
    low: float | None = None
    high: float | None = None
    default: object = None

    def check(self, where: str, value):
        """``value`` as the parameter takes it, or :class:`UserError` naming ``where`` (e.g.
        ``"--set fuse.method"``), what was expected and what was found."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or isinstance(value, bool):
            raise UserError(f"{where}: expected {self._expected()}, got {value!r}")
        if isinstance(value, float) and not np.isfinite(value):
            raise UserError(f"{where}: expected a finite number, got {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise UserError(f"{where}: expected {self._expected()}, got {value!r}")
        if isinstance(self.choices, tuple) and value not in self.choices:
            raise UserError(f"{where}: expected one of {', '.join(map(str, self.choices))}, got {value!r}")
        if callable(self.choices):
            try:
                self.choices(value)
            except ValueError as error:
                raise UserError(f"{where}: {error}") from None
        return value

    def _expected(self) -> str:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        noun = " or ".join({int: "an integer", float: "a number", str: "a string"}[kind] for kind in kinds)
        if self.low is not None and self.high is not None:
            return f"{noun} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{noun} >= {self.low}"
        return noun


def defaults_from(function: Callable, params: dict[str, Param]) -> dict[str, Param]:
    """``params`` with each default taken from the signature of ``function``, the library function
    the stage calls with them: the one place those defaults are written."""
    signature = inspect.signature(function).parameters
    return {name: replace(param, default=signature[name].default) for name, param in params.items()}


REFERENCE_RULES = ("sharpest",)  # what ``--reference`` takes besides a frame index


def check_reference(value) -> None:
    """``ValueError`` unless ``value`` is a frame index (an int >= 0) or one of :data:`REFERENCE_RULES`."""
    if isinstance(value, str) and value not in REFERENCE_RULES or isinstance(value, int) and value < 0:
        raise ValueError(f"expected a frame index (0, 1, ... in the digits 0-9) or {' or '.join(REFERENCE_RULES)}, "
                         f"got {value!r}")


def check_frame_count(value) -> None:
    """``ValueError`` unless ``value`` is a frame count (an int >= 2) or :data:`ALL_FRAMES`."""
    if isinstance(value, str) and value != ALL_FRAMES or isinstance(value, int) and value < 2:
        raise ValueError(f"expected a number of frames, at least 2, or {ALL_FRAMES}, got {value!r}")

"""RAW frames (DNG, CR2, NEF, ARW, ...): read by LibRaw (rawpy), developed to sRGB and as their mosaic.

A RAW file holds the sensor's mosaic: one colour per pixel in a repeating pattern (the Bayer
pattern, say RGGB), above a black level and up to a white level, with the camera's white balance
and its colour matrix (camera RGB -> XYZ). :func:`read_raw` gives both what multisr works on:

- the frame developed by LibRaw: the black subtracted, scaled to the white, the white balance the
  camera recorded applied, demosaiced (AHD), converted to sRGB (its transfer curve) and turned
  upright, as a camera's own JPEG is made but without its sharpening, noise reduction or
  compression, in 16 bits (:data:`DEVELOPMENT`);
- the mosaic itself, upright like the developed frame: each pixel's value after the same black,
  white and white balance (linear, white at 1; not clipped below 0, so the noise of dark pixels
  stays unbiased; clipped at 1 as LibRaw clips, so that blown highlights come out white, not
  tinted by the one channel the white balance lifted), and its colour (0 red, 1 green, 2 blue). The burst demosaics itself from these
  (:mod:`multisr.reconstruction.mosaic`); :func:`multisr.imaging.develop.develop` takes its result
  to sRGB as LibRaw does.

:func:`raw_info` says what was read from the file, for ``run.json``.
"""
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .io import MAX_PIXELS_ENV, check_regular_file, max_pixels

__all__ = ["DEVELOPMENT", "MIN_RAW_SIDE", "RawFrame", "read_raw", "raw_info", "raw_size"]

MIN_RAW_SIDE = 22  # pixels: LibRaw refuses a RAW file whose picture is smaller on a side (unsupported)
_STDERR_LOCK = threading.Lock()  # the process's one stderr, lent to LibRaw one file at a time
DEVELOPMENT = "LibRaw: black and white levels, the camera's white balance, AHD demosaicing, sRGB, 16 bits"


@dataclass
class RawFrame:
    """One RAW file as :func:`read_raw` reads it.

    Attributes:
        image: ``(H, W, 3)`` float32 sRGB in [0, 1], developed by LibRaw, upright.
        info: :func:`raw_info` of the file.
        mosaic: ``(H, W)`` float32 linear white-balanced values (white 1), upright, or ``None``
            when the sensor's visible area is not the developed picture's (then only ``image``
            can be used).
        colours: ``(H, W)`` uint8, each mosaic pixel's colour (0 R, 1 G, 2 B), or ``None``.
    """

    image: np.ndarray
    info: dict
    mosaic: np.ndarray | None
    colours: np.ndarray | None


@contextmanager
def _libraw_quiet():
    """LibRaw's C code writes its complaints about a damaged file (``data corrupted at ...``) to the
    process's stderr itself: they go to a scratch file while it opens and unpacks one, and the
    one-line error says what is wrong. One file at a time (the process has one stderr); the
    demosaicing, the slow part, runs outside."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextmanager
def _guarded(path: Path, what: str):
    """Any error of LibRaw's within, as one line naming ``path``: ``what`` failed (a file LibRaw
    opens can still fail when its pixels are unpacked or developed: a truncated DNG)."""
    import rawpy

    try:
        yield
    except (rawpy.LibRawError, OSError, ValueError) as error:
        raise UserError(f"{path}: expected a RAW file LibRaw can read, but {what} ({type(error).__name__})") from None


def _open(path: Path):
    """``rawpy.imread(path)`` with its raw data unpacked, or a one-line :class:`UserError` for a file
    LibRaw cannot open or unpack."""
    import rawpy  # LibRaw loads only when a RAW file is read

    check_regular_file(path, what="a RAW file")
    with _guarded(path, "it is damaged or of an unsupported kind"), _libraw_quiet():
        raw = rawpy.imread(str(path))
        try:
            raw.unpack()
        except BaseException:
            raw.close()
            raise
    return raw


def raw_info(raw) -> dict:
    """What a RAW file says about its pixels (``raw`` an open ``rawpy.RawPy``): the colour pattern
    (``"RGGB"``, ...), the black level of each pattern position and the white level (sensor
    units), the camera's white balance (multipliers of R, G, B, G2), and the colour matrix LibRaw
    derived from the file's (camera RGB -> linear sRGB, 3x3: the inverse of the file's XYZ ->
    camera matrix times sRGB's primaries, its rows scaled to sum 1), and the sensor's size."""
    names = raw.color_desc.decode()
    pattern = "".join(names[index] for index in raw.raw_pattern.ravel()) if raw.raw_pattern is not None else None
    return {"pattern": pattern, "black_levels": [int(v) for v in raw.black_level_per_channel],
            "white_level": int(raw.white_level), "white_balance": [round(float(v), 5) for v in _multipliers(raw)],
            "camera_to_srgb": np.round(np.asarray(raw.color_matrix[:, :3], np.float64), 5).tolist(),
            "size": [int(raw.sizes.width), int(raw.sizes.height)]}


def _multipliers(raw) -> np.ndarray:
    """The white balance LibRaw applies with the camera's (its daylight one when the file has
    none), per colour index of ``raw.color_desc``; a missing second green is the first's."""
    multipliers = np.asarray(raw.camera_whitebalance, np.float64)
    if not np.any(multipliers[:3] > 0):
        multipliers = np.asarray(raw.daylight_whitebalance, np.float64)
    if multipliers[3] <= 0:
        multipliers[3] = multipliers[1]
    return multipliers


def _plausible_levels(info: dict) -> bool:
    """Whether a file's levels, white balance and colour matrix (:func:`raw_info`) can develop its
    mosaic: a white level above every black level, positive finite multipliers for the colours
    used, a finite matrix."""
    black, white = np.asarray(info["black_levels"], np.float64), float(info["white_level"])
    balance, matrix = np.asarray(info["white_balance"], np.float64), np.asarray(info["camera_to_srgb"], np.float64)
    return (bool(np.all(white > black)) and bool(np.all(np.isfinite(balance[:3]) & (balance[:3] > 0)))
            and matrix.shape == (3, 3) and bool(np.all(np.isfinite(matrix))))


def _upright(array: np.ndarray, flip: int) -> np.ndarray:
    """``array`` (the sensor's rows and columns) turned as LibRaw turns its output (its ``flip``:
    bit 1 mirrors the columns, bit 2 the rows, bit 4 swaps rows and columns, in that order)."""
    if flip & 1:
        array = array[:, ::-1]
    if flip & 2:
        array = array[::-1]
    if flip & 4:
        array = array.T
    return np.ascontiguousarray(array)


def _mosaic(raw, info: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The visible mosaic, linear and white-balanced as LibRaw scales it before demosaicing (its
    multipliers normalised to the smallest), and each pixel's colour (0 R, 1 G, 2 B), upright;
    ``(None, None)`` for a sensor without a mosaic of red, green and blue (a linear DNG, a
    four-colour CMYG one)."""
    names = raw.color_desc.decode()
    if raw.raw_pattern is None or raw.raw_image_visible.ndim != 2 or not set(names) <= set("RGB"):
        return None, None
    if not _plausible_levels(info):  # metadata is untrusted: levels that cannot scale a mosaic are missing ones
        return None, None
    indices = raw.raw_colors_visible
    to_rgb = np.array(["RGB".index(name) for name in names], np.uint8)
    black = np.asarray(raw.black_level_per_channel, np.float32)[indices]
    multipliers = _multipliers(raw)
    gains = (multipliers / multipliers[multipliers > 0].min()).astype(np.float32)[indices]
    mosaic = (raw.raw_image_visible.astype(np.float32) - black) / (info["white_level"] - black) * gains
    flip = raw.sizes.flip
    return _upright(np.minimum(mosaic, 1.0), flip), _upright(to_rgb[indices], flip)


def raw_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a RAW file's picture as :func:`read_raw` returns it (upright), from
    its header, without developing it."""
    with _open(Path(path)) as raw, _guarded(path, "its header cannot be read"):
        width, height = raw.sizes.width, raw.sizes.height
        return (height, width) if raw.sizes.flip & 4 else (width, height)


def read_raw(path: Path) -> RawFrame:
    """One RAW file, developed and as its mosaic (see the module docstring and :class:`RawFrame`).
    A file over :func:`max_pixels` is refused before it is developed; a damaged or unsupported
    one in one line, whichever of LibRaw's calls finds it out."""
    import rawpy

    path = Path(path)
    with _open(path) as raw:
        with _guarded(path, "its header cannot be read"):
            width, height = raw.sizes.width, raw.sizes.height
        if width * height > max_pixels():
            raise UserError(f"{path}: expected an image of at most {max_pixels():,} pixels (${MAX_PIXELS_ENV}), "
                            f"but its header says {width}x{height} ({width * height:,})")
        with _guarded(path, "its pixels cannot be decoded"):
            info = raw_info(raw)
            # sRGB's curve, and the white level the file gives (not one guessed from the pixels)
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, gamma=(2.4, 12.92),
                                  adjust_maximum_thr=0.0, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD)
            mosaic, colours = _mosaic(raw, info)
    if mosaic is None or mosaic.shape != rgb.shape[:2]:
        mosaic, colours = None, None
    return RawFrame(rgb.astype(np.float32) / 65535.0, info, mosaic, colours)

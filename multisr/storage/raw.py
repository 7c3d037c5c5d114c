"""RAW frames (DNG, CR2, NEF, ARW, ...): read and demosaiced by LibRaw (rawpy), in sRGB.

A RAW file holds the sensor's mosaic: one colour per pixel in a repeating pattern (the Bayer
pattern, say RGGB), above a black level and up to a white level, with the camera's white balance
and its colour matrix (camera RGB -> XYZ). :func:`read_raw` has LibRaw subtract the black,
scale to the white, apply the white balance the camera recorded, demosaic (AHD), convert to sRGB
(its gamma) and turn the image upright, as a camera's own JPEG is made but without its
sharpening, noise reduction or compression, in 16 bits; :func:`raw_info` says what was read
from the file, for ``run.json``.
"""
from pathlib import Path

import numpy as np

from ..errors import UserError
from .io import MAX_PIXELS_ENV, check_regular_file, max_pixels

__all__ = ["DEVELOPMENT", "read_raw", "raw_info", "raw_size"]

DEVELOPMENT = "LibRaw: black and white levels, the camera's white balance, AHD demosaicing, sRGB, 16 bits"


def _open(path: Path):
    """``rawpy.imread(path)``, or a one-line :class:`UserError` for a file LibRaw cannot read."""
    import rawpy  # LibRaw loads only when a RAW file is read

    check_regular_file(path, what="a RAW file")
    try:
        return rawpy.imread(str(path))
    except (rawpy.LibRawError, OSError) as error:
        raise UserError(f"{path}: expected a RAW file LibRaw can read, but it is damaged or of an unsupported "
                        f"kind ({type(error).__name__})") from None


def raw_info(raw) -> dict:
    """What a RAW file says about its pixels (``raw`` an open ``rawpy.RawPy``): the colour pattern
    (``"RGGB"``, ...), the black level of each pattern position and the white level (sensor
    units), the camera's white balance (multipliers of R, G, B, G2), and the colour matrix LibRaw
    derived from the file's (camera RGB -> linear sRGB, 3x3: the inverse of the file's XYZ ->
    camera matrix times sRGB's primaries, its rows scaled to sum 1), and the sensor's size."""
    names = raw.color_desc.decode()
    pattern = "".join(names[index] for index in raw.raw_pattern.ravel()) if raw.raw_pattern is not None else None
    return {"pattern": pattern, "black_levels": [int(v) for v in raw.black_level_per_channel],
            "white_level": int(raw.white_level), "white_balance": [round(float(v), 5) for v in raw.camera_whitebalance],
            "camera_to_srgb": np.round(np.asarray(raw.color_matrix[:, :3], np.float64), 5).tolist(),
            "size": [int(raw.sizes.width), int(raw.sizes.height)]}


def raw_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a RAW file's picture as :func:`read_raw` returns it (upright), from
    its header, without decoding."""
    with _open(Path(path)) as raw:
        width, height = raw.sizes.width, raw.sizes.height
        return (height, width) if raw.sizes.flip in (5, 6) else (width, height)


def read_raw(path: Path) -> tuple[np.ndarray, dict]:
    """One RAW file as ``(image, info)``: ``(H, W, 3)`` float32 sRGB in [0, 1], upright (see the
    module docstring), and :func:`raw_info` of the file. A file over :func:`max_pixels` is
    refused before it is demosaiced; a damaged or unsupported one in one line."""
    import rawpy

    path = Path(path)
    with _open(path) as raw:
        width, height = raw.sizes.width, raw.sizes.height
        if width * height > max_pixels():
            raise UserError(f"{path}: expected an image of at most {max_pixels():,} pixels (${MAX_PIXELS_ENV}), "
                            f"but its header says {width}x{height} ({width * height:,})")
        info = raw_info(raw)
        try:
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16,
                                  demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD)
        except (rawpy.LibRawError, OSError) as error:
            raise UserError(f"{path}: expected a RAW file LibRaw can read, but its pixels cannot be decoded "
                            f"({type(error).__name__})") from None
    return (rgb.astype(np.float32) / 65535.0), info

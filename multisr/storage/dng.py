"""Bayer DNG files written (tifffile): the mosaic bursts ``multisr simulate --mosaic`` makes.

A DNG is a TIFF whose pixels are the sensor's mosaic (``PhotometricInterpretation`` CFA), with
tags that say how to develop it: the colour pattern, the black and white levels, the colour
matrix (XYZ -> camera, under D65) and the camera's response to white (``AsShotNeutral``, the
inverse of its white balance). LibRaw reads them as it reads a camera's
(:mod:`multisr.storage.raw`).
"""
from pathlib import Path

import numpy as np

__all__ = ["BAYER_PATTERNS", "write_dng"]

# each pattern's 2x2 colours (0 R, 1 G, 2 B), rows first
BAYER_PATTERNS = {"rggb": (0, 1, 1, 2), "bggr": (2, 1, 1, 0), "grbg": (1, 0, 2, 1), "gbrg": (1, 2, 0, 1)}
_DENOMINATOR = 10000  # of the rational tags


def _rationals(values) -> tuple:
    return tuple(v for x in np.ravel(values) for v in (int(round(float(x) * _DENOMINATOR)), _DENOMINATOR))


def write_dng(path: Path, mosaic: np.ndarray, *, pattern: str, black: int, white: int, xyz_to_camera: np.ndarray,
              neutral, orientation: int = 1) -> None:
    """Write ``mosaic`` (``(H, W)`` uint16 sensor values, ``pattern`` from the top-left pixel) as a
    DNG 1.4 file at ``path``, with the black and white levels, the 3x3 ``xyz_to_camera`` matrix
    (D65), ``neutral`` (the camera's R, G, B response to white) and the TIFF ``orientation``
    (1 upright; 6: the picture is the sensor turned 90 degrees clockwise, a camera held upright)."""
    import tifffile  # only simulations write DNG files

    tags = [(50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
            (50708, "s", 0, "multisr simulated camera", True),  # UniqueCameraModel
            (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
            (33422, "B", 4, BAYER_PATTERNS[pattern], True),  # CFAPattern
            (50714, "H", 1, (int(black),), True), (50717, "H", 1, (int(white),), True),  # BlackLevel, WhiteLevel
            (50721, "2i", 9, _rationals(xyz_to_camera), True),  # ColorMatrix1
            (50778, "H", 1, (21,), True),  # CalibrationIlluminant1: D65
            (50728, "2I", 3, _rationals(neutral), True),  # AsShotNeutral
            (274, "H", 1, (int(orientation),), True)]  # Orientation
    tifffile.imwrite(Path(path), np.asarray(mosaic, np.uint16), photometric=32803, extratags=tags, subfiletype=0)

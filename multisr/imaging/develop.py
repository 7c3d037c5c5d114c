"""Development: a camera's linear, white-balanced RGB <-> sRGB, as LibRaw develops a RAW file.

A RAW file's pixels, less the black level, scaled to the white level and by the white balance's
multipliers (normalised to the smallest, 1), are the camera's linear RGB with white at (1, 1, 1).
LibRaw (``multisr.storage.raw``) then maps them by the file's colour matrix (``camera_to_srgb``,
3x3, rows summing to 1) to linear sRGB, clips to [0, 1] and applies sRGB's transfer curve;
:func:`develop` does the same (measured against LibRaw's development of a DNG of flat colours:
within 0.26 levels of 255), and :func:`undevelop` inverts it where nothing was clipped.
Images are float32 ``(..., 3)``, RGB order.
"""
import numpy as np

__all__ = ["srgb_encode", "srgb_decode", "develop", "undevelop"]


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB's transfer curve (IEC 61966-2-1): linear light in [0, 1] -> encoded values, float32."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode`: encoded sRGB in [0, 1] -> linear light, float32."""
    encoded = np.clip(encoded, 0.0, 1.0)
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4).astype(np.float32)


def develop(camera_rgb: np.ndarray, camera_to_srgb) -> np.ndarray:
    """``(..., 3)`` linear white-balanced camera RGB -> sRGB in [0, 1]: the colour matrix, clipped, encoded."""
    linear = np.asarray(camera_rgb, np.float32) @ np.asarray(camera_to_srgb, np.float32).T
    return srgb_encode(linear)


def undevelop(srgb: np.ndarray, camera_to_srgb) -> np.ndarray:
    """Inverse of :func:`develop` (exact where it clipped nothing): sRGB -> linear camera RGB, float32."""
    inverse = np.linalg.inv(np.asarray(camera_to_srgb, np.float64)).astype(np.float32)
    return srgb_decode(srgb) @ inverse.T

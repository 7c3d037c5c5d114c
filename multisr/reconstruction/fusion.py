"""Fusing aligned frames into one image.

Both fusions work through the image in bands of rows, so that their temporary arrays stay
around ``BAND_SAMPLES`` values (over all threads) however large the frames are, and fuse the bands in threads
(numpy's sort and arithmetic release the GIL); the result depends on neither.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["masked_median", "masked_mean", "FUSIONS", "BAND_SAMPLES"]

BAND_SAMPLES = 1 << 23


def _by_bands(fuse, frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``fuse(frames_band, valid_band)`` over bands of rows, into one ``(H, W[, C])`` float32 array."""
    count, height = frames.shape[:2]
    workers = os.cpu_count() or 1
    rows = max(1, BAND_SAMPLES // (workers * count * int(np.prod(frames.shape[2:]))))
    out = np.empty(frames.shape[1:], dtype=np.float32)

    def one(top: int) -> None:
        out[top : top + rows] = fuse(frames[:, top : top + rows], valid[:, top : top + rows])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(one, range(0, height, rows)))
    return out


def masked_median(frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixel-wise median over the valid samples.

    Args:
        frames: ``(N, H, W[, C])`` float32, aligned on one grid.
        valid: ``(N, H, W)`` bool, False where a frame has no real sample.

    Returns:
        ``(H, W[, C])`` float32, as ``np.nanmedian`` gives it (the mean of the two middle samples
        for an even count). A pixel with no valid sample at all is NaN.
    """
    return _by_bands(_median_band, frames, valid)


def _median_band(frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    mask = valid if frames.ndim == 3 else valid[..., None]
    samples = np.where(mask, frames, np.float32(np.nan))
    samples.sort(axis=0)  # NaN sorts last, so the valid samples come first, in order
    count = np.broadcast_to(mask.sum(axis=0), samples.shape[1:])
    low = np.take_along_axis(samples, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(samples, (count // 2)[None], axis=0)[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
        median = (low + high) / 2
    median[count == 0] = np.nan
    return median.astype(np.float32, copy=False)


def masked_mean(frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixel-wise mean over the valid samples; shapes as :func:`masked_median`, NaN where none."""
    return _by_bands(_mean_band, frames, valid)


def _mean_band(frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    weights = (valid if frames.ndim == 3 else valid[..., None]).astype(np.float32)
    total = np.sum(np.where(weights > 0, frames, 0.0) * weights, axis=0)
    count = np.sum(weights, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).astype(np.float32)


FUSIONS = {"median": masked_median, "mean": masked_mean}

"""Fusing aligned frames into one image."""
import warnings

import numpy as np

__all__ = ["masked_median", "masked_mean", "FUSIONS"]


def masked_median(frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixel-wise median over the valid samples.

    Args:
        frames: ``(N, H, W[, C])`` float32, aligned on one grid.
        valid: ``(N, H, W)`` bool, False where a frame has no real sample.

    Returns:
        ``(H, W[, C])`` float32. A pixel with no valid sample at all is NaN.
    """
    mask = valid if frames.ndim == 3 else valid[..., None]
    samples = np.where(mask, frames, np.float32(np.nan))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
        return np.nanmedian(samples, axis=0).astype(np.float32)


def masked_mean(frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixel-wise mean over the valid samples; shapes as :func:`masked_median`, NaN where none."""
    weights = (valid if frames.ndim == 3 else valid[..., None]).astype(np.float32)
    total = np.sum(np.where(weights > 0, frames, 0.0) * weights, axis=0)
    count = np.sum(weights, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).astype(np.float32)


FUSIONS = {"median": masked_median, "mean": masked_mean}

"""Fusing aligned frames into one image."""
import warnings

import numpy as np

__all__ = ["masked_median"]


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

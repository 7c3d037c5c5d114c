"""Image quality metrics by the SRCNN paper's protocol (see docs/DESIGN.md, "Evaluation protocol").

Scores compare Y channels quantized to 8 bits, with ``shave`` pixels cropped from every side,
so the numbers agree with the SR literature's tables. Colour images are also scored on colour:
PSNR over the 8-bit RGB channels together, and the mean CIEDE2000 colour difference (scikit-image's,
from sRGB through CIELAB with the D65 white; about 1 is the smallest difference people see).
"""
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from .color import luma

__all__ = ["psnr", "ssim", "score_luma", "score_image"]


def _shave(image: np.ndarray, shave: int) -> np.ndarray:
    return image[shave : image.shape[0] - shave, shave : image.shape[1] - shave]


def _levels(y: np.ndarray) -> np.ndarray:
    """[0, 1] -> 8-bit levels 0..255 as ``float64``, rounded and clipped."""
    return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.float64)


def psnr(y: np.ndarray, y_true: np.ndarray, *, shave: int = 0) -> float:
    """PSNR in dB of two 0..255 ``(H, W)`` arrays; ``inf`` when they are equal."""
    mse = np.mean((_shave(y, shave) - _shave(y_true, shave)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def ssim(y: np.ndarray, y_true: np.ndarray, *, shave: int = 0) -> float:
    """SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) of 0..255 arrays."""
    return float(
        structural_similarity(
            _shave(y, shave),
            _shave(y_true, shave),
            data_range=255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def score_luma(y: np.ndarray, y_true: np.ndarray, *, shave: int) -> dict:
    """``{"psnr": dB, "ssim": ...}`` of Y ``(H, W)`` in [0, 1] against ``y_true``, both quantized."""
    if y.shape != y_true.shape:
        raise ValueError(f"y is {y.shape} but y_true is {y_true.shape}")
    a, b = _levels(y), _levels(y_true)
    return {"psnr": psnr(a, b, shave=shave), "ssim": ssim(a, b, shave=shave)}


def score_image(image: np.ndarray, truth: np.ndarray, *, shave: int) -> dict:
    """:func:`score_luma` of two ``(H, W[, 3])`` images in [0, 1] on their Y channels; for two colour
    images also ``"rgb_psnr"`` (dB, the 8-bit RGB channels together) and ``"ciede2000"`` (the mean
    CIEDE2000 difference of their 8-bit sRGB), both with ``shave``."""
    scores = score_luma(luma(image), luma(truth), shave=shave)
    if image.ndim == 3 and truth.ndim == 3:
        a, b = _shave(_levels(image), shave), _shave(_levels(truth), shave)
        scores["rgb_psnr"] = psnr(a, b)
        scores["ciede2000"] = float(np.mean(deltaE_ciede2000(rgb2lab(a / 255.0), rgb2lab(b / 255.0))))
    return scores

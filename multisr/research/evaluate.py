"""Single-image SR evaluation by the SRCNN paper's protocol (docs/DESIGN.md).

For each ground-truth image: crop to a multiple of the scale; take its Y channel rounded to 8
bits; make the low-resolution input by MATLAB-bicubic downscaling of that Y (in floating point,
as the paper's test code does); upscale it with MATLAB bicubic (the "bicubic" row) and run the
model on that; score PSNR and SSIM of the 8-bit-quantized outputs with ``scale`` pixels shaved
from each side. This reproduces the paper's bicubic numbers (Set5 x3: 30.39 dB mean).
"""
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging.color import luma
from ..imaging.metrics import score_luma
from ..imaging.resize import downscale, upscale
from ..params import SCALE
from ..sr.inference import super_resolve_luma
from ..storage.folders import list_images
from ..storage.io import read_image

__all__ = ["crop_to_multiple", "true_luma", "evaluation_pair", "evaluate_folder"]


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W[, C])`` at the bottom and right to a multiple of ``scale``."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def true_luma(truth: np.ndarray) -> np.ndarray:
    """The protocol's ground truth: the Y of ``(H, W[, 3])`` rounded to 8-bit levels, float32 in [0, 1]."""
    return (np.round(np.clip(luma(truth), 0, 1) * 255) / 255).astype(np.float32)


def evaluation_pair(truth: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_bicubic)``: the protocol's 8-bit ground-truth Y and its bicubic estimate.

    Both ``(H', W')`` float32 in [0, 1], ``H'`` and ``W'`` multiples of ``scale``; ``y_bicubic``
    is not clipped or quantized (the network's input).
    """
    y_true = true_luma(crop_to_multiple(truth, scale))
    return y_true, upscale(downscale(y_true, scale), scale)


def evaluate_folder(data_dir: Path, *, scale: int = SCALE, model=None) -> dict:
    """Score bicubic (and ``model``, when given) on every image in ``data_dir``.

    Returns:
        ``{"images": {name: {"bicubic": {"psnr", "ssim"}, "model": {...}}},
        "mean": {"bicubic": {...}, "model": {...}}}``; PSNR in dB.
    """
    files = list_images(Path(data_dir))
    rows = {}
    for path in files:
        truth, _ = read_image(path)
        minimum = scale * (2 * model.shrink + 1) if model is not None else 2 * scale + 1
        if min(truth.shape[:2]) < minimum:
            raise UserError(
                f"{path}: expected an image at least {minimum} pixels on each side for scale {scale}, "
                f"found {truth.shape[1]}x{truth.shape[0]}"
            )
        y_true, y_bicubic = evaluation_pair(truth, scale)
        row = {"bicubic": score_luma(y_bicubic, y_true, shave=scale)}
        if model is not None:
            row["model"] = score_luma(super_resolve_luma(y_bicubic, model), y_true, shave=scale)
        rows[path.stem] = row
    methods = next(iter(rows.values())).keys()
    mean = {
        m: {k: float(np.mean([r[m][k] for r in rows.values()])) for k in ("psnr", "ssim")} for m in methods
    }
    return {"images": rows, "mean": mean}

"""Image resizing with the interpolation kernel named.

"Bicubic" means three things in practice (see docs/DESIGN.md); this module names each one:

- ``"matlab"`` — MATLAB's ``imresize(..., 'bicubic')``: Keys kernel with a = -0.5, antialiased
  (kernel stretched by 1/scale) when downscaling, border pixels replicated. SR papers
  make their low-resolution inputs with it and report their numbers on it. Default.
- ``"opencv"`` — OpenCV's ``INTER_CUBIC``: a = -0.75, no antialiasing.

Both keep the pixel-centre convention of the geometry contract: an output pixel x maps to the
input position ``(x + 0.5) / scale - 0.5``, so for upscaling by s the input pixel centre x lands
at ``s * x + (s - 1) / 2`` on the output grid.

Images follow the data contract (``float32``, ``(H, W)`` or ``(H, W, C)``); values are not
clipped, as bicubic overshoots on edges. Quantize with :func:`multisr.storage.io.to_uint` if needed.
"""
from functools import lru_cache

import cv2
import numpy as np
from scipy import sparse

from ..errors import UserError

__all__ = ["KERNELS", "keys_cubic", "resize", "resize_matrix", "upscale", "downscale"]

KERNELS = ("matlab", "opencv")


def keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a``, evaluated at ``x``."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (a + 2) * ax3 - (a + 3) * ax2 + 1
    far = a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    return np.where(ax <= 1, near, np.where(ax < 2, far, 0.0))


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float) -> sparse.csr_matrix:
    """MATLAB's bicubic ``imresize`` along one axis as a sparse ``(out_len, in_len)`` matrix.

    ``scale`` is ``out_len / in_len`` as MATLAB takes it; below 1 the kernel is stretched by
    ``1 / scale`` (antialiasing). Taps beyond the border fall on the border pixel.
    """
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel to the output's sampling rate
        kernel = lambda x: scale * keys_cubic(scale * x)  # noqa: E731
        width /= scale
    else:
        kernel = keys_cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # MATLAB's 1-based input position
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    indices = np.clip(indices.astype(np.int64) - 1, 0, in_len - 1)  # replicate the border
    rows = np.repeat(np.arange(out_len), taps)
    return sparse.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(out_len, in_len))


def _matlab_resize_axis(image: np.ndarray, out_len: int, scale: float, axis: int) -> np.ndarray:
    moved = np.moveaxis(image, axis, 0)
    out = resize_matrix(moved.shape[0], out_len, scale) @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(out.reshape(out_len, *moved.shape[1:]), 0, axis)


def resize(
    image: np.ndarray, size: tuple[int, int], *, kernel: str = "matlab", like_uint8: bool = False
) -> np.ndarray:
    """Resize ``image`` to ``size = (height, width)`` with the named bicubic ``kernel``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float array in [0, 1].
        size: output ``(height, width)`` in pixels.
        kernel: ``"matlab"`` (default) or ``"opencv"``; see the module docstring.
        like_uint8: round to 8-bit levels after each of the two passes, as MATLAB does for
            ``uint8`` input (it then matches MATLAB exactly); without it the float result
            differs from MATLAB's uint8 output by at most a grey level or two.

    Returns:
        ``float32`` array ``(height, width[, C])``.
    """
    if kernel not in KERNELS:
        raise UserError(f"kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")
    height, width = size
    image = np.asarray(image, dtype=np.float32)
    if kernel == "opencv":
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    scales = (height / image.shape[0], width / image.shape[1])
    out = image.astype(np.float64)
    # MATLAB resizes the axis with the smaller scale first (rows first on a tie).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        out = _matlab_resize_axis(out, size[axis], scales[axis], axis)
        if like_uint8:
            out = np.round(np.clip(out, 0.0, 1.0) * 255.0) / 255.0
    return out.astype(np.float32)


def _matlab_upscale_phases(scale: int) -> list[np.ndarray]:
    """The 5-tap filters of MATLAB's bicubic upscale by an integer ``scale``, one per output phase.

    Output pixel ``scale * i + p`` maps to input position ``i + (p + 0.5) / scale - 0.5``, so
    it weighs inputs ``i - 2 .. i + 2`` with the same taps for every ``i``.
    """
    offsets = np.arange(-2, 3)
    phases = []
    for p in range(scale):
        weights = keys_cubic((p + 0.5) / scale - 0.5 - offsets)
        phases.append((weights / weights.sum()).astype(np.float32))
    return phases


def _matlab_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB's bicubic upscale by an integer ``scale`` as a polyphase filter (OpenCV, float32).

    Equal to :func:`resize` with ``kernel="matlab"`` up to float32 rounding, and many times
    faster: each output phase is one 1-D filter of the input, border replicated.
    """
    height, width = image.shape[:2]
    wide = np.empty((height, width * scale, *image.shape[2:]), dtype=np.float32)
    for p, taps in enumerate(_matlab_upscale_phases(scale)):
        wide[:, p::scale] = cv2.filter2D(image, cv2.CV_32F, taps[None, :], borderType=cv2.BORDER_REPLICATE)
    out = np.empty((height * scale, width * scale, *image.shape[2:]), dtype=np.float32)
    for p, taps in enumerate(_matlab_upscale_phases(scale)):
        out[p::scale] = cv2.filter2D(wide, cv2.CV_32F, taps[:, None], borderType=cv2.BORDER_REPLICATE)
    return out


def upscale(image: np.ndarray, scale: int, *, kernel: str = "matlab", like_uint8: bool = False) -> np.ndarray:
    """Upscale ``(H, W[, C])`` to ``(scale*H, scale*W[, C])`` by an integer ``scale``; options as
    :func:`resize` (the float MATLAB kernel runs as a fast polyphase filter, same values)."""
    if kernel == "matlab" and not like_uint8:
        return _matlab_upscale(np.asarray(image, dtype=np.float32), scale)
    return resize(image, (image.shape[0] * scale, image.shape[1] * scale), kernel=kernel, like_uint8=like_uint8)


def downscale(image: np.ndarray, scale: int, **options) -> np.ndarray:
    """Downscale ``(H, W[, C])`` to ``(ceil(H/scale), ceil(W/scale)[, C])``; options as :func:`resize`.

    Crop the input to a multiple of ``scale`` first to keep the pixel grids aligned.
    """
    height, width = image.shape[:2]
    return resize(image, (-(-height // scale), -(-width // scale)), **options)

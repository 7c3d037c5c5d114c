"""RGB <-> YCbCr conversion, ITU-R BT.601 as MATLAB's ``rgb2ycbcr``.

Images follow the data contract: ``float32`` in [0, 1], ``(H, W, 3)``, RGB order. Y lies in
[16/255, 235/255] and Cb, Cr in [16/255, 240/255], exactly as MATLAB returns for ``double`` input.
"""
import cv2
import numpy as np

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "luma", "grey_from_luma", "RGB_TO_Y", "Y_OFFSET", "Y_TO_RGB"]

_RGB_TO_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
# both as 3x4 affine maps for OpenCV's transform (one multi-threaded pass in float32; the
# error, about 1e-7, is far below an 8-bit level)
_TO_YCBCR = np.hstack([_RGB_TO_YCBCR, _OFFSET[:, None]])
_TO_RGB = np.hstack([_YCBCR_TO_RGB, -(_YCBCR_TO_RGB @ _OFFSET)[:, None]])
# Y alone, for code that changes only Y: Y = RGB_TO_Y . rgb + Y_OFFSET, and a change dY of Y
# (Cb, Cr fixed) changes RGB by dY * Y_TO_RGB
RGB_TO_Y = _RGB_TO_YCBCR[0]
Y_OFFSET = _OFFSET[0]
Y_TO_RGB = _YCBCR_TO_RGB[:, 0]


def _affine_colour(image: np.ndarray, matrix: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    image = np.ascontiguousarray(image, dtype=np.float32)
    if out is None:
        return cv2.transform(image.reshape(-1, 1, 3), matrix).reshape(image.shape)
    cv2.transform(image.reshape(-1, 1, 3), matrix, dst=out.reshape(-1, 1, 3))
    return out


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB in [0, 1] -> ``(..., 3)`` float32 YCbCr in [0, 1] (BT.601 studio swing)."""
    return _affine_colour(rgb, _TO_YCBCR)


def ycbcr_to_rgb(ycbcr: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; the result is float32, clipped to [0, 1], written into
    ``out`` when given (a contiguous float32 array of the same shape; it may be ``ycbcr``)."""
    rgb = _affine_colour(ycbcr, _TO_RGB, out)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def luma(image: np.ndarray) -> np.ndarray:
    """The Y channel of an image, ``(H, W)``.

    A grey image ``(H, W)`` is taken as RGB with three equal channels, so its Y is
    ``16/255 + 219/255 * grey``, the same number MATLAB gives for that RGB image.
    """
    if image.ndim == 2:
        return (_OFFSET[0] + _RGB_TO_YCBCR[0].sum() * image).astype(np.float32)
    return rgb_to_ycbcr(image)[..., 0]


def grey_from_luma(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`luma` for a grey image: ``(H, W)`` Y -> grey in [0, 1], clipped."""
    return np.clip((y - _OFFSET[0]) / _RGB_TO_YCBCR[0].sum(), 0.0, 1.0).astype(np.float32)

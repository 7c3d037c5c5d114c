"""Coordinates, similarity matrices and warping, by the geometry contract (DESIGN.md).

Pixel-centre coordinates: x to the right, y down, the centre of the top-left pixel at (0, 0).
Points are homogeneous column vectors ``(x, y, 1)``. A registration matrix ``A`` maps
reference-frame coordinates to frame coordinates: sampling the frame at ``A @ p`` gives the
aligned value at ``p``.

Angles are in degrees; a positive angle turns the +x axis towards +y, which on screen (y down)
is clockwise.
"""
import cv2
import numpy as np

__all__ = [
    "similarity_matrix",
    "similarity_parameters",
    "scale_matrix",
    "to_high_resolution",
    "to_low_resolution",
    "warp",
    "rms_displacement",
]


def similarity_matrix(*, scale: float = 1.0, angle: float = 0.0, shift=(0.0, 0.0), center=(0.0, 0.0)) -> np.ndarray:
    """3x3 matrix of ``p -> center + scale * R(angle) @ (p - center) + shift``.

    ``shift`` and ``center`` are ``(x, y)`` in pixels; ``angle`` in degrees (see module docstring).
    """
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    linear = scale * np.array([[c, -s], [s, c]])
    center = np.asarray(center, dtype=np.float64)
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = center - linear @ center + np.asarray(shift, dtype=np.float64)
    return matrix


def similarity_parameters(matrix: np.ndarray) -> dict:
    """``{"scale", "angle" (degrees), "tx", "ty"}`` of a similarity matrix about the origin."""
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    angle = float(np.rad2deg(np.arctan2(matrix[1, 0], matrix[0, 0])))
    return {"scale": scale, "angle": angle, "tx": float(matrix[0, 2]), "ty": float(matrix[1, 2])}


def scale_matrix(scale: int) -> np.ndarray:
    """``C``: low-resolution pixel centre x -> ``scale * x + (scale - 1) / 2`` on the HR grid."""
    offset = (scale - 1) / 2
    return np.array([[scale, 0.0, offset], [0.0, scale, offset], [0.0, 0.0, 1.0]])


def to_high_resolution(matrix: np.ndarray, scale: int) -> np.ndarray:
    """A low-resolution registration matrix (or a stack ``(N, 3, 3)``) on the HR grid."""
    c = scale_matrix(scale)
    return c @ matrix @ np.linalg.inv(c)


def to_low_resolution(matrix: np.ndarray, scale: int) -> np.ndarray:
    """Inverse of :func:`to_high_resolution`: an HR-grid matrix (or stack) in LR pixels."""
    c = scale_matrix(scale)
    return np.linalg.inv(c) @ matrix @ c


def warp(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``matrix @ p`` for every pixel ``p`` of an output of ``shape``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float32 source.
        matrix: 3x3 map from output coordinates to ``image`` coordinates.
        shape: output ``(height, width)``.

    Returns:
        ``(warped, valid)``: ``warped`` is ``(height, width[, C])`` float32, interpolated with
        OpenCV's bicubic (``INTER_CUBIC``, a = -0.75) and the border replicated; ``valid`` is a
        ``(height, width)`` bool mask, False where ``matrix @ p`` lies outside the source's pixel
        centres (those values are extrapolated and must not be trusted).
    """
    height, width = shape
    xs = np.arange(width, dtype=np.float64)[None, :]
    ys = np.arange(height, dtype=np.float64)[:, None]
    map_x = matrix[0, 0] * xs + (matrix[0, 1] * ys + matrix[0, 2])
    map_y = matrix[1, 0] * xs + (matrix[1, 1] * ys + matrix[1, 2])
    eps = 1e-6
    valid = (map_x >= -eps) & (map_x <= image.shape[1] - 1 + eps) & (map_y >= -eps) & (map_y <= image.shape[0] - 1 + eps)
    warped = cv2.warpAffine(
        np.ascontiguousarray(image, dtype=np.float32),
        np.asarray(matrix[:2], dtype=np.float64),
        (width, height),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return warped, valid


def rms_displacement(estimate: np.ndarray, truth: np.ndarray, shape: tuple[int, int]) -> float:
    """RMS over a ``shape = (height, width)`` frame's pixels of ``|estimate @ p - truth @ p|``, in pixels."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width]
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    difference = (estimate - truth)[:2] @ points
    return float(np.sqrt(np.mean(np.sum(difference**2, axis=0))))

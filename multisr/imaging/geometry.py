"""Coordinates, motion matrices and warping, by the geometry contract (docs/DESIGN.md).

Pixel-centre coordinates: x to the right, y down, the centre of the top-left pixel at (0, 0).
Points are homogeneous column vectors ``(x, y, 1)``. A registration matrix ``A`` is a 3x3
homography (a similarity or an affine map is one whose last row is ``(0, 0, 1)``) that maps
reference-frame coordinates to frame coordinates: sampling the frame at ``A @ p`` (divided by
its third component) gives the aligned value at ``p``.

Angles are in degrees; a positive angle turns the +x axis towards +y, which on screen (y down)
is clockwise.
"""
import cv2
import numpy as np

__all__ = [
    "similarity_matrix",
    "similarity_parameters",
    "apply",
    "scale_matrix",
    "to_high_resolution",
    "to_low_resolution",
    "warp",
    "warp_rows",
    "rms_displacement",
    "in_box",
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
    """``{"scale", "angle" (degrees), "tx", "ty"}`` of a similarity matrix about the origin.

    For an affine map or a homography (normalised so that ``matrix[2, 2] = 1``) these describe
    the similarity nearest to its linear part: ``scale`` is the square root of its determinant's
    magnitude, ``angle`` its rotation; a summary for tables and plots, not the motion itself.
    """
    matrix = np.asarray(matrix, dtype=np.float64) / matrix[2, 2]
    linear = matrix[:2, :2]
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    angle = float(np.rad2deg(np.arctan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1])))
    return {"scale": scale, "angle": angle, "tx": float(matrix[0, 2]), "ty": float(matrix[1, 2])}


def apply(matrix: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``matrix @ (x, y, 1)`` with the perspective division, for arrays ``x`` and ``y`` of one shape."""
    w = matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2]
    return ((matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) / w,
            (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) / w)


def scale_matrix(scale: int) -> np.ndarray:
    """``C``: low-resolution pixel centre x -> ``scale * x + (scale - 1) / 2`` on the HR grid."""
    offset = (scale - 1) / 2
    return np.array([[scale, 0.0, offset], [0.0, scale, offset], [0.0, 0.0, 1.0]])


def _normalised(matrix: np.ndarray) -> np.ndarray:
    """A matrix (or stack) scaled so that its ``[2, 2]`` entry is 1, as the geometry contract writes them."""
    return matrix / matrix[..., 2:3, 2:3]


def to_high_resolution(matrix: np.ndarray, scale: int) -> np.ndarray:
    """A low-resolution registration matrix (or a stack ``(N, 3, 3)``) on the HR grid."""
    c = scale_matrix(scale)
    return _normalised(c @ matrix @ np.linalg.inv(c))


def to_low_resolution(matrix: np.ndarray, scale: int) -> np.ndarray:
    """Inverse of :func:`to_high_resolution`: an HR-grid matrix (or stack) in LR pixels."""
    c = scale_matrix(scale)
    return _normalised(np.linalg.inv(c) @ matrix @ c)


def warp(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``matrix @ p`` for every pixel ``p`` of an output of ``shape``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float32 source.
        matrix: 3x3 map (a homography) from output coordinates to ``image`` coordinates.
        shape: output ``(height, width)``.

    Returns:
        ``(warped, valid)``: ``warped`` is ``(height, width[, C])`` float32, interpolated with
        OpenCV's bicubic (``INTER_CUBIC``, a = -0.75) and the border replicated; ``valid`` is a
        ``(height, width)`` bool mask, False where ``matrix @ p`` lies outside the source's pixel
        centres (those values are extrapolated and must not be trusted).
    """
    height, width = shape
    matrix = np.asarray(matrix, dtype=np.float64)
    if not np.isfinite(matrix).all():  # OpenCV's warps can loop forever on NaN coordinates
        raise ValueError(f"matrix: expected finite entries, got {matrix.tolist()}")
    valid = _lands_inside(matrix, image.shape[:2], (0, height), width)
    source = np.ascontiguousarray(image, dtype=np.float32)
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    if np.allclose(matrix[2], (0.0, 0.0, 1.0), rtol=0, atol=1e-15):  # affine: the cheaper warp
        warped = cv2.warpAffine(source, matrix[:2], (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    else:
        warped = cv2.warpPerspective(source, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return warped, valid


def _lands_inside(matrix: np.ndarray, source_shape: tuple[int, int], rows: tuple[int, int], width: int) -> np.ndarray:
    """``(bottom - top, width)`` bool: True where ``matrix @ p`` lies within the pixel centres of a
    source of ``source_shape``, for the output pixels ``p`` of ``rows = (top, bottom)``."""
    top, bottom = rows
    map_x, map_y = apply(matrix, np.arange(width, dtype=np.float64)[None, :],
                         np.arange(top, bottom, dtype=np.float64)[:, None])
    eps = 1e-6
    return (map_x >= -eps) & (map_x <= source_shape[1] - 1 + eps) & (map_y >= -eps) & (map_y <= source_shape[0] - 1 + eps)


def warp_rows(read_rows, source_shape: tuple[int, int], matrix: np.ndarray, width: int, rows: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows = (top, bottom)`` of :func:`warp`'s output of width ``width``, reading only the
    source rows they need: ``read_rows(first, stop)`` returns rows ``first:stop`` of a source of
    ``source_shape``. The same ``(warped, valid)`` as those rows of the whole warp (up to OpenCV's
    1/32-pixel rounding of a coordinate that lands within about 1e-12 of a step).

    A homography maps the band's rectangle to a quadrilateral (the band lies on one side of the
    horizon in any registration), so the source rows lie between its corners' extremes; 2 rows
    more on each side carry the bicubic taps, and at the source's own edges the border is
    replicated as in the whole warp.
    """
    top, bottom = rows
    matrix = np.asarray(matrix, dtype=np.float64)
    _, corner_y = apply(matrix, np.array([0.0, width - 1, 0, width - 1]), np.array([top, top, bottom - 1, bottom - 1.0]))
    height = source_shape[0]
    first = int(np.clip(np.floor(corner_y.min()) - 2, 0, height - 1))
    stop = int(np.clip(np.ceil(corner_y.max()) + 3, first + 1, height))
    # the band's own coordinates: output row r is row top + r, source row s is row first + s
    band = np.array([[1.0, 0, 0], [0, 1, -first], [0, 0, 1]]) @ matrix @ np.array([[1.0, 0, 0], [0, 1, top], [0, 0, 1]])
    warped, _ = warp(read_rows(first, stop), band, (bottom - top, width))
    return warped, _lands_inside(matrix, source_shape, rows, width)


def rms_displacement(estimate: np.ndarray, truth: np.ndarray, shape: tuple[int, int]) -> float:
    """RMS over a ``shape = (height, width)`` frame's pixels of ``|estimate @ p - truth @ p|``, in pixels
    (homographies applied with the perspective division)."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    ex, ey = apply(np.asarray(estimate, dtype=np.float64), xs, ys)
    tx, ty = apply(np.asarray(truth, dtype=np.float64), xs, ys)
    return float(np.sqrt(np.mean((ex - tx) ** 2 + (ey - ty) ** 2)))


def in_box(image: np.ndarray, box: tuple[int, int, int, int], scale: int, origin=(0, 0)) -> np.ndarray:
    """The pixels of ``image`` (``(H, W, ...)``, at ``scale`` x: a result, a truth) that an LR box
    ``(x, y, w, h)`` covers, ``(scale*h, scale*w, ...)``: a view. ``origin``: the LR pixel the
    image's top-left pixel is of (a window's, or a box's result)."""
    x, y, w, h = box
    left, top = scale * (x - origin[0]), scale * (y - origin[1])
    return image[top : top + scale * h, left : left + scale * w]

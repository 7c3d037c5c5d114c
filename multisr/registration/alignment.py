"""Robust direct image alignment: Lucas-Kanade by iteratively reweighted least squares.

:func:`align` finds the motion ``matrix`` (3x3, the geometry contract's: a template pixel ``p``
-> the image's pixel ``matrix @ p``) and a brightness change ``gain, offset`` that minimise

    sum over template pixels p of  rho( image(matrix @ p) - (gain * template(p) + offset) )

with Tukey's biweight ``rho`` (Baker & Matthews 2004, "Lucas-Kanade 20 years on", section on
robust error functions; Odobez & Bouthemy 1995 for robust multi-resolution motion estimation).
Tukey's weight is zero beyond 4.685 robust standard deviations of the residual (the median
absolute deviation, times 1.4826): a moving object, a person, a passing car cost nothing once the
fit is near the background's motion, where a least-squares fit (ECC included) would be pulled
towards them. The scale is re-estimated at every step, so no noise level is assumed.

Gauss-Newton steps with Levenberg-Marquardt damping, forward-additive on the motion parameters
(the last row of a homography included), in coordinates normalised to about [-1, 1] in both
images. Coarse to fine: both images are smoothed by Gaussians of ``smoothings`` pixels in turn
(the wider ones reach a few pixels of misalignment, the last one is accurate); at most
``max_points`` template pixels take part, on a regular stride (sparser in the smoothed passes),
so the steps cost the same for a frame of any size; only the smoothing covers every pixel.

``model``: ``"shift"`` (2 parameters: the start's rotation and zoom kept), ``"similarity"``
(rotation, zoom, shift: 4), ``"affine"`` (6) or ``"homography"`` (8).
"""
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["MODELS", "MIN_SIDE_FOR_MODEL", "SMOOTHINGS", "Alignment", "align", "gradients", "plan_for_size"]

MODELS = ("shift", "similarity", "affine", "homography")

# a template's shorter side (px) from which it supports any model; a smaller one (a plate's box, a crop
# of a few tens of pixels) is fitted as a similarity at most: a homography's fit of a 36x18 plate drifts
# away in one frame of three
MIN_SIDE_FOR_MODEL = 24
SMOOTHINGS = (4.0, 2.0, 1.0)  # px: align's coarse-to-fine passes, by default
TUKEY = 4.685  # Tukey's constant: 95 % efficiency for Gaussian residuals
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Alignment:
    """The result of :func:`align`.

    Attributes:
        matrix: 3x3, template pixels -> image pixels, normalised so that ``matrix[2, 2] = 1``.
        gain, offset: ``image(matrix @ p) ~ gain * template(p) + offset``.
        scale: the robust standard deviation of the final residual (the images' units).
        overlap: the fraction of the template's points that land inside the image.
        correlation: the correlation coefficient of the aligned image and the template over all
            points that land inside the image (1: identical up to brightness and contrast).
    """

    matrix: np.ndarray
    gain: float
    offset: float
    scale: float
    overlap: float
    correlation: float


def plan_for_size(shape: tuple[int, int], smoothings: tuple[float, ...], model: str) -> tuple[tuple[float, ...], str]:
    """The coarse-to-fine passes and the motion model a template of ``shape = (h, w)`` supports:
    the ``smoothings`` whose Gaussian its shorter side holds eight times (at least the last,
    the finest: a wider one smooths a small template's content away), and ``model``, or a
    similarity where it is richer and the shorter side is under :data:`MIN_SIDE_FOR_MODEL`."""
    side = min(shape)
    kept = tuple(sigma for sigma in smoothings if 8 * sigma <= side) or tuple(smoothings[-1:])
    if side < MIN_SIDE_FOR_MODEL and MODELS.index(model) > MODELS.index("similarity"):
        model = "similarity"
    return kept, model


def _normaliser(shape: tuple[int, int]) -> np.ndarray:
    """3x3 map of pixel coordinates of a ``(h, w)`` image to coordinates centred on it with its
    longer half-side 1."""
    height, width = shape
    half = max(height, width) / 2.0
    return np.array([[1 / half, 0, -(width - 1) / 2 / half], [0, 1 / half, -(height - 1) / 2 / half], [0, 0, 1.0]])


def _to_parameters(matrix: np.ndarray, model: str) -> np.ndarray:
    """The motion's parameters (a shift's: the similarity's, of which only the last two change)."""
    matrix = matrix / matrix[2, 2]
    if model in ("shift", "similarity"):  # the least-squares similarity of the linear part
        a = (matrix[0, 0] + matrix[1, 1]) / 2
        b = (matrix[1, 0] - matrix[0, 1]) / 2
        return np.array([a, b, matrix[0, 2], matrix[1, 2]])
    if model == "affine":
        return matrix[:2].ravel().copy()
    return matrix.ravel()[:8].copy()


def _to_matrix(parameters: np.ndarray, model: str) -> np.ndarray:
    if model in ("shift", "similarity"):
        a, b, tx, ty = parameters
        return np.array([[a, -b, tx], [b, a, ty], [0, 0, 1.0]])
    if model == "affine":
        return np.vstack([parameters.reshape(2, 3), [0, 0, 1.0]])
    return np.append(parameters, 1.0).reshape(3, 3)


def _mapped(parameters: np.ndarray, model: str, x: np.ndarray, y: np.ndarray):
    """The points ``(x, y)`` mapped by the motion: ``(u, v)`` and the homography's denominator."""
    matrix = _to_matrix(parameters, model)
    denominator = matrix[2, 0] * x + matrix[2, 1] * y + 1.0
    u = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) / denominator
    v = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) / denominator
    return u, v, denominator


def _jacobian(model: str, x, y, u, v, denominator, gx, gy, values) -> np.ndarray:
    """``(P, n_parameters + 2)``: the residual's derivatives by the motion's parameters (the image's
    gradient ``gx, gy`` at the mapped points times the motion's derivatives), then by the gain
    and the offset; column-major, one contiguous column each."""
    columns = {"shift": 2, "similarity": 4, "affine": 6, "homography": 8}[model]
    jacobian = np.empty((x.size, columns + 2), order="F")
    if model == "shift":  # du = (1, 0), dv = (0, 1)
        jacobian[:, 0], jacobian[:, 1] = gx, gy
    elif model == "similarity":  # du = (x, -y, 1, 0), dv = (y, x, 0, 1)
        jacobian[:, 0] = gx * x + gy * y
        jacobian[:, 1] = gy * x - gx * y
        jacobian[:, 2], jacobian[:, 3] = gx, gy
    else:
        a, b = (gx, gy) if model == "affine" else (gx / denominator, gy / denominator)
        jacobian[:, 0], jacobian[:, 1], jacobian[:, 2] = a * x, a * y, a
        jacobian[:, 3], jacobian[:, 4], jacobian[:, 5] = b * x, b * y, b
        if model == "homography":  # the last row's: -(gx u + gy v) x / denominator, likewise y
            c = -(a * u + b * v)
            jacobian[:, 6], jacobian[:, 7] = c * x, c * y
    jacobian[:, -2] = -values
    jacobian[:, -1] = -1.0
    return jacobian


def _maps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV remap maps of the pixel coordinates ``x, y`` (1-D), folded into rows of 1024 (a
    map is an image: under 32767 a side) and padded with points far outside."""
    rows = max(1, -(-x.size // 1024))
    map_x = np.full(rows * 1024, -1e6, np.float32)
    map_y = np.full(rows * 1024, -1e6, np.float32)
    map_x[: x.size], map_y[: y.size] = x, y
    return map_x.reshape(rows, 1024), map_y.reshape(rows, 1024)


def _sample(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], count: int, interpolation: int) -> np.ndarray:
    """``image`` (float32) at the first ``count`` points of ``maps`` (:func:`_maps`); NaN outside."""
    values = cv2.remap(image, *maps, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    return values.ravel()[:count].astype(np.float64)


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(d/dx, d/dy)`` of a float32 image per unit of :func:`align`'s normalised coordinates (3x3
    Sobel), as :func:`align` samples them."""
    per_unit = 1 / _normaliser(image.shape)[0, 0] / 8  # the image's pixels per unit; the Sobel's 8
    return (cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) * per_unit, cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) * per_unit)


def _points(shape: tuple[int, int], border: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Template pixel coordinates ``(x, y)`` (1-D int) that take part: inside ``border``, on a
    regular ``stride``."""
    height, width = shape
    ys, xs = np.mgrid[border : height - border : stride, border : width - border : stride]
    return xs.ravel(), ys.ravel()


def _corners(parameters: np.ndarray, model: str, corners: np.ndarray) -> np.ndarray:
    """``(2, 4)``: the normalised corners ``(3, 4)`` mapped by the motion."""
    mapped = _to_matrix(parameters, model) @ corners
    return mapped[:2] / mapped[2]


def _normalise(normaliser: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``normaliser`` (scale and shift only) applied to pixel coordinates."""
    return normaliser[0, 0] * x + normaliser[0, 2], normaliser[1, 1] * y + normaliser[1, 2]


def align(template: np.ndarray, image: np.ndarray, matrix: np.ndarray, *, model: str = "homography",
          smoothings: tuple[float, ...] = SMOOTHINGS, border: int = 4,
          max_points: int = 60_000, iterations: int = 30, tolerance: float = 3e-3,
          image_gradients: tuple[np.ndarray, np.ndarray] | None = None,
          mask: np.ndarray | None = None) -> Alignment | None:
    """Align ``image`` to ``template`` robustly from the start ``matrix`` (see the module docstring).

    Args:
        template: ``(h, w)`` float Y, whose pixels take part.
        image: ``(H, W)`` float Y, any size (another frame, or a high-resolution image).
        matrix: 3x3 start, template pixels -> image pixels.
        model: one of :data:`MODELS`; the start is projected onto it (the similarity nearest to
            its linear part, which a shift keeps; an affine map drops the last row).
        smoothings: Gaussian sigmas of the coarse-to-fine passes in template pixels (on
            ``image``, times the motion's zoom: the same blur of the scene); ``0`` for none.
        border: template pixels this close to an edge are left out.
        max_points: at most about this many template pixels take part.
        iterations: at most this many steps per pass; a pass ends when a step moves no corner
            of the template by more than ``tolerance`` pixels.
        image_gradients: :func:`gradients` of ``image`` for the passes without smoothing, when
            the caller aligns many templates to one image (computed here when not given).
        mask: ``(h, w)`` bool, the template pixels that may take part (all when ``None``): the
            rest only smooth the ones that do.

    Returns:
        An :class:`Alignment`, or ``None`` when fewer than 16 points (or fewer than the model's
        parameters, times 4) land inside the image.
    """
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    template = np.asarray(template, dtype=np.float32)
    image = np.asarray(image, dtype=np.float32)
    to_template, to_image = _normaliser(template.shape), _normaliser(image.shape)
    height, width = template.shape
    finest = max(1, int(np.ceil(np.sqrt((height - 2 * border) * (width - 2 * border) / max_points))))
    parameters = _to_parameters(to_image @ matrix @ np.linalg.inv(to_template), model)
    free = slice(2, 4) if model == "shift" else slice(None)  # the parameters the steps change
    corners = to_template @ np.array([[0.0, width - 1, 0, width - 1], [0, 0, height - 1, height - 1], [1, 1, 1, 1]])
    pixel = 1 / to_image[0, 0]  # the image's pixels per normalised unit
    gain, offset = 1.0, 0.0
    for sigma in smoothings:
        # a pass smoothed by sigma has no detail finer than sigma: a point every sigma pixels will
        # do, as long as a thousand or so remain (small frames)
        stride = max(finest, min(int(sigma), int(np.sqrt((height - 2 * border) * (width - 2 * border) / 1000))))
        px, py = _points(template.shape, border, stride)
        if mask is not None:
            keep = mask[py, px]
            px, py = px[keep], py[keep]
        x, y = _normalise(to_template, px.astype(np.float64), py.astype(np.float64))
        smooth_template = cv2.GaussianBlur(template, (0, 0), sigma) if sigma > 0 else template
        # the same blur in the scene on both: the image's pixels per template pixel from the motion
        current = np.linalg.inv(to_image) @ _to_matrix(parameters, model) @ to_template
        zoom = np.sqrt(abs(np.linalg.det(current[:2, :2] / current[2, 2])))
        smooth_image = cv2.GaussianBlur(image, (0, 0), sigma * zoom) if sigma > 0 else image
        gradient_x, gradient_y = image_gradients if image_gradients is not None and sigma == 0 else gradients(smooth_image)
        values = smooth_template[py, px].astype(np.float64)
        # the coarse passes only need to land the next one in its basin
        enough = tolerance if sigma == smoothings[-1] else max(tolerance, 0.03)
        for _ in range(iterations):
            u, v, denominator = _mapped(parameters, model, x, y)
            maps = _maps((u - to_image[0, 2]) * pixel, (v - to_image[1, 2]) * pixel)
            warped = _sample(smooth_image, maps, x.size, cv2.INTER_CUBIC)
            valid = np.isfinite(warped)
            if valid.sum() < max(16, 4 * (parameters[free].size + 2)):
                return None
            inside = slice(None) if valid.all() else valid  # a view, not a copy, in the usual case
            residual = warped[inside] - (gain * values[inside] + offset)
            scale = max(MAD_TO_SIGMA * float(np.median(np.abs(residual - np.median(residual)))), 1e-6)
            weights = np.clip(1 - (residual / (TUKEY * scale)) ** 2, 0, None) ** 2
            gx = _sample(gradient_x, maps, x.size, cv2.INTER_LINEAR)[inside]
            gy = _sample(gradient_y, maps, x.size, cv2.INTER_LINEAR)[inside]
            jacobian = _jacobian(model, x[inside], y[inside], u[inside], v[inside], denominator[inside], gx, gy,
                                 values[inside])
            weighted = jacobian * weights[:, None]
            hessian = weighted.T @ jacobian
            hessian[np.diag_indices_from(hessian)] *= 1 + 1e-4  # Levenberg-Marquardt damping
            try:
                step = -np.linalg.solve(hessian, weighted.T @ residual)
            except np.linalg.LinAlgError:
                return None
            before = _corners(parameters, model, corners)
            parameters[free] += step[:-2]
            gain, offset = gain + step[-2], offset + step[-1]
            if np.abs(_corners(parameters, model, corners) - before).max() * pixel < enough:
                break
    aligned = np.linalg.inv(to_image) @ _to_matrix(parameters, model) @ to_template
    seen, expected = warped[valid], values[valid]
    correlation = float(np.corrcoef(seen, expected)[0, 1]) if seen.std() > 0 and expected.std() > 0 else 0.0
    return Alignment(aligned / aligned[2, 2], float(gain), float(offset), scale, float(valid.mean()), correlation)

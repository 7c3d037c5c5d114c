"""Frame registration: a coarse Fourier-Mellin estimate, then an optional sub-pixel
refinement by ECC.

Two Fourier-Mellin implementations (``coarse``):

- ``"fourier-mellin"`` (default): :class:`multisr.fourier_mellin.FourierMellin`, which computes
  the reference's spectra once per burst and releases the GIL (frames run in threads).
- ``"imreg-dft"``: the imreg-dft package the original experiment used (this is the only module
  that imports it). It estimates ``scale``, ``angle`` and ``tvec`` mapping the frame onto the
  reference about the image centre; its angle turns the other way from the geometry contract's
  and ``tvec`` is ``(y, x)``. :func:`_imreg_dft` converts that, once, into the contract's matrix
  ``A``: reference coordinates -> frame coordinates. It recomputes the reference's spectra for
  every frame and holds the GIL: about 1 s per 640x480 frame here, against 14 ms with ours.

Fourier-Mellin alone is accurate to a tenth or a few tenths of a low-resolution pixel (imreg-dft's
0.5 px on small frames blurred the presenters' fusion below plain bicubic). ``refine="ecc"``
starts OpenCV's enhanced-correlation-coefficient
maximisation (Evangelidis & Psarakis 2008) from it, with a rigid (rotation + translation)
model, which brings the error to a few hundredths of a pixel.
"""
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .color import luma
from .fourier_mellin import FourierMellin
from .geometry import similarity_matrix, similarity_parameters

with warnings.catch_warnings():  # imreg-dft 2.0 imports the deprecated scipy.ndimage.interpolation
    warnings.simplefilter("ignore", DeprecationWarning)
    import imreg_dft

__all__ = ["Registration", "COARSE_METHODS", "REFINEMENTS", "register_pair", "refine_ecc", "sharpness",
           "register_burst"]

COARSE_METHODS = ("fourier-mellin", "imreg-dft")
REFINEMENTS = ("ecc", "none")


@dataclass
class Registration:
    """One frame's registration against the reference.

    Attributes:
        matrix: 3x3, reference LR pixel coordinates -> this frame's (geometry contract).
        success: the coarse step's score (phase-correlation peak strength, higher better).
        correlation: ECC's correlation coefficient after refinement (1 = identical up to
            brightness and contrast), or ``None`` without refinement.
        sharpness: mean squared gradient of the frame's Y, relative to the burst's median.
        scale, angle, tx, ty: ``matrix`` as a similarity about the origin (angle in degrees).
        excluded: why the frame is left out of the fusion, or ``None`` when it is used.
    """

    matrix: np.ndarray
    success: float
    correlation: float | None
    scale: float
    angle: float
    tx: float
    ty: float
    sharpness: float = 1.0
    excluded: str | None = None

    def to_json(self) -> dict:
        """JSON-able dict (the matrix as nested lists)."""
        data = asdict(self)
        data["matrix"] = self.matrix.tolist()
        return data


def refine_ecc(reference_y: np.ndarray, frame_y: np.ndarray, matrix: np.ndarray, *,
               border: int = 4) -> tuple[np.ndarray, float] | None:
    """Refine a registration matrix of ``frame_y`` against ``reference_y`` (``(H, W)`` Y) by ECC.

    The rigid model (rotation + translation; a frame that really zoomed ends with a low
    correlation) starts from ``matrix``'s rotation and its displacement of the image centre,
    and runs twice: on Gaussian-smoothed images (5x5) to reach the right basin, then on the
    images as they are, for precision. ``border`` pixels at the reference's edges are left out.
    Returns the refined 3x3 matrix and ECC's final correlation coefficient, or ``None`` when
    ECC does not converge.
    """
    height, width = reference_y.shape
    angle = np.arctan2(matrix[1, 0], matrix[0, 0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    center = np.array([(width - 1) / 2, (height - 1) / 2])
    start = np.zeros((2, 3), dtype=np.float32)
    start[:, :2] = rotation
    start[:, 2] = matrix[:2, :2] @ center + matrix[:2, 2] - rotation @ center
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[border : height - border, border : width - border] = 1
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    warp_matrix = start
    template, image = reference_y.astype(np.float32), frame_y.astype(np.float32)
    try:  # coarse to fine: smoothed images first, to reach the right basin, then the sharp ones
        for smoothing in (5, 1):
            correlation, warp_matrix = cv2.findTransformECC(template, image, warp_matrix, cv2.MOTION_EUCLIDEAN,
                                                            criteria, mask, smoothing)
    except cv2.error:
        return None
    refined = np.eye(3)
    refined[:2] = warp_matrix
    return refined, float(correlation)


def _imreg_dft(ref_y: np.ndarray, frame_y: np.ndarray, iterations: int) -> tuple[np.ndarray, float]:
    """imreg-dft's similarity as ``(A, success)``; raises ``ValueError`` when it finds no plausible match."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = imreg_dft.similarity(ref_y.astype(np.float64), frame_y.astype(np.float64), numiter=iterations)
    height, width = ref_y.shape
    # imreg-dft: frame point q -> reference point c + s R(-angle) (q - c) + (tx, ty).
    frame_to_reference = similarity_matrix(
        scale=float(result["scale"]),
        angle=-float(result["angle"]),
        shift=(float(result["tvec"][1]), float(result["tvec"][0])),
        center=((width - 1) / 2, (height - 1) / 2),
    )
    return np.linalg.inv(frame_to_reference), float(result["success"])


def _register_y(ref_y: np.ndarray, frame_y: np.ndarray, coarse, refine: str) -> Registration:
    """Register Y ``frame_y`` against ``ref_y``; ``coarse(frame_y)`` gives ``(A, success)``."""
    try:
        matrix, success = coarse(frame_y)
    except ValueError as error:  # imreg-dft refuses matches it finds absurd (e.g. a huge scale change)
        return Registration(np.eye(3), 0.0, None, **similarity_parameters(np.eye(3)),
                            excluded=f"Fourier-Mellin found no plausible match ({error})")
    excluded, correlation = None, None
    if refine == "ecc":
        refined = refine_ecc(ref_y, frame_y, matrix)
        if refined is None:
            excluded = "ECC refinement did not converge"
        else:
            matrix, correlation = refined
    return Registration(matrix=matrix, success=success, correlation=correlation, excluded=excluded,
                        **similarity_parameters(matrix))


def _coarse_method(ref_y: np.ndarray, coarse: str, iterations: int):
    """The coarse step against ``ref_y`` as a function ``frame_y -> (A, success)``."""
    if coarse not in COARSE_METHODS:
        raise ValueError(f"coarse: expected one of {', '.join(COARSE_METHODS)}, got {coarse!r}")
    if coarse == "imreg-dft":
        return lambda frame_y: _imreg_dft(ref_y, frame_y, iterations)
    return FourierMellin(ref_y).register


def register_pair(reference: np.ndarray, frame: np.ndarray, *, coarse: str = "fourier-mellin", iterations: int = 3,
                  refine: str = "ecc") -> Registration:
    """Register ``frame`` against ``reference`` (both ``(H, W[, 3])``, same shape) on their Y.

    ``coarse``: one of :data:`COARSE_METHODS`; ``iterations`` applies to imreg-dft only.
    ``refine``: ``"ecc"`` (then ECC) or ``"none"`` (the coarse estimate alone).
    """
    ref_y, frame_y = luma(reference).astype(np.float32), luma(frame).astype(np.float32)
    return _register_y(ref_y, frame_y, _coarse_method(ref_y, coarse, iterations), refine)


def sharpness(y: np.ndarray) -> float:
    """Mean squared Sobel gradient of a ``(H, W)`` Y image: lower for a blurred frame of the same scene."""
    y = np.asarray(y, dtype=np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1)
    return float(np.mean(gx * gx + gy * gy))


def _reason_to_leave_out(reg: Registration, shape: tuple[int, int], median_success: float, *, min_success: float,
                         min_correlation: float, min_sharpness: float, max_scale_change: float,
                         max_shift_fraction: float) -> str | None:
    if reg.excluded:
        return reg.excluded
    if reg.success < min_success * median_success:
        return f"registration success {reg.success:.2f} below {min_success} of the burst's median {median_success:.2f}"
    if reg.correlation is not None and reg.correlation < min_correlation:
        return f"ECC correlation {reg.correlation:.2f} below {min_correlation}: another scene or a changed one"
    if reg.sharpness < min_sharpness:
        return f"blurred: sharpness {reg.sharpness:.2f} of the burst's median, below {min_sharpness}"
    if not (1 / (1 + max_scale_change) <= reg.scale <= 1 + max_scale_change):
        return f"implausible scale {reg.scale:.3f}"
    height, width = shape
    if abs(reg.tx) > max_shift_fraction * width or abs(reg.ty) > max_shift_fraction * height:
        return f"implausible shift ({reg.tx:.1f}, {reg.ty:.1f}) px"
    return None


def register_burst(
    frames: np.ndarray,
    *,
    reference: int = 0,
    coarse: str = "fourier-mellin",
    iterations: int = 3,
    refine: str = "ecc",
    min_success: float = 0.5,
    min_correlation: float = 0.7,
    min_sharpness: float = 0.5,
    max_scale_change: float = 0.2,
    max_shift_fraction: float = 0.5,
    workers: int = 1,
    progress=None,
) -> list[Registration]:
    """Register every frame of ``(N, H, W[, 3])`` against ``frames[reference]`` (see :func:`register_pair`).

    A frame is left out (``excluded`` says why) when ECC does not converge; when its success
    score is below ``min_success`` times the burst's median; when ECC's correlation is below
    ``min_correlation``; when its sharpness is below ``min_sharpness`` times the burst's median
    (a blurred frame); when its scale leaves ``[1/(1+max_scale_change), 1+max_scale_change]``;
    or when its shift exceeds ``max_shift_fraction`` of the frame's size. The reference gets
    the identity and is never left out. The reference's spectra are computed once. Frames are
    registered by ``workers`` threads (OpenCV's FFTs, resampling and ECC release the GIL;
    imreg-dft does not); the result does not depend on it beyond float32 rounding (OpenCV's
    vectorised float32 sums vary in the last digits from call to call, serial calls too).
    ``progress(k)`` is called after each frame, if given.
    """
    ys = [luma(frame).astype(np.float32) for frame in frames]
    estimate = _coarse_method(ys[reference], coarse, iterations)

    def one(k: int) -> Registration:
        if k == reference:
            return Registration(np.eye(3), 1.0, 1.0 if refine == "ecc" else None, **similarity_parameters(np.eye(3)))
        return _register_y(ys[reference], ys[k], estimate, refine)

    # the frames are the parallel work: OpenCV's own threads inside each would oversubscribe
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = []
            for k, reg in enumerate(pool.map(one, range(len(frames)))):
                results.append(reg)
                if progress is not None:
                    progress(k)
    finally:
        cv2.setNumThreads(opencv_threads)
    sharpness_values = np.array([sharpness(y) for y in ys])
    median_sharpness = float(np.median(sharpness_values))
    median_success = float(np.median([r.success for k, r in enumerate(results) if k != reference]))
    for k, reg in enumerate(results):
        reg.sharpness = float(sharpness_values[k] / median_sharpness) if median_sharpness > 0 else 1.0
        if k != reference:
            reg.excluded = _reason_to_leave_out(
                reg, frames.shape[1:3], median_success, min_success=min_success, min_correlation=min_correlation,
                min_sharpness=min_sharpness, max_scale_change=max_scale_change, max_shift_fraction=max_shift_fraction)
    return results

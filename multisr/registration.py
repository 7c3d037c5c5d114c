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
starts OpenCV's enhanced-correlation-coefficient maximisation (Evangelidis & Psarakis 2008) from
it, in a motion model that contains the coarse estimate (``model``):

- ``"similarity"`` (rotation, zoom, shift): ECC's affine model, then the nearest similarity
  (least squares over the frame's pixels);
- ``"affine"``: ECC's affine model;
- ``"homography"``: ECC's homography (zoom drift, perspective of a hand-held camera).

Local motion (a moving object, a person) would pull a whole-frame fit towards itself, so ECC
runs a second time with the pixels where the aligned frame still disagrees with the reference
(robustly beyond the burst's noise) masked out. That brings the global motion to a few
hundredths of a pixel.
"""
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .color import luma
from .fourier_mellin import FourierMellin
from .geometry import apply, rms_displacement, similarity_matrix, similarity_parameters, warp

with warnings.catch_warnings():  # imreg-dft 2.0 imports the deprecated scipy.ndimage.interpolation
    warnings.simplefilter("ignore", DeprecationWarning)
    import imreg_dft

__all__ = ["Registration", "COARSE_METHODS", "REFINEMENTS", "MODELS", "ECC_MOTION", "register_pair", "refine_ecc",
           "ecc_fit", "agreement", "nearest_similarity", "sharpness", "register_burst"]

COARSE_METHODS = ("fourier-mellin", "imreg-dft")
REFINEMENTS = ("ecc", "none")
MODELS = ("similarity", "affine", "homography")


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


def nearest_similarity(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The similarity closest to ``matrix`` (any 3x3 homography) in the least-squares sense over the
    pixel centres of a ``shape = (height, width)`` frame."""
    height, width = shape
    ys, xs = np.mgrid[0:height:4, 0:width:4].astype(np.float64)
    mx, my = apply(matrix, xs, ys)
    # x' = a x - b y + c,  y' = b x + a y + d
    rows = np.concatenate([np.stack([xs.ravel(), -ys.ravel(), np.ones(xs.size), np.zeros(xs.size)], 1),
                           np.stack([ys.ravel(), xs.ravel(), np.zeros(xs.size), np.ones(xs.size)], 1)])
    (a, b, c, d), *_ = np.linalg.lstsq(rows, np.concatenate([mx.ravel(), my.ravel()]), rcond=None)
    return np.array([[a, -b, c], [b, a, d], [0.0, 0.0, 1.0]])


# OpenCV's ECC motion type fitted for each model (a similarity is fitted as affine, then projected)
ECC_MOTION = {"similarity": cv2.MOTION_AFFINE, "affine": cv2.MOTION_AFFINE, "homography": cv2.MOTION_HOMOGRAPHY}


ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)


def ecc_fit(template: np.ndarray, image: np.ndarray, matrix: np.ndarray, model: str, mask: np.ndarray | None,
            smoothings: tuple[int, ...], *, criteria=ECC_CRITERIA) -> tuple[np.ndarray, float]:
    """OpenCV's ECC in ``model`` from ``matrix`` (3x3: ``template``'s pixels -> ``image``'s), once per
    Gaussian smoothing; ``mask`` (uint8) lies on ``image``, as OpenCV takes it. Returns the 3x3
    result (for the similarity model, the similarity nearest to ECC's affine fit over the
    template's pixels) and the final correlation coefficient; raises ``cv2.error``."""
    homography = model == "homography"
    normalised = matrix / matrix[2, 2]
    warp_matrix = (normalised if homography else normalised[:2]).astype(np.float32)
    correlation = 0.0
    for smoothing in smoothings:
        correlation, warp_matrix = cv2.findTransformECC(template, image, warp_matrix, ECC_MOTION[model], criteria,
                                                        mask, smoothing)
    refined = np.eye(3)
    if homography:
        refined[:] = warp_matrix
    else:
        refined[:2] = warp_matrix
    if model == "similarity":
        refined = nearest_similarity(refined, template.shape)
    return refined, float(correlation)


def agreement(expected: np.ndarray, frame: np.ndarray, *, tolerance: float, smoothing: float, floor: float,
              centre_over: np.ndarray | None = None) -> np.ndarray:
    """``(h, w)`` uint8: 1 where ``frame`` agrees with ``expected`` (both ``(h, w)`` float32 on one grid).

    Both are smoothed by a Gaussian of ``smoothing`` pixels (noise and aliasing differ from frame
    to frame; a moving object differs over an area). A misregistration by ``tolerance`` pixels
    changes a pixel by up to its gradient times ``tolerance``: disagreement is a difference
    beyond that plus ``floor`` (noise, compression), and that area is widened by 2 pixels. With
    ``centre_over`` (a bool mask), the difference's median over it is taken out first (a change
    of exposure is no disagreement).
    """
    expected = cv2.GaussianBlur(expected.astype(np.float32), (0, 0), smoothing)
    difference = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), smoothing) - expected
    if centre_over is not None and centre_over.any():
        difference = difference - np.median(difference[centre_over])
    gradient = np.hypot(cv2.Sobel(expected, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(expected, cv2.CV_32F, 0, 1, ksize=3)) / 8
    agree = (np.abs(difference) <= tolerance * gradient + floor).astype(np.uint8)
    return cv2.erode(agree, np.ones((5, 5), np.uint8))


def _disagreement_mask(reference_y: np.ndarray, frame_y: np.ndarray, matrix: np.ndarray, base: np.ndarray,
                       tolerance: float) -> np.ndarray:
    """``uint8`` mask in ``frame_y``'s pixels: ``base`` less where the frame disagrees with the reference
    aligned onto it by ``matrix`` (:func:`agreement`, smoothed by 1 pixel, 3 levels of 255 of noise,
    exposure taken out)."""
    aligned, valid = warp(reference_y, np.linalg.inv(matrix), frame_y.shape)
    agree = agreement(aligned, frame_y, tolerance=tolerance, smoothing=1.0, floor=3 / 255,
                      centre_over=valid & (base > 0))
    return agree & base & valid.astype(np.uint8)


def refine_ecc(reference_y: np.ndarray, frame_y: np.ndarray, matrix: np.ndarray, *, model: str = "similarity",
               border: int = 4) -> tuple[np.ndarray, float] | None:
    """Refine a registration matrix of ``frame_y`` against ``reference_y`` (``(H, W)`` Y) by ECC.

    ``model``: one of :data:`MODELS`; the start ``matrix`` (for example Fourier-Mellin's
    similarity, zoom included) is kept whole. Three candidate fits from the start:

    - the whole frame's (on Gaussian-smoothed images, 5x5, to reach the right basin, then on the
      images as they are);
    - three rounds that each fit only the pixels where the frame, aligned by the previous round,
      agrees with the reference (local motion does not pull the fit); none when fewer than a
      quarter agree;
    - for the similarity model, the rigid fit (tiny or flat frames may not constrain a zoom).

    A candidate more than 2 pixels (RMS) from the start has run away and is dropped; of the
    others, the one under which the most pixels agree with the reference wins, as RANSAC counts
    inliers. ``border`` pixels at the frame's edges are left out throughout. Returns the refined
    3x3 matrix and ECC's correlation coefficient for it (over the pixels that candidate fitted),
    or ``None`` when no candidate is left.
    """
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    height, width = reference_y.shape
    base = np.zeros((height, width), dtype=np.uint8)
    base[border : height - border, border : width - border] = 1
    template, image = reference_y.astype(np.float32), frame_y.astype(np.float32)
    start = matrix
    candidates = []
    try:  # the whole frame's fit, and the fit of only what agrees (local motion masked), from the start
        candidates.append(ecc_fit(template, image, start, model, base, (5, 1)))
    except cv2.error:
        pass
    try:
        matrix, correlation = start, 0.0
        for tolerance, smoothing in ((1.5, 5), (0.5, 1), (0.25, 1)):
            agree = _disagreement_mask(template, image, matrix, base, tolerance)
            if agree.sum() < 0.25 * base.sum():
                break
            matrix, correlation = ecc_fit(template, image, matrix, model, agree, (smoothing,))
        else:
            candidates.append((matrix, correlation))
    except cv2.error:
        pass
    if model == "similarity":  # small or flat frames may not constrain a zoom: the rigid fit too
        try:
            candidates.append(_ecc_rigid(template, image, start, base))
        except cv2.error:
            pass
    candidates = [c for c in candidates if rms_displacement(c[0], start, image.shape) <= 2.0]  # no run-aways
    if not candidates:
        return None
    # the fit under which the most pixels agree with the reference wins (as RANSAC counts inliers)
    agreeing = [_disagreement_mask(template, image, m, base, 0.25).sum() for m, _ in candidates]
    matrix, correlation = candidates[int(np.argmax(agreeing))]
    return matrix, correlation


def _ecc_rigid(template: np.ndarray, image: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """ECC with the rigid model (rotation + shift) from ``matrix``'s rotation and shift; raises ``cv2.error``."""
    angle = np.arctan2(matrix[1, 0] - matrix[0, 1], matrix[0, 0] + matrix[1, 1])
    start = np.array([[np.cos(angle), -np.sin(angle), matrix[0, 2]], [np.sin(angle), np.cos(angle), matrix[1, 2]]],
                     dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    correlation = 0.0
    for smoothing in (5, 1):
        correlation, start = cv2.findTransformECC(template, image, start, cv2.MOTION_EUCLIDEAN, criteria, mask, smoothing)
    refined = np.eye(3)
    refined[:2] = start
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


def _register_y(ref_y: np.ndarray, frame_y: np.ndarray, coarse, refine: str, model: str) -> Registration:
    """Register Y ``frame_y`` against ``ref_y``; ``coarse(frame_y)`` gives ``(A, success)``."""
    try:
        matrix, success = coarse(frame_y)
    except ValueError as error:  # imreg-dft refuses matches it finds absurd (e.g. a huge scale change)
        return Registration(np.eye(3), 0.0, None, **similarity_parameters(np.eye(3)),
                            excluded=f"Fourier-Mellin found no plausible match ({error})")
    excluded, correlation = None, None
    if refine == "ecc":
        refined = refine_ecc(ref_y, frame_y, matrix, model=model)
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
                  refine: str = "ecc", model: str = "similarity") -> Registration:
    """Register ``frame`` against ``reference`` (both ``(H, W[, 3])``, same shape) on their Y.

    ``coarse``: one of :data:`COARSE_METHODS`; ``iterations`` applies to imreg-dft only.
    ``refine``: ``"ecc"`` (then ECC in ``model``, one of :data:`MODELS`) or ``"none"`` (the
    coarse estimate alone, a similarity).
    """
    ref_y, frame_y = luma(reference).astype(np.float32), luma(frame).astype(np.float32)
    return _register_y(ref_y, frame_y, _coarse_method(ref_y, coarse, iterations), refine, model)


def sharpness(y: np.ndarray) -> float:
    """Mean squared Sobel gradient of a ``(H, W)`` Y image: lower for a blurred frame of the same scene."""
    y = np.asarray(y, dtype=np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1)
    return float(np.mean(gx * gx + gy * gy))


def _reason_to_leave_out(reg: Registration, shape: tuple[int, int], median_success: float, *, min_success: float,
                         min_correlation: float, min_sharpness: float, max_scale_change: float,
                         max_shift_fraction: float) -> str | None:
    if reg.sharpness < min_sharpness:  # first: a blurred frame also fails to agree with the reference
        return f"blurred: sharpness {reg.sharpness:.2f} of the burst's median, below {min_sharpness}"
    if reg.excluded:
        return reg.excluded
    if reg.success < min_success * median_success:
        return f"registration success {reg.success:.2f} below {min_success} of the burst's median {median_success:.2f}"
    if reg.correlation is not None and reg.correlation < min_correlation:
        return f"ECC correlation {reg.correlation:.2f} below {min_correlation}: another scene or a changed one"
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
    model: str = "similarity",
    min_success: float = 0.5,
    min_correlation: float = 0.7,
    min_sharpness: float = 0.5,
    max_scale_change: float = 0.3,
    max_shift_fraction: float = 0.5,
    workers: int = 1,
    progress=None,
) -> list[Registration]:
    """Register every frame of ``(N, H, W[, 3])`` against ``frames[reference]`` (see :func:`register_pair`;
    ``model`` is ECC's motion model).

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
        return _register_y(ys[reference], ys[k], estimate, refine, model)

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

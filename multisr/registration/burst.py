"""Frame registration: a coarse Fourier-Mellin estimate, then an optional sub-pixel
refinement by robust Lucas-Kanade.

Two Fourier-Mellin implementations (``coarse``):

- ``"fourier-mellin"`` (default): :class:`multisr.registration.fourier_mellin.FourierMellin`, which computes
  the reference's spectra once per burst and releases the GIL (frames run in threads).
- ``"imreg-dft"``: the imreg-dft package the original experiment used
  (:func:`multisr.registration.fourier_mellin.imreg_dft_similarity`). It recomputes the reference's spectra
  for every frame and holds the GIL: about 1 s per 640x480 frame here, against 14 ms with ours.

Fourier-Mellin alone is accurate to a tenth or a few tenths of a low-resolution pixel (imreg-dft's
0.5 px on small frames blurred the presenters' fusion below plain bicubic). ``refine="robust"``
starts a robust Lucas-Kanade fit (:mod:`multisr.registration.alignment`: Tukey-weighted least squares,
coarse to fine, with the brightness change) from it, in a motion model that contains the coarse
estimate (``model``): ``"homography"`` (default: zoom drift and perspective of a hand-held
camera), ``"affine"`` or ``"similarity"`` (rotation, zoom, shift). The robust weights give no
say to pixels that disagree far beyond the residual's spread, so local motion (a moving object,
a person) does not pull the global motion: on simulated camera bursts the fit lands within a few
hundredths of a pixel.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from ..imaging.color import luma
from ..imaging.geometry import rms_displacement, similarity_parameters
from .alignment import MODELS, SMOOTHINGS, Alignment, align, plan_for_size
from .fourier_mellin import FourierMellin, imreg_dft_similarity
from .frame_selection import RESIDUAL_RATIO, median_residual, reason_to_leave_out, sharpness

__all__ = ["Registration", "COARSE_METHODS", "REFINEMENTS", "MODELS", "register_pair", "refine_robust", "register_burst"]

COARSE_METHODS = ("fourier-mellin", "imreg-dft")
REFINEMENTS = ("robust", "none")


@dataclass
class Registration:
    """One frame's registration against the reference.

    Attributes:
        matrix: 3x3, reference LR pixel coordinates -> this frame's (geometry contract).
        success: the coarse step's score (phase-correlation peak strength, higher better).
        correlation: the correlation coefficient of the aligned frame and the reference after
            refinement (1 = identical up to brightness and contrast), or ``None`` without
            refinement.
        residual: the robust spread (Y units, 1 = white) of the aligned frame's difference from
            the reference after refinement (:attr:`multisr.registration.alignment.Alignment.scale`), or ``None``.
        sharpness: mean squared gradient of the frame's Y, relative to the burst's median.
        excluded: why the frame is left out of the burst, or ``None`` when it is used.
        frame: the frame's name (file name, ``clip.mp4#K``), where known: the ``register`` stage
            names each frame; :func:`register_burst` leaves it ``None``.

    ``scale``, ``angle``, ``tx``, ``ty`` (properties): ``matrix`` as a similarity about the
    origin, angle in degrees (:func:`multisr.imaging.geometry.similarity_parameters`).
    """

    matrix: np.ndarray
    success: float
    correlation: float | None
    sharpness: float = 1.0
    excluded: str | None = None
    residual: float | None = None
    frame: str | None = None

    @property
    def scale(self) -> float:
        return similarity_parameters(self.matrix)["scale"]

    @property
    def angle(self) -> float:
        return similarity_parameters(self.matrix)["angle"]

    @property
    def tx(self) -> float:
        return similarity_parameters(self.matrix)["tx"]

    @property
    def ty(self) -> float:
        return similarity_parameters(self.matrix)["ty"]

    def to_json(self) -> dict:
        """JSON-able dict (the matrix as nested lists, with its similarity summary for readers of
        ``meta.json``); :meth:`from_json` reads it back."""
        return {**asdict(self), "matrix": self.matrix.tolist(), **similarity_parameters(self.matrix)}

    @classmethod
    def from_json(cls, data: dict) -> "Registration":
        """The registration :meth:`to_json` wrote."""
        stored = {name: value for name, value in data.items() if name not in ("scale", "angle", "tx", "ty")}
        return cls(**{**stored, "matrix": np.array(data["matrix"], dtype=np.float64)})


def refine_robust(reference_y: np.ndarray, frame_y: np.ndarray, start: np.ndarray, *, model: str = "homography",
                  border: int = 4) -> Alignment | None:
    """Refine a registration of ``frame_y`` against ``reference_y`` (``(H, W)`` Y) by robust
    Lucas-Kanade (:func:`multisr.registration.alignment.align`, Tukey's weights: local motion does not pull it)
    from ``start`` (3x3; Fourier-Mellin's similarity, zoom included, is kept whole), in
    ``model``, one of :data:`MODELS`.

    The fit is kept only when at least half the reference's pixels land inside the frame and its
    gain lies in [0.5, 2] (a fit that slid onto a flat patch matches it with a gain near 0).
    ``border`` pixels at the frame's edges are left out. Returns ``None`` otherwise. A small
    frame (a crop of a few tens of pixels) is fitted with the smoothings and the model it
    supports (:func:`multisr.registration.alignment.plan_for_size`).
    """
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    smoothings, model = plan_for_size(reference_y.shape, SMOOTHINGS, model)
    fit = align(reference_y, frame_y, start, model=model, border=border, smoothings=smoothings)
    return fit if fit is not None and fit.overlap >= 0.5 and 0.5 <= fit.gain <= 2 else None


def _register_y(ref_y: np.ndarray, frame_y: np.ndarray, coarse, refine: str, model: str) -> Registration:
    """Register Y ``frame_y`` against ``ref_y``; ``coarse(frame_y)`` gives ``(A, success)``."""
    try:
        matrix, success = coarse(frame_y)
    except ValueError as error:  # imreg-dft refuses matches it finds absurd (e.g. a huge scale change)
        return Registration(np.eye(3), 0.0, None, excluded=f"Fourier-Mellin found no plausible match ({error})")
    excluded, correlation, residual = None, None, None
    if refine == "robust":
        refined = refine_robust(ref_y, frame_y, matrix, model=model)
        if refined is None:
            excluded = "the robust refinement found too little overlap with the reference"
        else:
            matrix, correlation, residual = refined.matrix, refined.correlation, refined.scale
    return Registration(matrix=matrix, success=success, correlation=correlation, residual=residual, excluded=excluded)


def _from_identity(ref_y: np.ndarray, frame_y: np.ndarray, registration: Registration, model: str) -> Registration:
    """``registration``, or the robust fit from the identity when that fits better: Fourier-Mellin can
    lock onto a moving object that carries most of a frame's texture. Tried only when the
    registration lies over a pixel (RMS) from the identity."""
    if rms_displacement(registration.matrix, np.eye(3), ref_y.shape) <= 1.0:
        return registration
    fit = refine_robust(ref_y, frame_y, np.eye(3), model=model)
    if fit is None or (registration.residual is not None and fit.scale >= registration.residual):
        return registration
    return Registration(matrix=fit.matrix, success=registration.success, correlation=fit.correlation,
                        residual=fit.scale)


def _coarse_method(ref_y: np.ndarray, coarse: str, iterations: int, refine: str, model: str):
    """The coarse step against ``ref_y`` as a function ``frame_y -> (A, success)``, once the
    choices are checked (``ValueError`` naming the argument)."""
    for name, value, allowed in (("coarse", coarse, COARSE_METHODS), ("refine", refine, REFINEMENTS),
                                 ("model", model, MODELS)):
        if value not in allowed:
            raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
    if coarse == "imreg-dft":
        return lambda frame_y: imreg_dft_similarity(ref_y, frame_y, iterations)
    return FourierMellin(ref_y).register


def register_pair(reference: np.ndarray, frame: np.ndarray, *, coarse: str = "fourier-mellin", iterations: int = 3,
                  refine: str = "robust", model: str = "homography") -> Registration:
    """Register ``frame`` against ``reference`` (both ``(H, W[, 3])``, same shape) on their Y.

    ``coarse``: one of :data:`COARSE_METHODS`; ``iterations`` applies to imreg-dft only.
    ``refine``: ``"robust"`` (then :func:`refine_robust` in ``model``, one of :data:`MODELS`, and
    from the identity too when that fits better) or ``"none"`` (the coarse estimate alone, a
    similarity).
    """
    ref_y, frame_y = luma(reference).astype(np.float32), luma(frame).astype(np.float32)
    registration = _register_y(ref_y, frame_y, _coarse_method(ref_y, coarse, iterations, refine, model), refine,
                               model)
    return _from_identity(ref_y, frame_y, registration, model) if refine == "robust" else registration


@threadpool_limits.wrap(limits=1, user_api="blas")
def register_burst(
    frames: np.ndarray,
    *,
    reference: int = 0,
    coarse: str = "fourier-mellin",
    iterations: int = 3,
    refine: str = "robust",
    model: str = "homography",
    min_success: float = 0.5,
    min_correlation: float = 0.7,
    min_sharpness: float = 0.5,
    max_scale_change: float = 0.3,
    max_shift_fraction: float = 0.5,
    known: np.ndarray | None = None,
    workers: int = 1,
    progress=None,
) -> list[Registration]:
    """Register every frame of ``(N, H, W[, 3])`` against ``frames[reference]`` (see :func:`register_pair`;
    ``model`` is the refinement's motion model).

    A frame whose refined fit leaves a residual over :data:`RESIDUAL_RATIO` times the burst's
    median (or none) is refined again from the identity, when Fourier-Mellin put it over a pixel
    away (it can lock onto a moving object that carries most of a frame's texture), and keeps
    the better fit. A frame is left out (``excluded`` says why) when the refinement finds no fit; when its
    correlation is below ``min_correlation``; when its success score is below ``min_success``
    times the burst's median and (with refinement) its residual exceeds :data:`RESIDUAL_RATIO`
    times the burst's median; when its sharpness is below ``min_sharpness`` times the burst's
    median (a blurred frame); when its scale leaves ``[1/(1+max_scale_change),
    1+max_scale_change]``; or when its shift exceeds ``max_shift_fraction`` of the frame's size. The reference gets the identity and is never
    left out. The reference's spectra are computed once. Frames are registered by ``workers``
    threads (OpenCV's FFTs and resampling and numpy's array work release the GIL; imreg-dft does
    not), with BLAS held to one thread, so the result is the same from run to run and does not
    depend on their number.
    ``known``: ``(N, 3, 3)`` matrices already found for some frames (an overlapping window of a
    video, its matrices composed onto this reference), NaN for the others: a known frame keeps
    its matrix without a coarse step or a refinement (its ``success`` is 1, its correlation and
    residual unknown) and only the frame-level checks (sharpness, scale, shift) can leave it out.
    ``progress(k)`` is called after each frame, if given.
    """
    ys = [luma(frame).astype(np.float32) for frame in frames]
    given = set() if known is None else {k for k in range(len(frames)) if k != reference and np.isfinite(known[k]).all()}
    estimate = _coarse_method(ys[reference], coarse, iterations, refine, model)

    def one(k: int) -> Registration:
        if k == reference:
            return Registration(np.eye(3), 1.0, 1.0 if refine == "robust" else None)
        if k in given:
            return Registration(known[k] / known[k][2, 2], 1.0, None)
        return _register_y(ys[reference], ys[k], estimate, refine, model)

    def again(k: int) -> None:  # for a frame that fits worse than the burst
        results[k] = _from_identity(ys[reference], ys[k], results[k], model)

    # the frames are the parallel work: OpenCV's own threads inside each would oversubscribe (BLAS
    # is held to one thread by the decorator: it would also sum in an order that depends on which
    # of its threads were free, and runs would differ by 1e-6 of a matrix entry)
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = []
            for k, reg in enumerate(pool.map(one, range(len(frames)))):
                results.append(reg)
                if progress is not None:
                    progress(k)
            typical = median_residual(results, reference)
            if refine == "robust":
                list(pool.map(again, [k for k, r in enumerate(results) if k != reference and k not in given and (
                    r.residual is None or (typical and r.residual > RESIDUAL_RATIO * typical))]))
    finally:
        cv2.setNumThreads(opencv_threads)
    sharpness_values = np.array([sharpness(y) for y in ys])
    median_sharpness = float(np.median(sharpness_values))
    fresh = [r.success for k, r in enumerate(results) if k != reference and k not in given]
    median_success = float(np.median(fresh)) if fresh else 1.0
    residual_median = median_residual(results, reference)
    for k, reg in enumerate(results):
        reg.sharpness = float(sharpness_values[k] / median_sharpness) if median_sharpness > 0 else 1.0
        if k != reference:
            reg.excluded = reason_to_leave_out(
                reg, frames.shape[1:3], median_success, residual_median, min_success=min_success,
                min_correlation=min_correlation, min_sharpness=min_sharpness, max_scale_change=max_scale_change,
                max_shift_fraction=max_shift_fraction)
    return results

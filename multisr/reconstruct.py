"""Multi-frame reconstruction on the high-resolution grid: a fast, robust least-squares solve.

The model. Frame k's low-resolution pixel ``q`` (frame-k LR coordinates) sees the unknown
high-resolution image X (reference frame's HR coordinates) blurred by the point-spread function
``h`` of the burst and sampled at ``P_k(q) = C inv(A_k) q``::

    y_k(q) = (h * X)(P_k(q)) + noise

where ``A_k`` is the registration (reference LR -> frame k LR, a homography, geometry contract)
and ``C`` the LR -> HR pixel-centre map. Blurring and moving commute for the near-identity
motions of a burst (exactly for shifts and turns of a round ``h``), so each frame costs one
sampling of ``h * X`` at its own pixels, not a warp of the whole HR grid: the sampling is one
sparse matrix ``S`` (bicubic, 16 entries a sample), built once per motion estimate. ``h`` is
separable, in HR pixels:

- ``"matlab"``: MATLAB's antialiased bicubic downscale (how SR benchmarks make frames);
- ``"box"``: each LR pixel averages the ``scale x scale`` HR pixels it covers (a sensor);
- ``"box+<sigma>"``: that, after a Gaussian optical blur of ``sigma`` LR pixels;
- ``"auto"``: the one among :data:`AUTO_CANDIDATES` that predicts frames left out of the
  solve best (cross-validation on a central crop, with the one-standard-error rule, see
  :func:`choose_psf`): the burst tells its own blur.

Each frame's brightness is first matched to the reference's (a gain and an offset: cameras
change exposure within a burst). The solve minimises::

    sum w (S (h * X) - y)^2 / sum w  +  tv_weight * mean TV(X)

by iteratively reweighted least squares: a few rounds of conjugate gradients on the quadratic
problem with the total variation's weights frozen. The prior's weight grows with the noise the
first solve's residual shows (real bursts are noisier than benchmarks). ``w`` is 1 for the
reference frame and, for the other frames, 0 where the frame disagrees with the reference by
more than noise or a small misregistration can explain (a moving object, a person: the
reference's content is kept there, as Wronski et al. 2019 do with their robustness mask),
else 1.

Then every frame's motion is refined against the blurred solution (noise-free and not aliased,
unlike the reference frame that registration had to use): phase correlation for a shift left
over, then ECC in the chosen motion model; and the solve runs again. Pure numpy, scipy and
OpenCV on the CPU; no tensor is involved.
"""
import cv2
import numpy as np
from scipy import sparse

from .geometry import apply, scale_matrix
from .fourier_mellin import phase_correlation
from .registration import MODELS, agreement, ecc_fit
from .resize import keys_cubic, upscale

__all__ = ["AUTO_CANDIDATES", "psf_kernel", "parse_psf", "sampling_matrix", "match_brightness", "frame_weights", "solve",
           "choose_psf", "refine_motion", "reconstruct"]

AUTO_CANDIDATES = ("box", "matlab", "box+0.2", "box+0.3", "box+0.4", "box+0.5", "box+0.6", "box+0.75")  # mildest first


def parse_psf(psf: str) -> tuple[str, float]:
    """``"matlab"``, ``"box"``, ``"box+<sigma>"`` or ``"auto"`` -> ``(kind, sigma in LR pixels)``;
    raises ``ValueError`` naming what was expected."""
    kind, _, sigma = psf.partition("+")
    try:
        value = float(sigma) if sigma else 0.0
    except ValueError:
        value = -1.0
    if kind in ("matlab", "auto") and not sigma:
        return kind, 0.0
    if kind == "box" and np.isfinite(value) and 0 <= value <= 5:
        return kind, value
    raise ValueError(f"psf: expected auto, matlab, box or box+SIGMA (SIGMA in LR pixels, 0 to 5), got {psf!r}")


def psf_kernel(psf: str, scale: int) -> np.ndarray:
    """The 1-D kernel of a separable PSF (see the module docstring) in HR pixels, odd length, sum 1.

    ``scale`` must be odd (the box of a sensor pixel is then centred on an HR pixel); the
    pipelines use 3.
    """
    if scale % 2 == 0:
        raise ValueError(f"scale: expected an odd magnification, got {scale}")
    kind, sigma = parse_psf(psf)
    if kind == "matlab":
        taps = np.arange(-2 * scale, 2 * scale + 1, dtype=np.float64)
        kernel = keys_cubic(taps / scale)
    else:
        radius = scale // 2 + int(np.ceil(3 * sigma * scale))
        taps = np.arange(-radius, radius + 1, dtype=np.float64)
        kernel = (np.abs(taps) <= scale // 2).astype(np.float64)
        if sigma > 0:
            gaussian = np.exp(-0.5 * (taps / (sigma * scale)) ** 2)
            kernel = np.convolve(kernel, gaussian / gaussian.sum(), mode="same")
    return (kernel / kernel.sum()).astype(np.float32)


def _blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``kernel`` (symmetric, 1-D) along both axes of ``(H, W)`` float32, zeros beyond the border.

    Zero padding keeps the operator its own adjoint (conjugate gradients need that); the
    samples the solve uses lie far enough inside that the padding never reaches them.
    """
    return cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)


def _to_grid(scale: int, pad: int) -> np.ndarray:
    """Reference LR coordinates -> the solve's grid: the HR grid with ``pad`` pixels more on each side."""
    c = scale_matrix(scale)
    c[:2, 2] += pad
    return c


def sampling_positions(matrices: np.ndarray, lr_shape: tuple[int, int], scale: int, pad: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``, each ``(N, h, w)``: where frame k's LR pixel centres lie on the reference's HR grid
    (widened by ``pad`` pixels on each side)."""
    height, width = lr_shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    c = _to_grid(scale, pad)
    positions = [apply(c @ np.linalg.inv(m), xs, ys) for m in matrices]
    return np.stack([p[0] for p in positions]), np.stack([p[1] for p in positions])


def sampling_matrix(x: np.ndarray, y: np.ndarray, hr_shape: tuple[int, int], *, margin: float) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Bicubic (Keys a = -0.5) sampling of an ``hr_shape`` image at the points ``(x, y)``.

    Returns ``(S, inside)``: ``S`` is ``(points, H*W)`` sparse, one row per point (16 entries;
    all zero for a point that is not ``inside``), and ``inside`` is a flat bool array, one per point,
    True for points at least ``margin`` HR pixels inside the grid's pixel centres.
    """
    height, width = hr_shape
    x, y = x.ravel(), y.ravel()
    inside = (x >= margin) & (x <= width - 1 - margin) & (y >= margin) & (y <= height - 1 - margin)
    x0, y0 = np.floor(x).astype(np.int64) - 1, np.floor(y).astype(np.int64) - 1
    offsets = np.arange(4)
    wx = keys_cubic(x[:, None] - (x0[:, None] + offsets))  # (points, 4)
    wy = keys_cubic(y[:, None] - (y0[:, None] + offsets))
    cols_x = np.clip(x0[:, None] + offsets, 0, width - 1)
    cols_y = np.clip(y0[:, None] + offsets, 0, height - 1)
    data = ((wy[:, :, None] * wx[:, None, :]) * inside[:, None, None]).astype(np.float32)
    cols = (cols_y[:, :, None] * width + cols_x[:, None, :]).astype(np.int32)
    # 16 entries a row, so the CSR arrays are written directly (a taps' repeat at the border
    # is a duplicate column, which CSR products sum as they should)
    indptr = np.arange(0, 16 * x.size + 1, 16, dtype=np.int64 if 16 * x.size >= 2**31 else np.int32)
    matrix = sparse.csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(x.size, height * width))
    return matrix, inside


def _agreement(expected: np.ndarray, frame: np.ndarray, tolerance: float) -> np.ndarray:
    """:func:`multisr.registration.agreement` as the solve judges LR samples: smoothed by 1.5 LR
    pixels, 4 levels of 255 of noise and JPEG."""
    return agreement(expected, frame, tolerance=tolerance, smoothing=1.5, floor=4 / 255)


def _aligned_reference(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, k: int) -> np.ndarray:
    """The reference frame sampled on frame k's LR grid (bilinear, border replicated), ``(h, w)``."""
    height, width = frames_y.shape[1:]
    to_reference = matrices[anchor] @ np.linalg.inv(matrices[k])  # frame k LR -> reference LR
    return cv2.warpPerspective(frames_y[anchor].astype(np.float32), to_reference, (width, height),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def match_brightness(frames_y: np.ndarray, matrices: np.ndarray, anchor: int) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's brightness matched to the reference's: real cameras change exposure and gain
    within a burst (a few levels of 255), which a sampling model without it reads as motion.

    Frame k is fitted as ``gain * reference + offset`` (both smoothed by a Gaussian of 1.5 LR
    pixels) by least squares over the pixels away from the border, then again over the pixels
    it then agrees on (:func:`_agreement`, so that a moving object does not bias the fit), and
    corrected to ``(frame - offset) / gain``. Returns ``(frames, fits)``: the corrected
    ``(N, h, w)`` float32 and ``(N, 2)`` ``(gain, offset)`` per frame (the reference's ``(1, 0)``).
    """
    corrected = frames_y.astype(np.float32).copy()
    fits = np.tile(np.array([1.0, 0.0]), (len(frames_y), 1))
    inner = np.zeros(frames_y.shape[1:], dtype=bool)
    inner[2:-2, 2:-2] = True
    for k in range(len(frames_y)):
        if k == anchor:
            continue
        reference = cv2.GaussianBlur(_aligned_reference(frames_y, matrices, anchor, k), (0, 0), 1.5)
        frame = cv2.GaussianBlur(frames_y[k].astype(np.float32), (0, 0), 1.5)
        used = inner
        for _ in range(2):
            design = np.stack([reference[used], np.ones(int(used.sum()), np.float32)], 1)
            (gain, offset), *_ = np.linalg.lstsq(design, frame[used], rcond=None)
            if not (np.isfinite(gain) and 0.5 <= gain <= 2.0):
                gain, offset = 1.0, 0.0
                break
            agree = _agreement(gain * reference + offset, frame, 0.5).astype(bool) & inner
            if agree.sum() < 0.25 * inner.sum():
                break
            used = agree
        fits[k] = (gain, offset)
        corrected[k] = (frames_y[k] - offset) / gain
    return corrected, fits


def frame_weights(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, *, tolerance: float = 0.5) -> np.ndarray:
    """``(N, h, w)`` float32 data weights: 1 where frame k agrees with the reference frame aligned onto
    it (:func:`_agreement`), 0 where it does not (a moving object), always 1 for the reference
    (``anchor``)."""
    count, height, width = frames_y.shape
    weights = np.ones((count, height, width), dtype=np.float32)
    for k in range(count):
        if k != anchor:
            weights[k] = _agreement(_aligned_reference(frames_y, matrices, anchor, k), frames_y[k], tolerance)
    return weights


def _total_variation_weights(image: np.ndarray, epsilon: float = 1e-3) -> np.ndarray:
    """IRLS weights ``1 / sqrt(|grad X|^2 + eps^2)`` of the Charbonnier total variation, ``(H, W)``."""
    gx = np.diff(image, axis=1, append=image[:, -1:])
    gy = np.diff(image, axis=0, append=image[-1:])
    return 1.0 / np.sqrt(gx * gx + gy * gy + epsilon**2)


def _gradient_operator(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``D^T diag(weights) D image`` for forward differences with a replicated border."""
    gx = np.diff(image, axis=1, append=image[:, -1:]) * weights
    gy = np.diff(image, axis=0, append=image[-1:]) * weights
    out = -gx - gy
    out[:, 1:] += gx[:, :-1]
    out[1:] += gy[:-1]
    return out


def solve(samples: np.ndarray, weights: np.ndarray, matrix: sparse.csr_matrix, kernel: np.ndarray,
          start: np.ndarray, *, tv_weight: float, rounds: int = 4, cg_steps: int = 12) -> np.ndarray:
    """Minimise ``sum w (S (h * X) - y)^2 / sum w + tv_weight * mean(TV(X))`` over X, from ``start``.

    Args:
        samples: ``(P,)`` the observed LR values ``y``; weights: ``(P,)`` their weights ``w``.
        matrix: ``S``, ``(P, H*W)`` (:func:`sampling_matrix`); kernel: ``h``'s 1-D kernel.
        start: ``(H, W)`` float32 first estimate (the bicubic upscale of the reference).
        rounds: IRLS rounds of the total variation; cg_steps: conjugate-gradient steps in each.

    Returns:
        ``(H, W)`` float32, not clipped.
    """
    shape = start.shape
    transposed = matrix.T  # a CSC view: no copy
    scale_data = 1.0 / max(float(weights.sum()), 1.0)
    scale_prior = tv_weight / start.size

    def forward(image):  # A image, A = S h
        return matrix @ _blur(image, kernel).ravel()

    def adjoint(values):  # A^T values (h is symmetric)
        return _blur((transposed @ values).reshape(shape).astype(np.float32), kernel)

    estimate = start.astype(np.float32).copy()
    right = adjoint(weights * samples) * scale_data
    for _ in range(rounds):
        tv = _total_variation_weights(estimate).astype(np.float32)

        def normal(image):
            return adjoint(weights * forward(image)) * scale_data + scale_prior * _gradient_operator(image, tv)

        residual = right - normal(estimate)
        direction = residual.copy()
        energy = float(np.vdot(residual, residual))
        for _ in range(cg_steps):
            if energy < 1e-20:
                break
            step_image = normal(direction)
            alpha = energy / float(np.vdot(direction, step_image))
            estimate += alpha * direction
            residual -= alpha * step_image
            new_energy = float(np.vdot(residual, residual))
            direction = residual + (new_energy / energy) * direction
            energy = new_energy
    return estimate


def _pad(scale: int) -> int:
    """HR pixels the solve's grid extends beyond the output on each side: the widest candidate
    PSF's reach, so that every sample inside the output has its whole footprint on the grid."""
    return 2 * scale


def _sampling(matrices: np.ndarray, lr_shape: tuple[int, int], scale: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """:func:`sampling_matrix` of every frame on the solve's grid (the HR grid widened by :func:`_pad`)."""
    height, width = lr_shape
    pad = _pad(scale)
    x, y = sampling_positions(matrices, lr_shape, scale, pad)
    return sampling_matrix(x, y, (scale * height + 2 * pad, scale * width + 2 * pad), margin=pad)


def _solve_burst(frames_y, matrices, weights, psf, scale, tv_weight, start, used=None, sampling=None
                 ) -> tuple[np.ndarray, dict]:
    """One solve over the frames ``used`` (default all), on the output grid widened by :func:`_pad`.

    ``start``: ``(H, W)`` on the output grid; ``sampling``: :func:`_sampling` of ``matrices``
    if already made. Returns the ``(H, W)`` estimate and ``parts``: the widened estimate, the
    sampling matrix, which samples lie inside, the kernel.
    """
    count, height, width = frames_y.shape
    pad = _pad(scale)
    matrix, inside = sampling if sampling is not None else _sampling(matrices, (height, width), scale)
    w = (weights.reshape(count, -1) * inside.reshape(count, -1)).astype(np.float32)
    if used is not None:
        w[~np.isin(np.arange(count), used)] = 0
    kernel = psf_kernel(psf, scale)
    widened = cv2.copyMakeBorder(start.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    widened = solve(frames_y.reshape(-1).astype(np.float32), w.ravel(), matrix, kernel, widened, tv_weight=tv_weight)
    return widened[pad:-pad, pad:-pad], {"widened": widened, "matrix": matrix, "inside": inside, "kernel": kernel}


def _predicted(parts: dict, shape: tuple[int, int, int]) -> np.ndarray:
    """Every frame as a solve predicts it, ``S (h * X)``, ``shape = (N, h, w)`` (``parts`` from
    :func:`_solve_burst`; zero for the samples that are not inside)."""
    return (parts["matrix"] @ _blur(parts["widened"], parts["kernel"]).ravel()).reshape(shape)


NOISE_CALIBRATION = 2 / 255  # the residual (Y units) at which ``tv_weight`` applies as given


def residual_noise(frames_y: np.ndarray, weights: np.ndarray, parts: dict) -> float:
    """The median over frames of the weighted RMS residual (Y units) of a solve's prediction,
    ``parts`` from :func:`_solve_burst`: the noise and model error the burst shows."""
    predicted = _predicted(parts, frames_y.shape)
    w = weights * parts["inside"].reshape(frames_y.shape)
    per_frame = np.sum(w * (predicted - frames_y) ** 2, axis=(1, 2)) / np.maximum(w.sum(axis=(1, 2)), 1.0)
    return float(np.sqrt(np.median(per_frame)))


def choose_psf(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, weights: np.ndarray, *, scale: int,
               tv_weight: float, candidates=AUTO_CANDIDATES, crop: int = 64) -> tuple[str, dict]:
    """The PSF the burst shows, by cross-validation with the one-standard-error rule.

    Every third frame but the reference is held out; the others are solved with each candidate
    on a central ``crop x crop`` LR window, and each candidate's error predicting the held-out
    frames is measured frame by frame. The choice is the first of ``candidates`` (ordered from
    the least deconvolution to the most) whose mean error exceeds the best one's by at most one
    standard error of the per-frame differences (Breiman et al. 1984; Hastie et al., "The
    Elements of Statistical Learning", 7.10): near-ties go to the milder PSF, because
    overestimating the blur rings while underestimating it only leaves some of it in place.

    Returns ``(psf, errors)``: ``errors`` maps each candidate to its held-out weighted RMS error
    (Y units).
    """
    count, height, width = frames_y.shape
    top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
    window = frames_y[:, top : top + crop, left : left + crop]
    shift = np.array([[1.0, 0, -left], [0, 1.0, -top], [0, 0, 1.0]])  # LR coordinates -> window coordinates
    moved = np.stack([shift @ m @ np.linalg.inv(shift) for m in matrices])
    held_out = [k for k in range(count) if k != anchor and k % 3 == 1]
    used = [k for k in range(count) if k not in held_out]
    if not held_out:
        return candidates[0], {}
    start = upscale(window[anchor], scale)
    sub_weights = weights[:, top : top + crop, left : left + crop]
    per_frame = {}
    sampling = _sampling(moved, window.shape[1:], scale)  # the same for every candidate
    for psf in candidates:
        _, parts = _solve_burst(window, moved, sub_weights, psf, scale, tv_weight, start, used, sampling)
        predicted = _predicted(parts, window.shape)
        w = (sub_weights * parts["inside"].reshape(window.shape))[held_out]
        residual = predicted[held_out] - window[held_out]
        per_frame[psf] = np.sum(w * residual**2, axis=(1, 2)) / np.maximum(w.sum(axis=(1, 2)), 1.0)
    errors = {psf: float(np.sqrt(np.mean(values))) for psf, values in per_frame.items()}
    best = min(errors, key=errors.get)
    for psf in candidates:
        difference = per_frame[psf] - per_frame[best]
        standard_error = float(np.std(difference, ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0
        if np.mean(difference) <= standard_error:
            return psf, errors
    return best, errors


def _residual_shift(predicted: np.ndarray, frame: np.ndarray, *, max_shift: float = 3.0) -> np.ndarray:
    """``(dx, dy)`` in LR pixels with ``frame(q + d) ~ predicted(q)``, by windowed phase correlation
    (its peak is the background's: local motion hardly moves it); zero when the peak is weak or
    the shift below half a pixel (ECC is more precise there) or beyond ``max_shift``."""
    window = cv2.createHanningWindow(frame.shape[::-1], cv2.CV_32F)
    reference_spectrum = cv2.dft(predicted.astype(np.float32) * window, flags=cv2.DFT_COMPLEX_OUTPUT)
    dx, dy, peak = phase_correlation(reference_spectrum, frame.astype(np.float32) * window)
    if peak < 0.05 or not 0.5 <= np.hypot(dx, dy) <= max_shift:  # below half a pixel ECC does better
        return np.zeros(2)
    return np.array([dx, dy])


def refine_motion(frames_y: np.ndarray, matrices: np.ndarray, widened: np.ndarray, kernel: np.ndarray, anchor: int,
                  *, scale: int, model: str) -> np.ndarray:
    """Every frame's registration refined against the solution (``widened``: on the grid of
    :func:`_solve_burst`) blurred by the PSF; the reference's stays the identity.

    For each frame: the frame as the solution predicts it at its current motion; the shift
    left between the two by phase correlation (a registration pulled by a moving object can
    be a pixel or more off, out of ECC's reach); then ECC in ``model`` of the frame against the
    blurred solution, over the pixels where frame and prediction agree (:func:`_agreement`).
    ECC's result is kept unless markedly fewer pixels (5 %) agree with the prediction under it
    than under the shifted matrix; then, or when ECC fails, the frame keeps the shifted matrix.
    """
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    blurred = _blur(widened.astype(np.float32), kernel)
    c = _to_grid(scale, _pad(scale))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-7)
    refined = matrices.copy()
    height, width = frames_y.shape[1:]
    big_h, big_w = blurred.shape

    def predicted(matrix: np.ndarray) -> np.ndarray:  # the frame as the solution predicts it
        return cv2.warpPerspective(blurred, c @ np.linalg.inv(matrix), (width, height),
                                   flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    for k in range(len(frames_y)):
        if k == anchor:
            continue
        frame = frames_y[k].astype(np.float32)
        shift = np.eye(3)
        shift[:2, 2] = _residual_shift(predicted(matrices[k]), frame)
        matrix = shift @ matrices[k]
        refined[k] = matrix
        agree = _agreement(predicted(matrix), frame, 0.5)
        agreeing = int(agree.sum())
        agree[:2], agree[-2:], agree[:, :2], agree[:, -2:] = 0, 0, 0, 0
        if agree.sum() < 0.25 * agree.size:
            continue
        # OpenCV's mask lies on the image ECC samples (the HR grid): the agreement carried there
        mask = cv2.warpPerspective(agree, matrix @ np.linalg.inv(c), (big_w, big_h),
                                   flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
        try:  # ECC's warp: frame k LR -> the solve's grid
            found, _ = ecc_fit(frame, blurred, c @ np.linalg.inv(matrix), model, mask, (1,), criteria=criteria)
        except cv2.error:
            continue
        candidate = np.linalg.inv(found) @ c
        candidate /= candidate[2, 2]
        if _agreement(predicted(candidate), frame, 0.5).sum() >= 0.95 * agreeing:
            refined[k] = candidate  # not when markedly fewer pixels agree (as RANSAC counts inliers)
    return refined


def reconstruct(
    frames_y: np.ndarray,
    matrices: np.ndarray,
    *,
    anchor: int,
    scale: int = 3,
    psf: str = "auto",
    tv_weight: float = 0.0005,
    model: str = "homography",
    refine_rounds: int = 2,
    progress=None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Solve for the high-resolution Y of the reference frame ``frames_y[anchor]``.

    Args:
        frames_y: ``(N, h, w)`` float32 Y of the frames that take part.
        matrices: ``(N, 3, 3)`` their registration matrices (``matrices[anchor]`` the identity).
        scale: the magnification; the output is ``(scale*h, scale*w)``.
        psf: see the module docstring; ``"auto"`` chooses from the burst.
        tv_weight: weight of the total-variation prior (Y in [0, 1] units) for a burst whose
            residual after the first solve is :data:`NOISE_CALIBRATION` (2 levels of 255); a
            burst with more residual noise gets it times (residual / calibration) squared.
        model: the motion model in which the solve refines the registration (one of
            :data:`multisr.registration.MODELS`).
        refine_rounds: how many times the motion is refined and the solve repeated (0: never).
        progress: called with 1 after each solve, if given.

    Returns:
        ``(solved, refined, info)``: ``(scale*h, scale*w)`` float32 Y, not clipped; the
        ``(N, 3, 3)`` refined matrices (LR pixels, as ``matrices``); ``info`` with the PSF used,
        the cross-validation errors of ``"auto"``, the first solve's residual in levels of 255 and
        the prior weight it led to, the fraction of samples each frame kept and
        each frame's ``(gain, offset)`` against the reference (:func:`match_brightness`).
    """
    originals = np.asarray(frames_y, dtype=np.float32)
    frames_y, fits = match_brightness(originals, matrices, anchor)
    info = {}
    weights = frame_weights(frames_y, matrices, anchor)
    if psf == "auto":
        psf, info["psf_errors"] = choose_psf(frames_y, matrices, anchor, weights, scale=scale, tv_weight=tv_weight)
    else:
        parse_psf(psf)
    info["psf"] = psf
    estimate, parts = _solve_burst(frames_y, matrices, weights, psf, scale, tv_weight, upscale(frames_y[anchor], scale))
    noise = residual_noise(frames_y, weights, parts)
    # a noisier burst (or one that fits the model less well) needs a stronger prior: the MAP
    # weight of the prior grows with the noise variance; never weaker than calibrated
    stronger = tv_weight * max(1.0, (noise / NOISE_CALIBRATION) ** 2)
    info["residual_levels"], info["tv_weight"] = round(noise * 255, 2), stronger
    if progress is not None:
        progress(1)
    for _ in range(refine_rounds):
        matrices = refine_motion(frames_y, matrices, parts["widened"], parts["kernel"], anchor, scale=scale, model=model)
        frames_y, fits = match_brightness(originals, matrices, anchor)
        weights = frame_weights(frames_y, matrices, anchor)
        estimate, parts = _solve_burst(frames_y, matrices, weights, psf, scale, stronger, estimate)
        if progress is not None:
            progress(1)
    if refine_rounds == 0 and stronger > tv_weight:
        estimate, parts = _solve_burst(frames_y, matrices, weights, psf, scale, stronger, estimate)
    info["kept"] = [round(float(w.mean()), 3) for w in weights]
    info["brightness"] = [[round(float(g), 4), round(float(o), 4)] for g, o in fits]
    return estimate, matrices, info

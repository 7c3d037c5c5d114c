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
  solve best (3-fold cross-validation on a central crop, see :func:`choose_psf`): the burst
  tells its own blur. It is chosen after the motion is refined (below): the registration's
  errors of 0.02-0.03 LR pixels blur the data as a wider PSF would, and led the choice one
  step too wide on 4 of 10 SR-protocol bursts made with MATLAB's kernel (up to 2 dB lost).

Each frame's brightness is first matched to the reference's (a gain and an offset: cameras
change exposure within a burst). The solve minimises::

    sum w (S (h * X) - y)^2 / sum w  +  tv_weight * mean TV(X)

by iteratively reweighted least squares: a few rounds of Jacobi-preconditioned conjugate
gradients on the quadratic problem with the total variation's weights frozen. The prior's weight grows with the noise the
first solve's residual shows (real bursts are noisier than benchmarks). ``w`` is 1 for the
reference frame and, for the other frames, 0 where the frame disagrees with the reference by
more than noise or a small misregistration can explain (a moving object, a person: the
reference's content is kept there, as Wronski et al. 2019 do with their robustness mask),
else 1.

Then every frame's motion is refined against the blurred solution (noise-free and not aliased,
unlike the reference frame that registration had to use) by robust Lucas-Kanade in the chosen
motion model, the PSF is chosen (with ``"auto"``; the first solve uses
:data:`PROVISIONAL_PSF`), and the solve runs again. Every solve runs in tiles of the reference's LR grid,
one per core at a time (:func:`solve_tiled`), so memory goes with the tile, not the frame. Pure numpy,
scipy and OpenCV on the CPU; no tensor is involved.
"""
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from .alignment import MODELS, align, gradients
from .geometry import apply, scale_matrix
from .resize import keys_cubic, upscale

__all__ = ["AUTO_CANDIDATES", "psf_kernel", "parse_psf", "sampling_matrix", "match_brightness", "frame_weights", "solve",
           "choose_psf", "refine_motion", "solve_tiled", "reconstruct"]

FOLDS = 3  # cross-validation folds of choose_psf
AUTO_CANDIDATES = ("box", "matlab", "box+0.2", "box+0.3", "box+0.4", "box+0.5", "box+0.6", "box+0.75")


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
    floor_x, floor_y = np.floor(x), np.floor(y)
    wx = _cubic_taps((x - floor_x).astype(np.float32))  # (points, 4): the taps at floor - 1 .. floor + 2
    wy = _cubic_taps((y - floor_y).astype(np.float32))
    wx[~inside] = 0
    index = np.int32 if height * width < 2**31 else np.int64
    offsets = np.arange(-1, 3, dtype=index)
    cols_x = np.clip(floor_x.astype(index)[:, None] + offsets, 0, width - 1)
    cols_y = np.clip(floor_y.astype(index)[:, None] + offsets, 0, height - 1) * index(width)
    data = wy[:, :, None] * wx[:, None, :]
    cols = cols_y[:, :, None] + cols_x[:, None, :]
    # 16 entries a row, so the CSR arrays are written directly (a taps' repeat at the border
    # is a duplicate column, which CSR products sum as they should)
    indptr = np.arange(0, 16 * x.size + 1, 16, dtype=np.int64 if 16 * x.size >= 2**31 else np.int32)
    matrix = sparse.csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(x.size, height * width))
    return matrix, inside


def _cubic_taps(t: np.ndarray) -> np.ndarray:
    """``(P, 4)``: Keys' cubic (a = -0.5) at ``t + 1, t, 1 - t, 2 - t`` for fractions ``t`` in
    [0, 1), ``(P,)``: the weights of the taps at floor - 1 .. floor + 2 (the same numbers as
    :func:`~multisr.resize.keys_cubic`, in four polynomials of ``t``)."""
    t2 = t * t
    t3 = t2 * t
    taps = np.empty((t.size, 4), np.float32)
    taps[:, 0] = 0.5 * (2 * t2 - t3 - t)
    taps[:, 1] = 0.5 * (3 * t3 - 5 * t2 + 2)
    taps[:, 2] = 0.5 * (4 * t2 - 3 * t3 + t)
    taps[:, 3] = 0.5 * (t3 - t2)
    return taps


def _agreement(expected: np.ndarray, frame: np.ndarray, tolerance: float) -> np.ndarray:
    """``(h, w)`` uint8: 1 where the LR ``frame`` agrees with ``expected`` (both ``(h, w)`` on one grid).

    Both are smoothed by a Gaussian of 1.5 LR pixels (noise and aliasing differ from frame to
    frame; a moving object differs over an area). A misregistration by ``tolerance`` pixels
    changes a pixel by up to its gradient times ``tolerance``: disagreement is a difference
    beyond that plus 4 levels of 255 (noise, JPEG), and that area is widened by 2 pixels.
    """
    expected = cv2.GaussianBlur(expected.astype(np.float32), (0, 0), 1.5)
    difference = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 1.5) - expected
    gradient = np.hypot(cv2.Sobel(expected, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(expected, cv2.CV_32F, 0, 1, ksize=3)) / 8
    agree = (np.abs(difference) <= tolerance * gradient + 4 / 255).astype(np.uint8)
    return cv2.erode(agree, np.ones((5, 5), np.uint8))


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
    """``(N, h, w)`` uint8 data weights (a byte a sample: a phone burst's weights are as many as
    its pixels): 1 where frame k agrees with the reference frame aligned onto it
    (:func:`_agreement`), 0 where it does not (a moving object), always 1 for the reference
    (``anchor``)."""
    count, height, width = frames_y.shape
    weights = np.ones((count, height, width), dtype=np.uint8)
    for k in range(count):
        if k != anchor:
            weights[k] = _agreement(_aligned_reference(frames_y, matrices, anchor, k), frames_y[k], tolerance)
    return weights


def _total_variation_weights(image: np.ndarray, epsilon: float = 1e-3) -> np.ndarray:
    """IRLS weights ``1 / sqrt(|grad X|^2 + eps^2)`` of the Charbonnier total variation, ``(H, W)``."""
    gx, gy = _forward_differences(image)
    return 1.0 / np.sqrt(gx * gx + gy * gy + epsilon**2)


def _forward_differences(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X[:, j+1] - X[:, j], X[i+1] - X[i])``, zero at the last column and row (replicated border)."""
    gx, gy = np.zeros_like(image), np.zeros_like(image)
    np.subtract(image[:, 1:], image[:, :-1], out=gx[:, :-1])
    np.subtract(image[1:], image[:-1], out=gy[:-1])
    return gx, gy


def _gradient_operator(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``D^T diag(weights) D image`` for forward differences with a replicated border."""
    gx, gy = _forward_differences(image)
    gx *= weights
    gy *= weights
    out = -gx
    out -= gy
    out[:, 1:] += gx[:, :-1]
    out[1:] += gy[:-1]
    return out


def solve(samples: np.ndarray, weights: np.ndarray, matrix: sparse.csr_matrix, kernel: np.ndarray,
          start: np.ndarray, *, tv_weight: float, density: float | None = None, rounds: int = 4,
          cg_steps: int = 8) -> np.ndarray:
    """Minimise ``sum w (S (h * X) - y)^2 / sum w + tv_weight * sum(TV(X)) / (sum w / density)`` over X,
    from ``start``: with ``density`` the weight of samples per pixel of X (by default this
    problem's own, ``sum w / X.size``), the prior is ``tv_weight`` times the mean total variation.
    A tile of a larger problem passes the whole's density, so that its prior weighs as much as
    in the whole.

    Args:
        samples: ``(P,)`` the observed LR values ``y``; weights: ``(P,)`` their weights ``w``.
        matrix: ``S``, ``(P, H*W)`` (:func:`sampling_matrix`); kernel: ``h``'s 1-D kernel.
        start: ``(H, W)`` float32 first estimate (the bicubic upscale of the reference).
        rounds: IRLS rounds of the total variation; cg_steps: conjugate-gradient steps in each,
            preconditioned by the normal matrix's diagonal (Jacobi; its data part without the
            products of different taps). 8 preconditioned steps end nearer the minimum than
            12 plain ones did, at two thirds of the cost.

    Returns:
        ``(H, W)`` float32, not clipped.
    """
    shape = start.shape
    used = weights > 0  # the samples that count: the others cost products and change nothing
    matrix, samples, weights = matrix[used], samples[used], weights[used]
    transposed = matrix.T.tocsr()  # row-major: its products run faster than a transposed view's
    total = max(float(weights.sum()), 1.0)
    scale_data = 1.0 / total
    scale_prior = tv_weight / start.size if density is None else tv_weight * density / total

    def forward(image):  # A image, A = S h
        return matrix @ _blur(image, kernel).ravel()

    def adjoint(values):  # A^T values (h is symmetric)
        return _blur((transposed @ values).reshape(shape).astype(np.float32), kernel)

    estimate = start.astype(np.float32).copy()
    right = adjoint(weights * samples) * scale_data
    data_diagonal = _data_diagonal(transposed, weights, kernel, shape) * scale_data
    for _ in range(rounds):
        tv = _total_variation_weights(estimate).astype(np.float32)

        def normal(image):
            return adjoint(weights * forward(image)) * scale_data + scale_prior * _gradient_operator(image, tv)

        # Jacobi: the total variation's weights span three orders of magnitude (flat regions
        # weigh most), which plain conjugate gradients crawl through
        inverse = 1.0 / np.maximum(data_diagonal + scale_prior * _gradient_diagonal(tv), 1e-12)
        residual = right - normal(estimate)
        preconditioned = residual * inverse
        direction = preconditioned.copy()
        energy = float(np.vdot(residual, preconditioned))
        for _ in range(cg_steps):
            if energy < 1e-20:
                break
            step_image = normal(direction)
            alpha = energy / float(np.vdot(direction, step_image))
            estimate += alpha * direction
            residual -= alpha * step_image
            preconditioned = residual * inverse
            new_energy = float(np.vdot(residual, preconditioned))
            direction = preconditioned + (new_energy / energy) * direction
            energy = new_energy
    return estimate


def _data_diagonal(transposed: sparse.csr_matrix, weights: np.ndarray, kernel: np.ndarray, shape: tuple[int, int]
                   ) -> np.ndarray:
    """``(H, W)``: the diagonal of ``h S^T diag(weights) S h`` without the products of different
    taps (``sum_i w_i sum_k S_ik^2 h_kj^2``), from ``transposed = S^T`` (CSR): close enough to
    precondition with, and positive."""
    squared = sparse.csr_matrix((transposed.data * transposed.data, transposed.indices, transposed.indptr),
                                shape=transposed.shape)
    return _blur((squared @ weights).reshape(shape).astype(np.float32), (kernel**2).astype(np.float32))


def _gradient_diagonal(tv: np.ndarray) -> np.ndarray:
    """``(H, W)``: the diagonal of :func:`_gradient_operator` with weights ``tv``."""
    diagonal = np.zeros_like(tv)
    diagonal[:, :-1] += tv[:, :-1]
    diagonal[:, 1:] += tv[:, :-1]
    diagonal[:-1] += tv[:-1]
    diagonal[1:] += tv[:-1]
    return diagonal


def _pad(scale: int) -> int:
    """HR pixels the solve's grid extends beyond the output on each side: the widest candidate
    PSF's reach, so that every sample inside the output has its whole footprint on the grid."""
    return 2 * scale


def _sampling(matrices: np.ndarray, lr_shape: tuple[int, int], scale: int, out_shape: tuple[int, int]
              ) -> tuple[sparse.csr_matrix, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """:func:`sampling_matrix` of every frame (``lr_shape`` each) on the solve's grid, the
    ``out_shape`` HR grid widened by :func:`_pad`, and the samples' positions ``(x, y)`` there."""
    pad = _pad(scale)
    x, y = sampling_positions(matrices, lr_shape, scale, pad)
    matrix, inside = sampling_matrix(x, y, (out_shape[0] + 2 * pad, out_shape[1] + 2 * pad), margin=pad)
    return matrix, inside, (x, y)


def _solve_burst(frames_y, matrices, weights, psf, scale, tv_weight, start, used=None, sampling=None, rounds=4,
                 density=None) -> tuple[np.ndarray, dict]:
    """One solve over the frames ``used`` (default all), on the output grid widened by :func:`_pad`.

    ``frames_y``, ``weights``: ``(N, h, w)``; ``matrices``: the frames' registration against the
    output's LR grid; ``start``: ``(H, W)`` on the output grid (which sets its size);
    ``sampling``: :func:`_sampling` of ``matrices`` if already made; ``rounds``, ``density``:
    :func:`solve`'s. Returns the ``(H, W)`` estimate and ``parts``: the widened estimate, the
    sampling matrix, which samples lie inside, their positions on the widened grid, the kernel.
    """
    count = len(frames_y)
    pad = _pad(scale)
    if sampling is None:
        sampling = _sampling(matrices, frames_y.shape[1:], scale, start.shape)
    matrix, inside, positions = sampling
    w = (weights.reshape(count, -1) * inside.reshape(count, -1)).astype(np.float32)
    if used is not None:
        w[~np.isin(np.arange(count), used)] = 0
    kernel = psf_kernel(psf, scale)
    widened = cv2.copyMakeBorder(start.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    widened = solve(frames_y.reshape(-1).astype(np.float32), w.ravel(), matrix, kernel, widened, tv_weight=tv_weight,
                    density=density, rounds=rounds)
    return widened[pad:-pad, pad:-pad], {"widened": widened, "matrix": matrix, "inside": inside, "positions": positions,
                                         "kernel": kernel}


def _predicted(parts: dict, shape: tuple[int, int, int]) -> np.ndarray:
    """Every frame as a solve predicts it, ``S (h * X)``, ``shape = (N, h, w)`` (``parts`` from
    :func:`_solve_burst`; zero for the samples that are not inside)."""
    return (parts["matrix"] @ _blur(parts["widened"], parts["kernel"]).ravel()).reshape(shape)


def _window(frames_y: np.ndarray, matrices: np.ndarray, weights: np.ndarray, box: tuple[int, int, int, int]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The burst as it bears on the reference's LR window ``box = (top, left, height, width)``.

    Each frame is cut to where the window (and 2 pixels around it) lands in it, and the cuts
    are zero-padded to one shape with weight 0. Returns ``(frames, matrices, weights)``: the
    ``(N, h', w')`` cuts and their weights, and each cut's registration against the window
    (window LR pixels -> cut LR pixels).
    """
    top, left, height, width = box
    frame_height, frame_width = frames_y.shape[1:]
    xs = np.array([left - 2, left + width + 1, left - 2, left + width + 1], dtype=np.float64)
    ys = np.array([top - 2, top - 2, top + height + 1, top + height + 1], dtype=np.float64)
    cuts = []
    for matrix in matrices:
        u, v = apply(matrix, xs, ys)
        x0, x1 = int(np.clip(np.floor(u.min()), 0, frame_width)), int(np.clip(np.ceil(u.max()) + 1, 0, frame_width))
        y0, y1 = int(np.clip(np.floor(v.min()), 0, frame_height)), int(np.clip(np.ceil(v.max()) + 1, 0, frame_height))
        cuts.append((y0, max(y1, y0 + 1), x0, max(x1, x0 + 1)))
    shape = (len(frames_y), max(c[1] - c[0] for c in cuts), max(c[3] - c[2] for c in cuts))
    frames, cut_weights = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    moved = np.empty_like(matrices)
    from_window = np.array([[1.0, 0, left], [0, 1, top], [0, 0, 1]])
    for k, (y0, y1, x0, x1) in enumerate(cuts):
        y1, x1 = min(y1, frame_height), min(x1, frame_width)
        frames[k, : y1 - y0, : x1 - x0] = frames_y[k, y0:y1, x0:x1]
        cut_weights[k, : y1 - y0, : x1 - x0] = weights[k, y0:y1, x0:x1]
        moved[k] = np.array([[1.0, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ matrices[k] @ from_window
    return frames, moved, cut_weights


TILE = 160  # reference LR pixels per side of a tile of the solve: its memory and time go with it
TILE_MARGIN = 8  # reference LR pixels each tile's solve reaches into its neighbours


def solve_tiled(frames_y: np.ndarray, matrices: np.ndarray, weights: np.ndarray, psf: str, scale: int,
                tv_weight: float, start: np.ndarray, *, tile: int = TILE, workers: int = 2, rounds: int = 4
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`solve` (with ``rounds``) of the whole burst, tile by tile, in ``workers`` threads.

    The output grid is cut into equal tiles of at most ``tile x tile`` of the reference's LR
    pixels; each is solved with :data:`TILE_MARGIN` pixels of its neighbours around it (the
    samples there bind its edges as in a whole solve) and only its own part is kept. Every tile
    weighs the prior by the whole burst's sample density. Memory goes with the tile and the
    number of frames, not the frame size; a burst that fits one tile is solved whole.

    Returns ``(estimate, residuals)``: the ``(scale*h, scale*w)`` float32 estimate and, per frame,
    the weighted mean squared residual of its samples (each counted in the tile it falls in).
    """
    count, height, width = frames_y.shape
    estimate = np.empty((scale * height, scale * width), np.float32)
    pad = _pad(scale)
    density = float(weights.sum()) / estimate.size  # every tile's prior weighs as in the whole

    def one(corner: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        top, left = corner
        bottom, right = min(top + tile_height, height), min(left + tile_width, width)
        box_top, box_left = max(0, top - TILE_MARGIN), max(0, left - TILE_MARGIN)
        box_bottom, box_right = min(height, bottom + TILE_MARGIN), min(width, right + TILE_MARGIN)
        cut, moved, cut_weights = _window(frames_y, matrices, weights,
                                          (box_top, box_left, box_bottom - box_top, box_right - box_left))
        part, parts = _solve_burst(cut, moved, cut_weights, psf, scale, tv_weight,
                                   start[scale * box_top : scale * box_bottom, scale * box_left : scale * box_right],
                                   rounds=rounds, density=density)
        rows = slice(scale * (top - box_top), scale * (bottom - box_top))
        columns = slice(scale * (left - box_left), scale * (right - box_left))
        estimate[scale * top : scale * bottom, scale * left : scale * right] = part[rows, columns]
        # the samples that fall in this tile's own part (HR pixel centres +- 0.5)
        x, y = parts["positions"]
        own = ((x - pad >= columns.start - 0.5) & (x - pad < columns.stop - 0.5)
               & (y - pad >= rows.start - 0.5) & (y - pad < rows.stop - 0.5))
        w = cut_weights * parts["inside"].reshape(cut.shape) * own
        residual = _predicted(parts, cut.shape) - cut
        return np.sum(w * residual**2, axis=(1, 2)), np.sum(w, axis=(1, 2))

    tiles_down, tiles_across = -(-height // tile), -(-width // tile)  # as few as the size needs, of equal size
    tile_height, tile_width = -(-height // tiles_down), -(-width // tiles_across)
    corners = [(top, left) for top in range(0, height, tile_height) for left in range(0, width, tile_width)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        sums = list(pool.map(one, corners))
    squares, totals = np.sum([s for s, _ in sums], axis=0), np.sum([t for _, t in sums], axis=0)
    return estimate, squares / np.maximum(totals, 1.0)


PROVISIONAL_PSF = "box+0.3"  # the first solve's, with "auto": it only has to carry the motion refinement
PRUNE_RATIO = 1.1  # candidates within this factor of the best first-fold mean squared error go on
NOISE_CALIBRATION = 2 / 255  # the residual (Y units) at which ``tv_weight`` applies as given


def choose_psf(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, weights: np.ndarray, *, scale: int,
               tv_weight: float, candidates=AUTO_CANDIDATES, crop: int = 64, workers: int = 2) -> tuple[str, dict]:
    """The PSF the burst shows, by cross-validation.

    The frames but the reference are dealt into :data:`FOLDS` folds; each fold is held out in
    turn while the others are solved with each candidate on a central ``crop x crop`` LR window,
    and each candidate's error predicting the held-out frames is measured frame by frame (every
    frame is held out once). The candidate with the smallest mean error wins. Only the
    candidates within :data:`PRUNE_RATIO` of the best mean squared error on the first fold are
    solved on the others (the rest report their first fold's error). (A
    one-standard-error rule that gave near-ties to the milder PSF was dropped: on Set5 bursts of
    both protocols one step too wide and one step too mild cost about the same, 0.1-2.6 dB, and
    the rule chose ``box`` for an SR-protocol burst made with MATLAB's kernel, 1.4 dB below the
    minimum's ``box+0.2``.)

    Returns ``(psf, errors)``: ``errors`` maps each candidate to its held-out weighted RMS error
    (Y units).
    """
    count, height, width = frames_y.shape
    top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
    box = (top, left, min(crop, height), min(crop, width))
    window, moved, sub_weights = _window(frames_y, matrices, weights, box)
    others = [k for k in range(count) if k != anchor]
    folds = [others[fold::FOLDS] for fold in range(FOLDS)] if len(others) > FOLDS else []
    if not folds:
        return candidates[0], {}
    start = upscale(frames_y[anchor, top : top + box[2], left : left + box[3]], scale)
    sampling = _sampling(moved, window.shape[1:], scale, start.shape)  # the same for every candidate

    def held_out_errors(fold_and_psf: tuple[list[int], str]) -> np.ndarray:
        held_out, psf = fold_and_psf
        used = [k for k in range(count) if k not in held_out]
        _, parts = _solve_burst(window, moved, sub_weights, psf, scale, tv_weight, start, used, sampling)
        w = (sub_weights * parts["inside"].reshape(window.shape))[held_out]
        residual = _predicted(parts, window.shape)[held_out] - window[held_out]
        return np.sum(w * residual**2, axis=(1, 2)) / np.maximum(w.sum(axis=(1, 2)), 1.0)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        first = dict(zip(candidates, pool.map(held_out_errors, [(folds[0], psf) for psf in candidates])))
        # a candidate far behind on the first fold cannot catch up: only the close ones go on
        best = min(float(np.mean(values)) for values in first.values())
        close = [psf for psf in candidates if np.mean(first[psf]) <= PRUNE_RATIO * best]
        rest = list(pool.map(held_out_errors, [(fold, psf) for psf in close for fold in folds[1:]]))
    per_frame = {psf: [values] for psf, values in first.items()}
    for i, psf in enumerate(close):
        per_frame[psf] += rest[i * (len(folds) - 1) : (i + 1) * (len(folds) - 1)]
    errors = {psf: float(np.sqrt(np.mean(np.concatenate(values)))) for psf, values in per_frame.items()}
    return min(close, key=errors.get), errors


def refine_motion(frames_y: np.ndarray, matrices: np.ndarray, estimate: np.ndarray, kernel: np.ndarray, anchor: int,
                  *, scale: int, model: str, workers: int = 2) -> np.ndarray:
    """Every frame's registration refined against the solution (``estimate``, ``(scale*h, scale*w)``)
    blurred by the PSF's ``kernel``; the reference's stays the identity.

    Each frame is aligned by robust Lucas-Kanade (:func:`multisr.alignment.align`, Tukey's
    weights: what moves on its own has no say) in ``model`` to the blurred solution, which
    predicts every LR sample: noise-free and not aliased, unlike the reference frame that
    registration had to use. A frame keeps its matrix when the fit fails. Frames run in
    ``workers`` threads, sharing the blurred solution's gradients.
    """
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    pad = _pad(scale)
    blurred = _blur(cv2.copyMakeBorder(estimate.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE), kernel)
    c = _to_grid(scale, pad)
    blurred_gradients = gradients(blurred)  # once for every frame's fit
    refined = matrices.copy()

    def one(k: int) -> None:  # the frame's LR pixels -> the solve's grid, and back
        fit = align(frames_y[k], blurred, c @ np.linalg.inv(matrices[k]), model=model, smoothings=(0.0,), border=2,
                    image_gradients=blurred_gradients)
        if fit is not None:
            found = np.linalg.inv(fit.matrix) @ c
            refined[k] = found / found[2, 2]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, [k for k in range(len(frames_y)) if k != anchor]))
    return refined


@threadpool_limits.wrap(limits=1, user_api="blas")  # the tiles and folds are the parallel work; see register_burst
def reconstruct(
    frames_y: np.ndarray,
    matrices: np.ndarray,
    *,
    anchor: int,
    scale: int = 3,
    psf: str = "auto",
    tv_weight: float = 0.0005,
    model: str = "homography",
    refine_rounds: int = 1,
    tile: int = TILE,
    workers: int = 2,
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
            :data:`multisr.alignment.MODELS`).
        refine_rounds: how many times the motion is refined and the solve repeated (0: never).
        tile, workers: the solve runs in tiles of ``tile x tile`` LR pixels, ``workers`` at a
            time (:func:`solve_tiled`); the result depends on ``tile`` only within a few
            levels of 255 along the tiles' seams.
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
    choose = psf == "auto"
    if not choose:
        parse_psf(psf)
    elif refine_rounds:  # chosen once the motion is refined (below); till then, a PSF in the middle
        psf = PROVISIONAL_PSF
    else:
        psf, info["psf_errors"] = choose_psf(frames_y, matrices, anchor, weights, scale=scale, tv_weight=tv_weight,
                                             workers=workers)

    def solved(prior: float, start: np.ndarray, rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
        return solve_tiled(frames_y, matrices, weights, psf, scale, prior, start, tile=tile, workers=workers,
                           rounds=rounds)

    # when another solve follows, the first only has to show the noise and carry the motion refinement
    estimate, residuals = solved(tv_weight, upscale(frames_y[anchor], scale), 2 if refine_rounds else 4)
    noise = float(np.sqrt(np.median(residuals)))  # the noise and model error the burst shows
    # a noisier burst (or one that fits the model less well) needs a stronger prior: the MAP
    # weight of the prior grows with the noise variance; never weaker than calibrated
    stronger = tv_weight * max(1.0, (noise / NOISE_CALIBRATION) ** 2)
    info["residual_levels"], info["tv_weight"] = round(noise * 255, 2), stronger
    if progress is not None:
        progress(1)
    for _ in range(refine_rounds):
        matrices = refine_motion(frames_y, matrices, estimate, psf_kernel(psf, scale), anchor, scale=scale, model=model,
                                 workers=workers)
        frames_y, fits = match_brightness(originals, matrices, anchor)
        weights = frame_weights(frames_y, matrices, anchor)
        if choose:  # misregistration looks like blur to the cross-validation: the refined motion has less
            psf, info["psf_errors"] = choose_psf(frames_y, matrices, anchor, weights, scale=scale,
                                                 tv_weight=tv_weight, workers=workers)
        estimate, _ = solved(stronger, estimate)
        if progress is not None:
            progress(1)
    if refine_rounds == 0 and stronger > tv_weight:
        estimate, _ = solved(stronger, estimate)
    info["psf"] = psf
    info["kept"] = [round(float(w.mean()), 3) for w in weights]
    info["brightness"] = [[round(float(g), 4), round(float(o), 4)] for g, o in fits]
    return estimate, matrices, info

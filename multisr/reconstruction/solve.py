"""The multi-frame least-squares solve: conjugate gradients under a total-variation prior, in tiles.

:func:`solve` minimises ``sum w (S (h * X) - y)^2 / sum w + tv_weight * mean TV(X)`` by
iteratively reweighted least squares (a few rounds of Jacobi-preconditioned conjugate
gradients with the total variation's weights frozen). :func:`solve_tiled` runs it over a whole
burst in tiles of the reference's LR grid, one per core at a time, so memory goes with the tile,
not the frame. Pure numpy, scipy and OpenCV on the CPU.
"""
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from scipy import sparse

from ..imaging.geometry import apply
from .observation import blur, burst_sampling, grid_pad, psf_kernel

__all__ = ["solve", "solve_burst", "predicted_frames", "cut_window", "solve_tiled", "TILE", "TILE_MARGIN"]

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
        matrix: ``S``, ``(P, H*W)`` (:func:`multisr.reconstruction.observation.sampling_matrix`); kernel: ``h``'s 1-D kernel.
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
    if not used.all():
        matrix, samples, weights = matrix[used], samples[used], weights[used]
    transposed = matrix.T  # a view (CSC): its products scatter as fast as a CSR copy's gather, without the copy
    total = max(float(weights.sum()), 1.0)
    scale_data = 1.0 / total
    scale_prior = tv_weight / start.size if density is None else tv_weight * density / total

    def data_normal(image):  # A^T W A image / sum w, A = S h (h is symmetric)
        values = matrix @ blur(image, kernel).ravel()
        values *= weights
        return blur((transposed @ values).reshape(shape).astype(np.float32, copy=False), kernel) * scale_data

    estimate = start.astype(np.float32).copy()
    right = blur((transposed @ (weights * samples)).reshape(shape).astype(np.float32), kernel) * scale_data
    squared = sparse.csr_matrix((matrix.data * matrix.data, matrix.indices, matrix.indptr), shape=matrix.shape)
    # the diagonal of A^T W A without the products of different taps: close enough to
    # precondition with, and positive
    data_diagonal = blur((squared.T @ weights).reshape(shape).astype(np.float32), kernel**2) * scale_data
    residual = right - data_normal(estimate)  # of the data term; each round subtracts its own prior's
    for _ in range(rounds):
        tv = _total_variation_weights(estimate).astype(np.float32)

        def normal(image):
            return data_normal(image) + scale_prior * _gradient_operator(image, tv)

        # Jacobi: the total variation's weights span three orders of magnitude (flat regions
        # weigh most), which plain conjugate gradients crawl through
        inverse = 1.0 / np.maximum(data_diagonal + scale_prior * _gradient_diagonal(tv), 1e-12)
        prior_part = scale_prior * _gradient_operator(estimate, tv)
        residual -= prior_part  # this round's residual, without another product with A
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
        residual += scale_prior * _gradient_operator(estimate, tv)  # back to the data term's alone
    return estimate


def _gradient_diagonal(tv: np.ndarray) -> np.ndarray:
    """``(H, W)``: the diagonal of :func:`_gradient_operator` with weights ``tv``."""
    diagonal = np.zeros_like(tv)
    diagonal[:, :-1] += tv[:, :-1]
    diagonal[:, 1:] += tv[:, :-1]
    diagonal[:-1] += tv[:-1]
    diagonal[1:] += tv[:-1]
    return diagonal


def solve_burst(frames_y, matrices, weights, psf, scale, tv_weight, start, used=None, sampling=None, rounds=4,
                 density=None, cg_steps=8) -> tuple[np.ndarray, dict]:
    """One solve over the frames ``used`` (default all), on the output grid widened by :func:`multisr.reconstruction.observation.grid_pad`.

    ``frames_y``, ``weights``: ``(N, h, w)``; ``matrices``: the frames' registration against the
    output's LR grid; ``start``: ``(H, W)`` on the output grid (which sets its size);
    ``sampling``: :func:`multisr.reconstruction.observation.burst_sampling` of ``matrices`` if already made (by
    default made here for the samples of positive weight); ``rounds``, ``density``,
    ``cg_steps``: :func:`solve`'s. Returns the ``(H, W)`` estimate and ``parts``: the widened
    estimate, the sampling matrix, which samples have a row in it (``"inside"``, flat), every
    sample's position on the widened grid, the kernel.
    """
    count = len(frames_y)
    pad = grid_pad(scale)
    if sampling is None:
        sampling = burst_sampling(matrices, frames_y.shape[1:], scale, start.shape, keep=weights > 0)
    matrix, inside, positions = sampling
    w = weights.reshape(count, -1).astype(np.float32)
    if used is not None:
        w[~np.isin(np.arange(count), used)] = 0
    kernel = psf_kernel(psf, scale)
    widened = cv2.copyMakeBorder(start.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    widened = solve(frames_y.reshape(-1)[inside].astype(np.float32), w.ravel()[inside], matrix, kernel, widened,
                    tv_weight=tv_weight, density=density, rounds=rounds, cg_steps=cg_steps)
    return widened[pad:-pad, pad:-pad], {"widened": widened, "matrix": matrix, "inside": inside, "positions": positions,
                                         "kernel": kernel}


def predicted_frames(parts: dict, shape: tuple[int, int, int]) -> np.ndarray:
    """Every frame as a solve predicts it, ``S (h * X)``, ``shape = (N, h, w)`` (``parts`` from
    :func:`solve_burst`; zero for the samples without a row)."""
    predicted = np.zeros(int(np.prod(shape)), np.float32)
    predicted[parts["inside"]] = parts["matrix"] @ blur(parts["widened"], parts["kernel"]).ravel()
    return predicted.reshape(shape)


def cut_window(frames_y: np.ndarray, matrices: np.ndarray, weights: np.ndarray, box: tuple[int, int, int, int]
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
                tv_weight: float, start: np.ndarray, *, tile: int = TILE, workers: int = 2, rounds: int = 4, cg_steps: int = 8
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
    pad = grid_pad(scale)
    density = float(weights.sum()) / estimate.size  # every tile's prior weighs as in the whole

    def one(corner: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        top, left = corner
        bottom, right = min(top + tile_height, height), min(left + tile_width, width)
        box_top, box_left = max(0, top - TILE_MARGIN), max(0, left - TILE_MARGIN)
        box_bottom, box_right = min(height, bottom + TILE_MARGIN), min(width, right + TILE_MARGIN)
        cut, moved, cut_weights = cut_window(frames_y, matrices, weights,
                                          (box_top, box_left, box_bottom - box_top, box_right - box_left))
        part, parts = solve_burst(cut, moved, cut_weights, psf, scale, tv_weight,
                                   start[scale * box_top : scale * box_bottom, scale * box_left : scale * box_right],
                                   rounds=rounds, density=density, cg_steps=cg_steps)
        rows = slice(scale * (top - box_top), scale * (bottom - box_top))
        columns = slice(scale * (left - box_left), scale * (right - box_left))
        estimate[scale * top : scale * bottom, scale * left : scale * right] = part[rows, columns]
        # the samples that fall in this tile's own part (HR pixel centres +- 0.5)
        x, y = parts["positions"]
        own = ((x - pad >= columns.start - 0.5) & (x - pad < columns.stop - 0.5)
               & (y - pad >= rows.start - 0.5) & (y - pad < rows.stop - 0.5))
        w = cut_weights * parts["inside"].reshape(cut.shape) * own
        residual = predicted_frames(parts, cut.shape) - cut
        return np.sum(w * residual**2, axis=(1, 2)), np.sum(w, axis=(1, 2))

    tiles_down, tiles_across = -(-height // tile), -(-width // tile)  # as few as the size needs, of equal size
    tile_height, tile_width = -(-height // tiles_down), -(-width // tiles_across)
    corners = [(top, left) for top in range(0, height, tile_height) for left in range(0, width, tile_width)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        sums = list(pool.map(one, corners))
    squares, totals = np.sum([s for s, _ in sums], axis=0), np.sum([t for _, t in sums], axis=0)
    return estimate, squares / np.maximum(totals, 1.0)

"""The multi-frame solve of a whole burst in tiles of the reference's LR grid.

:func:`solve_tiled` cuts the output grid into tiles, cuts each frame to where a tile (with a
margin) lands in it (:func:`cut_window`), solves each tile (:func:`multisr.reconstruction.solve.solve_burst`),
and keeps each tile's own part, so that memory goes with the tile, not the frame.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..imaging.geometry import apply, similarity_matrix
from .observation import burst_sampling, grid_pad
from .solve import predicted_frames, solve_burst

__all__ = ["cut_window", "solve_tiled", "TILE", "DEVICE_TILE", "TILE_MARGIN"]


def cut_window(frames_y: np.ndarray, matrices: np.ndarray, weights: np.ndarray, box: tuple[int, int, int, int],
               *, sites: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The burst as it bears on the reference's LR window ``box = (top, left, height, width)``.

    Each frame is cut to where the window (and 2 pixels around it) lands in it, and the cuts
    are zero-padded to one shape with weight 0. Returns ``(frames, matrices, weights)``: the
    ``(N, h', w'[, C])`` cuts (``frames_y`` may have channels) and their ``(N, h', w')`` weights, and
    each cut's registration against the window (window LR pixels -> cut LR pixels). With
    ``sites`` (``(N, h, w)``, the channel each pixel samples: a colour mosaic's), the weights
    are ``(N, h', w', C)``, each channel's zero but at its own sites.
    """
    top, left, height, width = box
    frame_height, frame_width = frames_y.shape[1:3]
    xs = np.array([left - 2, left + width + 1, left - 2, left + width + 1], dtype=np.float64)
    ys = np.array([top - 2, top - 2, top + height + 1, top + height + 1], dtype=np.float64)
    cuts = []
    for matrix in matrices:
        u, v = apply(matrix, xs, ys)
        x0, x1 = int(np.clip(np.floor(u.min()), 0, frame_width)), int(np.clip(np.ceil(u.max()) + 1, 0, frame_width))
        y0, y1 = int(np.clip(np.floor(v.min()), 0, frame_height)), int(np.clip(np.ceil(v.max()) + 1, 0, frame_height))
        cuts.append((y0, max(y1, y0 + 1), x0, max(x1, x0 + 1)))
    shape = (len(frames_y), max(c[1] - c[0] for c in cuts), max(c[3] - c[2] for c in cuts))
    frames = np.zeros(shape + frames_y.shape[3:], np.float32)
    cut_weights = np.zeros(shape if sites is None else shape + frames_y.shape[3:], np.float32)
    moved = np.empty_like(matrices)
    from_window = similarity_matrix(shift=(left, top))
    for k, (y0, y1, x0, x1) in enumerate(cuts):
        y1, x1 = min(y1, frame_height), min(x1, frame_width)
        frames[k, : y1 - y0, : x1 - x0] = frames_y[k, y0:y1, x0:x1]
        if sites is None:
            cut_weights[k, : y1 - y0, : x1 - x0] = weights[k, y0:y1, x0:x1]
        else:  # each channel's weights at its own sites
            channels = np.arange(cut_weights.shape[-1])
            cut_weights[k, : y1 - y0, : x1 - x0] = (weights[k, y0:y1, x0:x1, None]
                                                    * (sites[k, y0:y1, x0:x1, None] == channels))
        moved[k] = similarity_matrix(shift=(-x0, -y0)) @ matrices[k] @ from_window
    return frames, moved, cut_weights


TILE = 160  # reference LR pixels per side of a tile of the solve on the CPU: its memory and time go with it
DEVICE_TILE = 512  # on a GPU: 20 frames' tile of it takes about 1 GB there
TILE_MARGIN = 8  # reference LR pixels each tile's solve reaches into its neighbours


def solve_tiled(frames_y: np.ndarray, matrices: np.ndarray, weights: np.ndarray, psf: str | np.ndarray | tuple, scale: int,
                tv_weight: float | tuple, start: np.ndarray, *, tile: int = TILE, workers: int = 2, rounds: int = 4,
                cg_steps: int = 8, device: str | torch.device = "cpu", sites: np.ndarray | None = None,
                differences_from: int | None = None, guide: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`multisr.reconstruction.solve.solve` (with ``rounds``, ``cg_steps``) of the whole burst on
    ``device``, tile by tile, in ``workers`` threads on the CPU, one at a time on a GPU.
    ``frames_y`` ``(N, h, w)``, or ``(N, h, w, C)`` with ``start`` ``(H, W, C)``: C channels solved
    one after another on each tile, with one sampling matrix (``tv_weight`` may then give each
    channel's prior weight). ``psf``: a PSF's name, its 1-D kernel or a pair (along x, along y). ``guide``: ``(scale*h,
    scale*w)``, the image that guides every channel's prior (:func:`multisr.reconstruction.solve.solve`).

    A colour mosaic: ``sites`` ``(N, h, w)`` says which channel each LR pixel samples; each
    channel is solved from its own sites only. With ``differences_from`` (a channel), that
    channel is solved first and every other one as its difference from it: from its samples less
    what the first channel's solution predicts there, from ``start`` (then the difference's), so
    that its prior binds the difference (smooth in natural images), not the channel; the
    estimate's other channels are those differences.

    The output grid is cut into equal tiles of at most ``tile x tile`` of the reference's LR
    pixels; each is solved with :data:`TILE_MARGIN` pixels of its neighbours around it (the
    samples there bind its edges as in a whole solve) and only its own part is kept. Every tile
    weighs the prior by the whole burst's sample density (of all channels' samples: each
    channel's prior weighs as in a solve from every sample). Memory goes with the tile and the
    number of frames, not the frame size; a burst that fits one tile is solved whole.

    Returns ``(estimate, residuals)``: the ``(scale*h, scale*w[, C])`` float32 estimate and, per
    frame, the weighted mean squared residual of its samples (each counted in the tile it falls
    in; of all channels together).
    """
    one_channel = frames_y.ndim == 3
    if one_channel:
        frames_y, start = frames_y[..., None], start[..., None]
    count, height, width, channels = frames_y.shape
    priors = np.broadcast_to(np.asarray(tv_weight, np.float64), (channels,))
    order = list(range(channels))
    if differences_from is not None:
        order.remove(differences_from)
        order.insert(0, differences_from)
    estimate = np.empty((scale * height, scale * width, channels), np.float32)
    pad = grid_pad(scale)
    per_channel = sites is None  # each channel has every sample, or its sites' alone
    density = float(weights.sum()) / (estimate.size / channels)  # each tile's prior weighs as in the whole

    def one(corner: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        top, left = corner
        bottom, right = min(top + tile_height, height), min(left + tile_width, width)
        box_top, box_left = max(0, top - TILE_MARGIN), max(0, left - TILE_MARGIN)
        box_bottom, box_right = min(height, bottom + TILE_MARGIN), min(width, right + TILE_MARGIN)
        cut, moved, cut_weights = cut_window(frames_y, matrices, weights,
                                             (box_top, box_left, box_bottom - box_top, box_right - box_left),
                                             sites=sites)
        window = (slice(scale * box_top, scale * box_bottom), slice(scale * box_left, scale * box_right))
        tile_start = start[window]
        tile_guide = None if guide is None else guide[window]
        rows = slice(scale * (top - box_top), scale * (bottom - box_top))
        columns = slice(scale * (left - box_left), scale * (right - box_left))
        shape = cut.shape[:3]
        # one sampling matrix for every channel, with rows for the samples that count in any
        sampling = burst_sampling(moved, shape[1:], scale, tile_start.shape[:2],
                                  keep=cut_weights > 0 if per_channel else cut_weights.max(axis=-1) > 0)
        x, y = sampling[2]  # the samples that fall in this tile's own part (HR pixel centres +- 0.5)
        own = ((x - pad >= columns.start - 0.5) & (x - pad < columns.stop - 0.5)
               & (y - pad >= rows.start - 0.5) & (y - pad < rows.stop - 0.5)) * sampling[1].reshape(shape)
        squares, totals, base = 0.0, 0.0, None
        for channel in order:
            samples = cut[..., channel] if base is None or channel == differences_from else cut[..., channel] - base
            channel_weights = cut_weights if per_channel else cut_weights[..., channel]
            part, parts = solve_burst(samples, moved, channel_weights, psf, scale, float(priors[channel]),
                                      tile_start[..., channel], sampling=sampling, rounds=rounds, density=density,
                                      cg_steps=cg_steps, guide=tile_guide, device=device)
            estimate[scale * top : scale * bottom, scale * left : scale * right, channel] = part[rows, columns]
            predicted = predicted_frames(parts, shape)
            if channel == differences_from:
                base = predicted
            w = channel_weights * own
            squares = squares + np.sum(w * (predicted - samples) ** 2, axis=(1, 2))
            totals = totals + np.sum(w, axis=(1, 2))
        return squares, totals

    tiles_down, tiles_across = -(-height // tile), -(-width // tile)  # as few as the size needs, of equal size
    tile_height, tile_width = -(-height // tiles_down), -(-width // tiles_across)
    corners = [(top, left) for top in range(0, height, tile_height) for left in range(0, width, tile_width)]
    on_cpu = torch.device(device).type == "cpu"
    with ThreadPoolExecutor(max_workers=max(1, workers) if on_cpu else 1) as pool:
        sums = list(pool.map(one, corners))
    squares, totals = np.sum([s for s, _ in sums], axis=0), np.sum([t for _, t in sums], axis=0)
    return estimate[..., 0] if one_channel else estimate, squares / np.maximum(totals, 1.0)

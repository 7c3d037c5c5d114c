"""Chroma from the burst: Cb and Cr solved from every frame on the high-resolution grid.

Every frame samples the scene's colour at its own positions, as it samples its luma, so the
burst holds colour detail no single frame has: where the reference's chroma is aliased (colour
moire on fine patterns) or soft, the other frames disagree with it. :func:`solve_chroma` solves
each chroma channel as :func:`multisr.reconstruction.reconstruct.reconstruct` solves Y, with what
the luma solve found: its refined registration, its data weights (what moves on its own keeps the
reference's colour), its brightness fits, its PSF and its prior's weight (measured on Set5's
camera bursts: the prior 0.25 to 4 times Y's changed the mean RGB PSNR by 0.06 dB; 16 times lost
0.16), one round of the total variation each (:data:`CHROMA_ROUNDS`).

What it does not model: a JPEG's chroma subsampling (4:2:0, most cameras' and phones'), which
blurs chroma over 2x2 LR pixels beyond Y's PSF. On JPEG bursts the chroma gains less for it.
"""
import numpy as np

from ..imaging.resize import upscale
from .tiles import solve_tiled

__all__ = ["solve_chroma", "CHROMA_ROUNDS", "CHROMA_STEPS"]

CHROMA_CENTRE = 128 / 255  # Cb and Cr of grey (BT.601): an exposure change scales chroma about it
CHROMA_ROUNDS = 1  # rounds of the total variation of each channel's solve, from the bicubic start
CHROMA_STEPS = 8  # conjugate-gradient steps in each


def solve_chroma(chroma: np.ndarray, matrices: np.ndarray, weights: np.ndarray, gains: np.ndarray, *, anchor: int,
                 psf: str, scale: int, tv_weight: float, tile: int, workers: int, device: str = "cpu") -> np.ndarray:
    """Cb and Cr of the reference ``chroma[anchor]`` at ``scale`` x, solved from every frame.

    Args:
        chroma: ``(N, h, w, 2)`` float32 Cb, Cr (BT.601, [0, 1]) of the frames that take part.
        matrices: ``(N, 3, 3)`` their registration (the luma solve's refined matrices).
        weights: ``(N, h, w)`` the luma solve's data weights (0 where a frame disagrees).
        gains: ``(N,)`` each frame's brightness gain against the reference (luma's fit): an
            exposure change scales chroma about :data:`CHROMA_CENTRE` by the same factor.
        psf, scale, tv_weight, tile, workers, device: as the luma solve's (``tv_weight`` the
            prior's weight that solve used).

    Returns:
        ``(scale*h, scale*w, 2)`` float32 Cb, Cr, not clipped.
    """
    centred = (chroma - CHROMA_CENTRE) / np.asarray(gains, np.float32)[:, None, None, None]
    start = np.stack([upscale(chroma[anchor, ..., channel], scale) for channel in range(2)], axis=-1) - CHROMA_CENTRE
    # both channels tile by tile, with one sampling matrix a tile
    solved, _ = solve_tiled(centred, matrices, weights, psf, scale, tv_weight, start, tile=tile, workers=workers,
                            rounds=CHROMA_ROUNDS, cg_steps=CHROMA_STEPS, device=device)
    return solved + CHROMA_CENTRE

"""The burst demosaics itself: linear RGB solved on the high-resolution grid from the frames' mosaics.

A RAW frame samples one colour per pixel (its Bayer site), and the frames of a hand-held burst
land their sites at other places of the scene: together they sample every colour densely, which
no single frame does (Farsiu, Elad and Milanfar 2006; Wronski et al. 2019). :func:`solve_mosaic`
solves the three colours of the scene from the sites themselves, through the same model as luma
(:mod:`multisr.reconstruction.reconstruct`): each sample sees its colour of the image, blurred by
the PSF, at the frame's registered position. It takes what the luma solve found (refined
registration, data weights: what moves on its own keeps the reference's samples), and:

- green (half the sites) first, then red and blue as their differences from green
  (:func:`multisr.reconstruction.tiles.solve_tiled` with ``differences_from``): the prior binds
  the colour differences, which are smooth where the luminance has edges, so red and blue take
  their detail from green's sites and colour fringes are held down (:data:`DIFFERENCE_PRIOR`);
- brightness: each frame's gain and offset against the reference, fitted on its linear light;
- the start and the fill: the library's demosaic of each frame (in linear camera RGB) stands at
  the sites of the other colours, with weight 0; only the start of the solve sees it.

Values are linear, white-balanced camera RGB (white 1), as :class:`multisr.storage.raw.RawFrame`
gives them; :func:`multisr.imaging.develop.develop` takes the result to sRGB.
"""
import numpy as np

from ..imaging.resize import upscale
from .agreement import match_brightness
from .tiles import solve_tiled

__all__ = ["solve_mosaic", "filled_mosaic", "DIFFERENCE_PRIOR", "GREEN"]

GREEN = 1  # the channel solved first: a Bayer sensor's densest
DIFFERENCE_PRIOR = 1.0  # the prior on the colour differences, times the green's
_LIGHT = np.array([0.25, 0.5, 0.25], np.float32)  # a mosaic's light: its 2x2 pattern's mean


def filled_mosaic(mosaic: np.ndarray, colours: np.ndarray, developed: np.ndarray) -> np.ndarray:
    """``(..., h, w, 3)`` float32: ``developed`` (the library's demosaic, linear camera RGB; changed
    in place when it is float32) with each mosaic sample (``mosaic`` ``(..., h, w)``) in its
    colour's channel (``colours``, ``(..., h, w)``)."""
    filled = np.asarray(developed, np.float32)
    for channel in range(3):
        np.copyto(filled[..., channel], mosaic, where=colours == channel)
    return filled


def solve_mosaic(filled: np.ndarray, colours: np.ndarray, matrices: np.ndarray, weights: np.ndarray, *, anchor: int,
                 psf: str, scale: int, tv_weight: float, tile: int, workers: int, device: str = "cpu",
                 rounds: int = 4) -> tuple[np.ndarray, dict]:
    """Linear RGB of the reference's scene at ``scale`` x, solved from every frame's mosaic.

    Args:
        filled: ``(N, h, w, 3)`` :func:`filled_mosaic` of the frames that take part; its
            brightness is matched to the reference's in place.
        colours: ``(N, h, w)`` uint8 each pixel's colour (0 R, 1 G, 2 B).
        matrices: ``(N, 3, 3)`` their registration (the luma solve's refined matrices).
        weights: ``(N, h, w)`` the luma solve's data weights (0 where a frame disagrees).
        psf, scale, tv_weight, tile, workers, device: as the luma solve's (``tv_weight`` green's;
            the differences' is :data:`DIFFERENCE_PRIOR` times it).
        rounds: rounds of the total variation of each channel's solve.

    Returns:
        ``(rgb, info)``: ``(scale*h, scale*w, 3)`` float32 linear camera RGB, not clipped;
        ``info`` with each frame's ``(gain, offset)`` (``"brightness"``).
    """
    _, fits = match_brightness(filled @ _LIGHT, matrices, anchor, workers=workers)
    corrected = filled  # in place: a 20-frame burst's filled mosaics are its frames' size again
    corrected -= fits[:, 1, None, None, None].astype(np.float32)
    corrected /= fits[:, 0, None, None, None].astype(np.float32)
    start = np.stack([upscale(corrected[anchor, ..., channel], scale) for channel in range(3)], axis=-1)
    for channel in range(3):
        if channel != GREEN:
            start[..., channel] -= start[..., GREEN]
    priors = [tv_weight if channel == GREEN else DIFFERENCE_PRIOR * tv_weight for channel in range(3)]
    solved, _ = solve_tiled(corrected, matrices, weights, psf, scale, priors, start, tile=tile, workers=workers,
                            rounds=rounds, device=device, sites=colours, differences_from=GREEN)
    for channel in range(3):
        if channel != GREEN:
            solved[..., channel] += solved[..., GREEN]
    return solved, {"brightness": [[round(float(g), 4), round(float(o), 4)] for g, o in fits]}

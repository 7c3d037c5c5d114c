"""Chroma from the burst: Cb and Cr solved from every frame on the high-resolution grid.

Every frame samples the scene's colour at its own positions, as it samples its luma, so the
burst holds colour detail no single frame has: where the reference's chroma is aliased (colour
moire on fine patterns) or soft, the other frames disagree with it. :func:`solve_chroma` solves
each chroma channel as :func:`multisr.reconstruction.reconstruct.reconstruct` solves Y, with what
the luma solve found: its refined registration, its data weights (what moves on its own keeps the
reference's colour), its brightness fits, its PSF and its prior's weight (measured on Set5's
camera bursts: the prior 0.25 to 4 times Y's changed the mean RGB PSNR by 0.06 dB; 16 times lost
0.16), one round of the total variation each (:data:`CHROMA_ROUNDS`).

Chroma subsampled 4:2:0 (most JPEG files, cameras' and phones', and most videos): the encoder
keeps one chroma value per 2x2 block of pixels, their mean, and the decoder interpolates between
blocks. The frames' chroma is then blurred beyond Y's PSF: :func:`subsampled_kernel` models it as
Y's PSF, then the 2x2 block's mean and the decoder's interpolation, averaged over the pixels' two
parities (a binomial of 5 LR pixels; the earlier model, a centred block mean and a 1/8, 3/4, 1/8
interpolation, was half again as wide: camera protocol RGB 29.70 / 30.07 dB at 4:2:0 / 4:2:2 with
it, 29.71 / 30.07 and CIEDE2000 3.01 -> 2.98, 2.73 -> 2.72 with this one), and the luma
solution guides the chroma prior (a vectorial total variation: a chroma edge costs less where Y
has one, since the data alone no longer place it). Measured on Set5's camera bursts (JPEG 4:2:0,
`multisr bench quality --protocol camera`), mean RGB PSNR: through Y's PSF 28.94 dB; with the
block's mean 29.18; with the interpolation's blur too 29.46; in two rounds of 16 steps 29.53; the
guide weighing Y 0.1 / 0.25 / 0.5 / 1 times: 29.61 / 29.63 / 29.62 / 29.57; with 0.25, two rounds
of 8 steps 29.61 (16 steps cost 5 s more of reconstruct on a 20-frame 640x480 JPEG burst, 23.1
against 18.2 s; chroma through Y's PSF 15.7 s). Y-PSNR within 0.01 dB throughout. On frames with
full chroma (the SR protocol's) the guide lost 0.004 dB: it is not used there.

Chroma subsampled 4:2:2 (many cameras' JPEG files: halved along x only) is seen through that
kernel along x and Y's PSF along y. On the camera protocol's bursts coded 4:2:2 instead (OpenCV's
JPEG at quality 92, every burst of Set5, ``run_frames`` with each setting): RGB PSNR 29.51 dB as
full chroma, 29.14 through the 4:2:0 model, 29.98 through the 4:2:2 one (better on every image).
"""
import numpy as np

from ..imaging.resize import upscale
from .observation import psf_kernel
from .tiles import solve_tiled

__all__ = ["solve_chroma", "subsampled_kernel", "CHROMA_ROUNDS", "CHROMA_STEPS", "SUBSAMPLED_ROUNDS",
           "SUBSAMPLED_STEPS", "GUIDE_WEIGHT", "SUBSAMPLINGS"]

CHROMA_CENTRE = 128 / 255  # Cb and Cr of grey (BT.601): an exposure change scales chroma about it
CHROMA_ROUNDS = 1  # rounds of the total variation of each channel's solve, from the bicubic start
CHROMA_STEPS = 8  # conjugate-gradient steps in each
SUBSAMPLED_ROUNDS, SUBSAMPLED_STEPS = 2, 8  # subsampled chroma's: its wider kernel converges more slowly
GUIDE_WEIGHT = 0.25  # the luma guide's weight in subsampled chroma's prior
SUBSAMPLINGS = ("4:2:0", "4:2:2")  # the chroma subsamplings modelled: halved along both axes, along x


def subsampled_kernel(psf: str, scale: int) -> np.ndarray:
    """The 1-D kernel (HR pixels, odd length, sum 1) through which subsampled chroma sees the image
    along a halved axis: ``psf``'s (the LR pixels' chroma), then the encoder's mean over blocks of 2
    LR pixels and the decoder's interpolation between blocks, libjpeg's "fancy" upsampling (a pixel
    weighs its own block 3/4 and the next block on its side 1/4). A pixel's block starts at it or
    ends at it as its column is even or odd; over both, it weighs the LR pixels from 2 before it
    to 2 after it 1/16, 4/16, 6/16, 4/16, 1/16 (taps ``scale`` HR pixels apart)."""
    neighbours = np.zeros(4 * scale + 1)
    neighbours[::scale] = np.array([1, 4, 6, 4, 1]) / 16
    kernel = np.convolve(psf_kernel(psf, scale).astype(np.float64), neighbours)
    return (kernel / kernel.sum()).astype(np.float32)


def solve_chroma(chroma: np.ndarray, matrices: np.ndarray, weights: np.ndarray, gains: np.ndarray, *, anchor: int,
                 psf: str, scale: int, tv_weight: float, tile: int, workers: int, device: str = "cpu",
                 subsampling: str | None = None, luma: np.ndarray | None = None) -> np.ndarray:
    """Cb and Cr of the reference ``chroma[anchor]`` at ``scale`` x, solved from every frame.

    Args:
        chroma: ``(N, h, w, 2)`` float32 Cb, Cr (BT.601, [0, 1]) of the frames that take part.
        matrices: ``(N, 3, 3)`` their registration (the luma solve's refined matrices).
        weights: ``(N, h, w)`` the luma solve's data weights (0 where a frame disagrees).
        gains: ``(N,)`` each frame's brightness gain against the reference (luma's fit): an
            exposure change scales chroma about :data:`CHROMA_CENTRE` by the same factor.
        psf, scale, tv_weight, tile, workers, device: as the luma solve's (``tv_weight`` the
            prior's weight that solve used).
        subsampling: ``"4:2:0"`` (chroma halved along both axes) or ``"4:2:2"`` (along x), or
            ``None`` (full chroma). Subsampled chroma is seen through :func:`subsampled_kernel`
            along the halved axes, its prior guided by ``luma`` (``(scale*h, scale*w)``, the luma
            solution, weighing :data:`GUIDE_WEIGHT`), in :data:`SUBSAMPLED_ROUNDS` rounds of
            :data:`SUBSAMPLED_STEPS` steps.

    Returns:
        ``(scale*h, scale*w, 2)`` float32 Cb, Cr, not clipped.
    """
    centred = (chroma - CHROMA_CENTRE) / np.asarray(gains, np.float32)[:, None, None, None]
    start = np.stack([upscale(chroma[anchor, ..., channel], scale) for channel in range(2)], axis=-1) - CHROMA_CENTRE
    options = {"rounds": CHROMA_ROUNDS, "cg_steps": CHROMA_STEPS}
    if subsampling is not None:
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling: expected one of {', '.join(SUBSAMPLINGS)} or None, got {subsampling!r}")
        halved = subsampled_kernel(psf, scale)
        psf = (halved, halved if subsampling == "4:2:0" else psf_kernel(psf, scale))  # along x, along y
        options = {"rounds": SUBSAMPLED_ROUNDS, "cg_steps": SUBSAMPLED_STEPS, "guide": GUIDE_WEIGHT * luma}
    # both channels tile by tile, with one sampling matrix a tile
    solved, _ = solve_tiled(centred, matrices, weights, psf, scale, tv_weight, start, tile=tile, workers=workers,
                            device=device, **options)
    return solved + CHROMA_CENTRE

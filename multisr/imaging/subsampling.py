"""How a burst's chroma was stored, told from its pixels: 4:4:4, 4:2:2 or 4:2:0.

Frames exported from a video or a phone's JPEG burst as PNG say nothing of their chroma, but their
pixels do. A decoder rebuilds chroma stored at half resolution along an axis by interpolating
between the stored samples (nearest, linear, libjpeg's "fancy" triangle, swscale's bicubic: every
one a linear, shift-invariant filter), so every other pixel along that axis is a fixed linear
function of its neighbours: predicted from the even samples by one short filter fitted by least
squares, the odd samples of subsampled chroma leave only the rounding of the 8-bit decode, while
full chroma leaves its finest detail. :func:`detect_chroma_subsampling` fits that prediction along
x and along y, on both phases (a window cut from a frame may start at an odd pixel), and compares
the residual with the rounding floor of an 8-bit decode (:func:`rounding_floor`).

JPEG coding at low quality removes full chroma's finest detail too, but block by block: what is
left of it is at the 8x8 blocks' edges, where a subsampled decode interpolates. The residual is
therefore averaged over the four odd positions modulo 8 and the largest taken, so a 4:4:4 JPEG
whose chroma is smooth inside its blocks still shows its blocks' seams. Pixels next to a clipped
channel are left out (clipping after the colour conversion adds luma's detail to chroma), and an
axis along which the chroma has too little structure to tell (a grey scene) is not called halved:
a burst is called subsampled only on evidence, never by default.

Measured on Set5 and every other T91 image coded by OpenCV and Pillow at qualities 70 to 98 and
by video codecs (``multisr bench subsampling``): see that command's table in the README.
"""
from dataclasses import dataclass

import numpy as np

from .color import rgb_to_ycbcr

__all__ = ["SubsamplingEvidence", "detect_chroma_subsampling", "rounding_floor", "HALVED_RESIDUAL", "MIN_STRUCTURE"]

TAPS = 8  # even samples (4 on each side) that predict the odd one between them
HALVED_RESIDUAL = 2.7  # an axis is halved where the largest residual is at most this many floors
MIN_STRUCTURE = 12.0  # ... and the chroma's structure at half resolution at least this many floors
MIN_SAMPLES = 500  # odd samples per position class below which an axis is not judged
MAX_SAMPLES = 100_000  # odd samples per frame and axis used (rows evenly spaced above it)
EDGE_FRACTION = 0.1  # the odd samples across the largest chroma steps: full chroma's residual is there
MAX_FRAMES = 8  # frames of a burst examined at most (evenly spaced) ...
ENOUGH_SAMPLES = 150_000  # ... until this many odd samples per axis
# Cb + Cr rounding variance of an 8-bit decode, in least significant bits squared: the decoder's
# YCbCr rounding (1/12 per channel on JPEG's full-range scale, (224/255)^2 on this package's) and
# the RGB rounding (1/12 per channel, through rgb_to_ycbcr's Cb and Cr rows)
_CHROMA_ROWS = (37.797, 74.203, 112.0, 112.0, 93.786, 18.214)  # rgb_to_ycbcr's Cb and Cr coefficients (x 255)
_FLOOR_LSB2 = (2 * (224 / 255) ** 2 + sum(c**2 for c in _CHROMA_ROWS) / 255**2) / 12


@dataclass(frozen=True)
class SubsamplingEvidence:
    """A burst's chroma subsampling as its pixels tell it.

    ``decision``: ``"4:2:0"`` (halved along x and y), ``"4:2:2"`` (along x) or ``"4:4:4"``
    (full, or not enough chroma structure to tell). ``residual`` and ``structure``: per axis
    (x, y), the largest mean residual of the odd-from-even prediction over the four position
    classes, and the chroma's mean squared second difference at half resolution, both in units of
    :func:`rounding_floor` (``None`` where too few pixels were left to judge)."""

    decision: str
    residual: tuple[float | None, float | None]
    structure: tuple[float | None, float | None]

    def halved(self) -> tuple[bool, bool]:
        """Whether the chroma was halved along x and along y."""
        return _halved(self.residual, self.structure)

    def as_dict(self) -> dict:
        return {"decision": self.decision, "told_by": "pixels",
                "residual": [None if r is None else round(r, 3) for r in self.residual],
                "structure": [None if s is None else round(s, 2) for s in self.structure],
                "halved_residual": HALVED_RESIDUAL, "min_structure": MIN_STRUCTURE}


def _halved(residual, structure) -> tuple[bool, bool]:
    """Per axis: a residual of at most :data:`HALVED_RESIDUAL` floors, a structure of :data:`MIN_STRUCTURE` or more."""
    return tuple(r is not None and r <= HALVED_RESIDUAL and s >= MIN_STRUCTURE for r, s in zip(residual, structure))


def rounding_floor(bit_depth: int = 8) -> float:
    """The variance (in [0, 1] units squared) that rounding to ``bit_depth`` bits leaves in Cb + Cr
    of a decoded frame: the floor of a subsampled axis's residual."""
    return _FLOOR_LSB2 / (2**bit_depth - 1) ** 2


def detect_chroma_subsampling(frames, *, bit_depth: int = 8) -> SubsamplingEvidence:
    """How the chroma of ``frames`` was stored.

    Args:
        frames: a sequence (or array) of ``(H, W, 3)`` float32 RGB frames in [0, 1], as decoded; as
            many of them (evenly spaced, at most :data:`MAX_FRAMES`) as give :data:`ENOUGH_SAMPLES`.
        bit_depth: the frames' files' (8 or 16): their rounding floor.

    Returns:
        :class:`SubsamplingEvidence`; 4:2:2 means halved along x only. Chroma halved along y only
        (4:4:0, rare) is called 4:4:4, as is anything the pixels do not show (an axis with too few
        pixels to judge, or too little chroma structure).
    """
    count = len(frames)
    chosen = sorted({round(i * (count - 1) / max(MAX_FRAMES - 1, 1)) for i in range(min(count, MAX_FRAMES))})
    chosen = chosen[::2] + chosen[1::2]  # spread over the burst however many are needed
    floor = rounding_floor(bit_depth)
    residual, structure = [], []
    for axis in (1, 0):  # x, y
        sums, counts, second, second_count = np.zeros(5), np.zeros(5), 0.0, 0
        for k in chosen:
            if counts[:4].sum() >= ENOUGH_SAMPLES:
                break
            frame = np.asarray(frames[k], np.float32)
            frame = frame if axis == 1 else frame.transpose(1, 0, 2)
            frame_sums, frame_counts, frame_second, frame_second_count = _prediction_residual(frame)
            sums, counts = sums + frame_sums, counts + frame_counts
            second, second_count = second + frame_second, second_count + frame_second_count
        judged = counts.min() >= MIN_SAMPLES
        residual.append(float((sums / np.maximum(counts, 1)).max() / floor) if judged else None)
        structure.append(float(second / max(second_count, 1) / floor) if judged else None)
    halved_x, halved_y = _halved(residual, structure)
    judged = None not in residual  # an axis left unjudged leaves 4:2:0 and 4:2:2 apart untold
    decision = "4:4:4" if not judged else "4:2:0" if halved_x and halved_y else "4:2:2" if halved_x else "4:4:4"
    return SubsamplingEvidence(decision, tuple(residual), tuple(structure))


def _prediction_residual(frame: np.ndarray):
    """Along x of ``frame`` (``(H, W, 3)`` RGB): the squared residual of the best phase's
    odd-from-even prediction of Cb and Cr, summed per odd position modulo 8 (``(4,)`` sums and
    counts), and the sum and count of the squared second differences of the even samples."""
    height, width = frame.shape[:2]
    frame = frame[:: max(1, int(np.ceil(height * width / 2 / MAX_SAMPLES)))]  # rows evenly spaced
    chroma = rgb_to_ycbcr(frame)[..., 1:].astype(np.float64)
    clipped = ((frame <= 1.5 / 255) | (frame >= 253.5 / 255)).any(-1)
    best = None
    for phase in (0, 1):
        even, odd = chroma[:, phase::2], chroma[:, phase + 1 :: 2]
        even_clipped, odd_clipped = clipped[:, phase::2], clipped[:, phase + 1 :: 2]
        length = min(even.shape[1] - TAPS + 1, odd.shape[1] - TAPS // 2 + 1)
        if length < 1:
            return np.zeros(5), np.zeros(5), 0.0, 0
        target = slice(TAPS // 2 - 1, TAPS // 2 - 1 + length)  # odd[j + 3] lies between even[j + 3] and even[j + 4]
        inputs = np.stack([even[:, k : k + length] for k in range(TAPS)], axis=2)  # (rows, length, TAPS, 2)
        usable = ~(np.stack([even_clipped[:, k : k + length] for k in range(TAPS)], axis=2).any(2)
                   | odd_clipped[:, target])
        if not usable.any():
            return np.zeros(5), np.zeros(5), 0.0, 0
        squared = np.zeros(usable.shape)
        for channel in range(2):
            design = np.concatenate([inputs[..., channel][usable], np.ones((int(usable.sum()), 1))], axis=1)
            wanted = odd[:, target, channel][usable]
            filter_, *_ = np.linalg.lstsq(design, wanted, rcond=None)
            squared[usable] += (design @ filter_ - wanted) ** 2
        position = (np.arange(length) + TAPS // 2 - 1) % 4  # the odd sample's position modulo 8, halved
        classes = [usable & (position == c) for c in range(4)]
        step = np.abs(inputs[:, :, TAPS // 2] - inputs[:, :, TAPS // 2 - 1]).sum(-1)  # chroma's step across it
        classes.append(usable & (step >= np.quantile(step[usable], 1 - EDGE_FRACTION)))
        sums = np.array([squared[members].sum() for members in classes])
        counts = np.array([members.sum() for members in classes], float)
        if best is None or sums.sum() < best[0].sum():
            second = even[:, :-2] - 2 * even[:, 1:-1] + even[:, 2:]
            second_usable = ~(even_clipped[:, :-2] | even_clipped[:, 1:-1] | even_clipped[:, 2:])
            best = (sums, counts, float((second**2).sum(-1)[second_usable].sum()), int(second_usable.sum()))
    return best

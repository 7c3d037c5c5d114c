"""Where the frames of a burst agree with its reference: brightness matching and data weights.

A frame that disagrees with the reference aligned onto it by more than noise, JPEG or a small
misregistration explains (a moving object, a person) gets weight 0 there, so the solve keeps
the reference's content (Wronski et al. 2019 do this with their robustness mask); exposure
changes between frames are matched first (a gain and an offset per frame).
"""
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ..imaging.color import luma

__all__ = ["FRAME_FOOTPRINT", "TARGET_FOOTPRINT", "match_brightness", "frame_weights", "moving_region",
           "agreeing_samples", "repeated_rows"]

EDGE_BAND = 3  # LR pixels along a frame's edge whose agreement says nothing (the maps' filters reach past it)
# (smoothing, widening) in LR pixels: how far the agreement test of one pixel reaches (:func:`_agreement`).
# A whole frame's: noise and aliasing differ from frame to frame, a moving object differs over an area.
# A target's windows': the background around the target moves otherwise, and the whole frame's reach (about
# 4 px) let it decide for a plate 6 px high (plates 28-36 LR px wide, the true motion and PSF given: 0-50 %
# of a plate's pixels kept a frame; read exactly 2/12 and 8/12 with the frame's reach, 4/12 and 9/12 with this)
FRAME_FOOTPRINT = (1.5, 2)
TARGET_FOOTPRINT = (1.0, 1)


def _agreement(expected: np.ndarray, frame: np.ndarray, tolerance: float,
               footprint: tuple[float, int] = FRAME_FOOTPRINT) -> np.ndarray:
    """``(h, w)`` uint8: 1 where the LR ``frame`` agrees with ``expected`` (both ``(h, w)`` on one grid).

    Both are smoothed by a Gaussian of ``footprint[0]`` LR pixels (noise and aliasing differ from
    frame to frame). A misregistration by ``tolerance`` pixels changes a pixel by up to its
    gradient times ``tolerance``: disagreement is a difference beyond that plus 4 levels of 255
    (noise, JPEG), and that area is widened by ``footprint[1]`` pixels.
    """
    smoothing, widening = footprint
    expected = cv2.GaussianBlur(expected.astype(np.float32), (0, 0), smoothing)
    difference = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), smoothing) - expected
    gradient = np.hypot(cv2.Sobel(expected, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(expected, cv2.CV_32F, 0, 1, ksize=3)) / 8
    agree = (np.abs(difference) <= tolerance * gradient + 4 / 255).astype(np.uint8)
    return cv2.erode(agree, np.ones((2 * widening + 1, 2 * widening + 1), np.uint8))


def _aligned_reference(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, k: int) -> np.ndarray:
    """The reference frame sampled on frame k's LR grid (bilinear, border replicated), ``(h, w)``."""
    height, width = frames_y.shape[1:]
    to_reference = matrices[anchor] @ np.linalg.inv(matrices[k])  # frame k LR -> reference LR
    return cv2.warpPerspective(frames_y[anchor].astype(np.float32), to_reference, (width, height),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def match_brightness(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, *, workers: int = 1,
                     footprint: tuple[float, int] = FRAME_FOOTPRINT) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's brightness matched to the reference's: real cameras change exposure and gain
    within a burst (a few levels of 255), which a sampling model without it reads as motion.

    Frame k is fitted as ``gain * reference + offset`` (both smoothed by a Gaussian of ``footprint[0]``
    LR pixels) by least squares over the pixels away from the border, then again over the pixels
    it then agrees on (:func:`_agreement` with ``footprint``, so that a moving object does not bias the fit), and
    corrected to ``(frame - offset) / gain``. When that fit leaves fewer than a quarter of the
    pixels agreeing (a frame that is mostly something moving: the background of a window cut
    around a moving target), it starts again from the pixels that agree without any change.
    Frames are fitted by ``workers`` threads. Returns ``(frames, fits)``: the corrected
    ``(N, h, w)`` float32 and ``(N, 2)`` ``(gain, offset)`` per frame (the reference's ``(1, 0)``).
    """
    corrected = frames_y.astype(np.float32).copy()
    fits = np.tile(np.array([1.0, 0.0]), (len(frames_y), 1))
    inner = np.zeros(frames_y.shape[1:], dtype=bool)
    inner[2:-2, 2:-2] = True

    def one(k: int) -> None:
        reference = cv2.GaussianBlur(_aligned_reference(frames_y, matrices, anchor, k), (0, 0), footprint[0])
        frame = cv2.GaussianBlur(frames_y[k].astype(np.float32), (0, 0), footprint[0])
        gain, offset, agreeing = _fit(reference, frame, inner, inner, footprint)
        if agreeing < 0.25 * inner.sum():
            unchanged = _agreement(reference, frame, 0.5, footprint).astype(bool) & inner
            if unchanged.sum() >= 0.25 * inner.sum():
                gain, offset, _ = _fit(reference, frame, unchanged, inner, footprint)
        fits[k] = (gain, offset)
        corrected[k] = (frames_y[k] - offset) / gain

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, [k for k in range(len(frames_y)) if k != anchor]))
    return corrected, fits


def _fit(reference: np.ndarray, frame: np.ndarray, used: np.ndarray, inner: np.ndarray,
         footprint: tuple[float, int]) -> tuple[float, float, int]:
    """``frame ~ gain * reference + offset`` by least squares over ``used``, then over the pixels
    of ``inner`` that agree with the fit (when a quarter or more do); returns the fit and how many
    pixels of ``inner`` agree with it (``(1, 0)`` and 0 for an implausible gain)."""
    agreeing = 0
    for _ in range(2):
        gain, offset = _line(reference[used], frame[used])
        if not (np.isfinite(gain) and 0.5 <= gain <= 2.0):
            return 1.0, 0.0, 0
        agree = _agreement(gain * reference + offset, frame, 0.5, footprint).astype(bool) & inner
        agreeing = int(agree.sum())
        if agreeing < 0.25 * inner.sum():
            break
        used = agree
    return float(gain), float(offset), agreeing


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The least-squares line ``y ~ gain * x + offset`` of two ``(n,)`` arrays, from their means
    and moments in float64 (``(nan, nan)`` when ``x`` is constant)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    x_mean, y_mean = x.mean(), y.mean()
    x -= x_mean
    spread = float(np.dot(x, x))
    gain = float(np.dot(x, y - y_mean)) / spread if spread > 0 else float("nan")
    return gain, float(y_mean - gain * x_mean)


def frame_weights(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, *, tolerance: float = 0.5,
                  workers: int = 1, footprint: tuple[float, int] = FRAME_FOOTPRINT) -> np.ndarray:
    """``(N, h, w)`` uint8 data weights (a byte a sample: a phone burst's weights are as many as
    its pixels): 1 where frame k agrees with the reference frame aligned onto it
    (:func:`_agreement` with ``footprint``: :data:`TARGET_FOOTPRINT` for a target's windows), 0 where
    it does not (a moving object), always 1 for the reference (``anchor``). Frames are compared by
    ``workers`` threads."""
    count, height, width = frames_y.shape
    weights = np.ones((count, height, width), dtype=np.uint8)

    def one(k: int) -> None:
        weights[k] = _agreement(_aligned_reference(frames_y, matrices, anchor, k), frames_y[k], tolerance, footprint)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, [k for k in range(count) if k != anchor]))
    return weights


def moving_region(matrices: np.ndarray, anchor: int, weights: np.ndarray, *, share: float = 0.5,
                  least: float = 0.005) -> list[int] | None:
    """The box ``[x, y, w, h]`` (the reference's LR pixels) of the largest connected region that
    at least ``share`` of the other frames disagree with the reference on (:func:`frame_weights`,
    each frame's map taken onto the reference's grid by ``matrices``): something that moves on its
    own there, a target for ``--roi``. Only the frames that see a pixel, :data:`EDGE_BAND` pixels
    or more inside their own picture, have a say on it, and a pixel fewer than ``share`` of the
    frames see is never moving: where a frame's picture ends its map says nothing of the scene
    (a camera that moves would otherwise make a strip along the frame's edge a target). ``None``
    when that region covers less than ``least`` of the frame or fewer than 64 pixels."""
    count, height, width = weights.shape
    if count < 3:
        return None
    disagreeing = np.zeros((height, width), np.float32)
    seeing = np.zeros((height, width), np.float32)
    inside = np.zeros((height, width), np.float32)
    inside[EDGE_BAND:-EDGE_BAND, EDGE_BAND:-EDGE_BAND] = 1
    for k in range(count):
        if k != anchor:  # frame k's map at A_k p for every reference pixel p
            seen = cv2.warpPerspective(inside, matrices[k], (width, height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            disagreeing += seen * cv2.warpPerspective((1 - weights[k]).astype(np.float32), matrices[k], (width, height),
                                                      flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            seeing += seen
    moving = (disagreeing >= share * np.maximum(seeing, 1)) & (seeing >= share * (count - 1))
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    labels, _, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    if labels < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[largest, cv2.CC_STAT_AREA] < max(64, least * height * width):
        return None
    x, y, w, h = (int(v) for v in stats[largest, :4])
    return [x, y, max(w, min(8, width - x)), max(h, min(8, height - y))]


def agreeing_samples(frames: np.ndarray, matrices: np.ndarray, registration: list, reference: int, *,
                     footprint: tuple[float, int] = FRAME_FOOTPRINT) -> tuple[np.ndarray, list[int] | None]:
    """``(N, h, w)`` uint8: 1 where frame k's LR samples agree with the reference (after matching
    its brightness; both tests with ``footprint``), for the frames used; all 1 for the others (left
    out anyway); and the box of what moves on its own (:func:`moving_region`)."""
    agreeing = np.ones(frames.shape[:3], np.uint8)
    used = [k for k, r in enumerate(registration) if not r.excluded]
    if len(used) < 2:
        return agreeing, None
    anchor = used.index(reference)
    matched, _ = match_brightness(np.stack([luma(frames[k]) for k in used]), matrices[used], anchor,
                                  footprint=footprint)
    agreeing[used] = frame_weights(matched, matrices[used], anchor, footprint=footprint)
    return agreeing, moving_region(matrices[used], anchor, agreeing[used])


def repeated_rows(lr: np.ndarray, first: int, stop: int, scale: int) -> np.ndarray:
    """Rows ``first:stop`` of ``lr`` ``(h, w)`` at ``scale`` x by repetition (an LR pixel's value
    over the ``scale x scale`` HR pixels it covers), float32, without the whole HR copy."""
    top, bottom = first // scale, -(-stop // scale)
    block = np.repeat(np.repeat(lr[top:bottom].astype(np.float32), scale, axis=0), scale, axis=1)
    return block[first - scale * top : stop - scale * top]

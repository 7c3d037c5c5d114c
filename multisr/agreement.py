"""Where the frames of a burst agree with its reference: brightness matching and data weights.

A frame that disagrees with the reference aligned onto it by more than noise, JPEG or a small
misregistration explains (a moving object, a person) gets weight 0 there, so the solve keeps
the reference's content (Wronski et al. 2019 do this with their robustness mask); exposure
changes between frames are matched first (a gain and an offset per frame).
"""
import cv2
import numpy as np

__all__ = ["match_brightness", "frame_weights"]

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

"""What a plate (or any one line of text) says: an OCR's reading of an image, a vote over many
readings, and how far a reading is from the truth.

The OCR is RapidOCR's ONNX packaging of PaddleOCR's text recogniser (PP-OCR), whose models ship
inside its wheel: nothing is downloaded, ever. It is optional (``pip install 'multisr[ocr]'``);
without it :func:`read_text` raises :class:`multisr.errors.UserError` saying how to add it. Only the
recogniser runs: the image is taken as one line of text (a plate's box), not searched for text.

A reading is kept to the characters plates use: letters and digits, in upper case.
"""
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import UserError

__all__ = ["OCR_INSTALL", "Reading", "ocr_available", "read_text", "vote", "character_accuracy"]

OCR_INSTALL = "pip install 'multisr[ocr]'"
# pixels: a smaller image is enlarged (bicubic) to this height before it is read. Nothing is added around
# it: a plate's box as a user draws it has room enough (truth crops of 96 plates 20-48 px wide, seeds
# 100-123: 92 read exactly as they are, 86 with 15 % of the height added around, 47 with 40 %)
MIN_HEIGHT = 32


@dataclass(frozen=True)
class Reading:
    """``text``: upper-case letters and digits (empty when nothing was read); ``confidence``: the
    recogniser's, in [0, 1] (the mean of its characters' probabilities; for a vote, the fraction
    of the readings that agree with it, character by character)."""

    text: str
    confidence: float


def ocr_available() -> bool:
    """Whether the optional OCR is installed."""
    try:
        import rapidocr  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _engine():
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise UserError(f"reading plates needs the optional OCR: {OCR_INSTALL}") from None
    return RapidOCR(params={"Global.log_level": "critical", "Global.use_det": False, "Global.use_cls": False,
                            "EngineConfig.onnxruntime.intra_op_num_threads": 1})


def _prepared(image: np.ndarray) -> np.ndarray:
    """``image`` (``(H, W[, 3])`` float in [0, 1], RGB) as the recogniser takes it: 8-bit BGR, at
    least :data:`MIN_HEIGHT` high."""
    import cv2

    pixels = np.clip(np.asarray(image, np.float32), 0, 1)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    height, width = pixels.shape[:2]
    if height < MIN_HEIGHT:
        factor = MIN_HEIGHT / height
        pixels = cv2.resize(pixels, (max(1, round(width * factor)), MIN_HEIGHT), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def read_text(image: np.ndarray) -> Reading:
    """The OCR's reading of ``image`` (``(H, W[, 3])`` float in [0, 1], RGB): one line of text
    filling it, such as a plate's box."""
    result = _engine()(_prepared(image), use_det=False, use_cls=False, use_rec=True)
    texts, scores = getattr(result, "txts", None) or (), getattr(result, "scores", None) or ()
    if not texts:
        return Reading("", 0.0)
    text = re.sub(r"[^A-Z0-9]", "", "".join(texts).upper())
    return Reading(text, float(np.mean(scores)) if text else 0.0)


def vote(readings: list[Reading]) -> Reading:
    """A majority vote over ``readings`` per character position, as UFPR-SR-Plates combines the
    readings of a track's frames: the readings of the most common length (ties to the more
    confident), then at each position the character most of them read (ties to the more
    confident sum). ``confidence`` is the mean over positions of the share of all the readings
    that read the vote's character there."""
    read = [r for r in readings if r.text]
    if not read:
        return Reading("", 0.0)
    lengths = Counter(len(r.text) for r in read)
    length = max(lengths, key=lambda n: (lengths[n], sum(r.confidence for r in read if len(r.text) == n)))
    same = [r for r in read if len(r.text) == length]
    characters, agreement = [], []
    for position in range(length):
        weight = Counter()
        count = Counter(r.text[position] for r in same)
        for r in same:
            weight[r.text[position]] += r.confidence
        best = max(count, key=lambda c: (count[c], weight[c]))
        characters.append(best)
        agreement.append(count[best] / len(readings))
    return Reading("".join(characters), float(np.mean(agreement)))


def character_accuracy(read: str, truth: str) -> float:
    """1 - (Levenshtein distance of ``read`` and ``truth``) / ``len(truth)``, at least 0: the
    licence-plate literature's character accuracy."""
    from rapidfuzz.distance import Levenshtein

    if not truth:
        raise ValueError("truth: expected at least one character, got an empty string")
    return max(0.0, 1.0 - Levenshtein.distance(read, truth) / len(truth))

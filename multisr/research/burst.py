"""A simulated burst with its truth: what every protocol of :mod:`multisr.research.simulate`,
:mod:`multisr.research.moving_target` and :mod:`multisr.research.plates` returns."""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Burst"]


@dataclass
class Burst:
    """A simulated burst.

    Attributes:
        frames: ``(N, h, w[, 3])`` float32 in [0, 1], on 8-bit levels; a mosaic burst's
            ``(N, h, w)`` uint16 sensor values (``settings["mosaic"]``).
        truth: ``(scale*h, scale*w[, 3])`` float32, frame 0's high-resolution image.
        matrices: ``(N, 3, 3)``: reference (frame 0) LR coordinates -> frame k LR coordinates.
        scale: the downscaling factor.
        protocol: ``"sr"``, ``"camera"``, ``"target"`` or ``"plate"``.
        object_region: camera protocol: ``(x, y, width, height)`` in ``truth``'s pixels, the
            rectangle the moving object covers in any frame (in frame 0's coordinates, global
            motion removed): where ghosts would appear. ``None`` without an object.
        settings: the protocol's parameters and the values drawn for this burst (JSON-able).
        encoded: the camera protocol's frames as the JPEG files they were decoded from (bytes,
            one per frame; ``frames`` are their decoding), which :func:`~multisr.research.simulate.save_burst`
            writes with ``file_format="jpg"``; ``None`` for the other protocols.
    """

    frames: np.ndarray
    truth: np.ndarray
    matrices: np.ndarray
    scale: int
    protocol: str = "sr"
    object_region: tuple[int, int, int, int] | None = None
    settings: dict = field(default_factory=dict)
    encoded: list[bytes] | None = None

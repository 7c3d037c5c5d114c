"""Synthetic bursts with a known truth, by the DESIGN.md protocol.

From a high-resolution image: crop a margin so that every frame sees real image content; frame
k is the crop warped by a random similarity transform (frame 0 untouched; shifts uniform in
``+-max_shift`` HR pixels, angles uniform in ``+-max_angle`` degrees, about the crop's centre),
downscaled with MATLAB bicubic, given Gaussian noise and quantized to 8 bits. The truth is the
crop (frame 0's high-resolution image) and every frame's registration matrix in low-resolution
pixels, as the registration stage should find it.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .geometry import similarity_matrix, to_low_resolution, warp
from .io import write_image
from .resize import downscale

__all__ = ["Burst", "simulate_burst", "save_burst"]


@dataclass
class Burst:
    """A simulated burst.

    Attributes:
        frames: ``(N, h, w[, 3])`` float32 in [0, 1], on 8-bit levels.
        truth: ``(scale*h, scale*w[, 3])`` float32, frame 0's high-resolution image.
        matrices: ``(N, 3, 3)``: reference (frame 0) LR coordinates -> frame k LR coordinates.
        scale: the downscaling factor.
    """

    frames: np.ndarray
    truth: np.ndarray
    matrices: np.ndarray
    scale: int


def simulate_burst(
    image: np.ndarray,
    *,
    n: int = 20,
    scale: int = 3,
    seed: int = 0,
    max_shift: float = 8.0,
    max_angle: float = 2.0,
    noise: float = 2.0 / 255.0,
) -> Burst:
    """Simulate ``n`` low-resolution frames of ``image`` (``(H, W[, 3])`` in [0, 1]).

    ``max_shift`` is in high-resolution pixels, ``max_angle`` in degrees, ``noise`` the Gaussian
    standard deviation in [0, 1] units. The same ``seed`` gives the same burst.
    """
    if n < 1:
        raise UserError(f"--n: expected at least 1 frame, got {n}")
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    half_diagonal = np.hypot(height, width) / 2
    margin = int(np.ceil(np.hypot(max_shift, max_shift) + half_diagonal * 2 * np.sin(np.deg2rad(max_angle) / 2))) + 2
    crop_h = (height - 2 * margin) // scale * scale
    crop_w = (width - 2 * margin) // scale * scale
    if min(crop_h, crop_w) < 4 * scale:
        raise UserError(
            f"image: expected at least {2 * margin + 4 * scale} pixels on each side to leave a {margin}-pixel "
            f"margin for the motion, found {width}x{height}"
        )
    image = np.asarray(image, dtype=np.float32)
    truth = image[margin : margin + crop_h, margin : margin + crop_w].copy()
    to_image = similarity_matrix(shift=(margin, margin))  # crop coordinates -> image coordinates
    center = ((crop_w - 1) / 2, (crop_h - 1) / 2)
    frames, matrices = [], []
    for k in range(n):
        if k == 0:
            hr_matrix = np.eye(3)
        else:
            shift = rng.uniform(-max_shift, max_shift, size=2)
            angle = rng.uniform(-max_angle, max_angle)
            hr_matrix = similarity_matrix(angle=angle, shift=shift, center=center)
        # frame k's HR image at q shows the truth at inv(hr_matrix) @ q.
        frame_hr, _ = warp(image, to_image @ np.linalg.inv(hr_matrix), (crop_h, crop_w))
        frame = downscale(frame_hr, scale)
        frame = frame + rng.normal(0.0, noise, size=frame.shape).astype(np.float32)
        frames.append(np.round(np.clip(frame, 0.0, 1.0) * 255.0) / 255.0)
        matrices.append(to_low_resolution(hr_matrix, scale))
    return Burst(np.stack(frames).astype(np.float32), truth, np.stack(matrices), scale)


def save_burst(burst: Burst, out_dir: Path) -> list[str]:
    """Write ``frame_000.png ...``, ``truth.png`` and ``truth.json`` into ``out_dir``.

    ``truth.json`` has the format of a run's ``transforms.json``: ``{"reference": 0, "scale",
    "frames": [names], "matrices": [3x3 per frame]}``. Returns the frame file names.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [f"frame_{k:03d}.png" for k in range(len(burst.frames))]
    for name, frame in zip(names, burst.frames):
        write_image(out_dir / name, frame)
    write_image(out_dir / "truth.png", burst.truth)
    truth = {"reference": 0, "scale": burst.scale, "frames": names, "matrices": burst.matrices.tolist()}
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1))
    return names

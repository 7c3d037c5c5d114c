"""Synthetic bursts with a known truth, by the two protocols of docs/DESIGN.md.

``"sr"`` (:func:`simulate_burst`), how SR benchmarks make bursts: from a high-resolution image,
crop a margin so that every frame sees real image content; frame k is the crop warped by a
random similarity transform (frame 0 untouched; shifts uniform in ``+-max_shift`` HR pixels,
angles uniform in ``+-max_angle`` degrees, about the crop's centre), downscaled with MATLAB
bicubic, given Gaussian noise and quantized to 8 bits.

``"camera"`` (:func:`simulate_camera_burst`), what a handheld camera does: a near-identity
homography per frame (the similarity above, a zoom drifting linearly over the burst, a little
perspective), an object that moves on its own in half of the frames, Gaussian optical blur of
one width for the burst, pixel-area sampling, signal-dependent noise, 8 bits and JPEG.

The truth is the crop as frame 0 sees it (frame 0's high-resolution image) and every frame's
registration matrix in low-resolution pixels, as the registration stage should find it (the
global motion; the object's own motion is not in it).
"""
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging.geometry import similarity_matrix, to_low_resolution, warp
from ..imaging.resize import downscale
from ..params import SCALE
from ..storage.dng import BAYER_PATTERNS, write_dng
from ..storage.io import write_image
from ..storage.raw import MIN_RAW_SIDE
from .burst import Burst
from .camera import (JPEG_SUBSAMPLINGS, RAW_CAMERA, camera_margin, decode_jpeg, jpeg_bytes, mosaic_sensor,
                     near_identity_homography, sensor, with_moving_object)
from .moving_target import simulate_target_burst

__all__ = ["PROTOCOLS", "Burst", "simulate_burst", "simulate_camera_burst", "simulate", "save_burst"]

PROTOCOLS = ("sr", "camera", "target")


def _crop_size(height: int, width: int, *, margin: int, scale: int, least: int) -> tuple[int, int]:
    """The truth's ``(height, width)``: the image less ``margin`` on each side, cut to a multiple of
    ``scale``; a UserError when that leaves fewer than ``least`` LR pixels on a side."""
    crop_h = (height - 2 * margin) // scale * scale
    crop_w = (width - 2 * margin) // scale * scale
    if min(crop_h, crop_w) < least * scale:
        raise UserError(f"image: expected at least {2 * margin + least * scale} pixels on each side to leave a "
                        f"{margin}-pixel margin for the motion, found {width}x{height}")
    return crop_h, crop_w


def simulate_burst(
    image: np.ndarray,
    *,
    n: int = 20,
    scale: int = SCALE,
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
        raise UserError(f"n: expected at least 1 frame, got {n}")
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    half_diagonal = np.hypot(height, width) / 2
    margin = int(np.ceil(np.hypot(max_shift, max_shift) + half_diagonal * 2 * np.sin(np.deg2rad(max_angle) / 2))) + 2
    crop_h, crop_w = _crop_size(height, width, margin=margin, scale=scale, least=4)
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
    settings = {"n": n, "seed": seed, "max_shift": max_shift, "max_angle": max_angle, "noise": noise}
    return Burst(np.stack(frames).astype(np.float32), truth, np.stack(matrices), scale, "sr", None, settings)


def simulate_camera_burst(
    image: np.ndarray,
    *,
    n: int = 20,
    scale: int = SCALE,
    seed: int = 0,
    max_shift: float = 8.0,
    max_angle: float = 2.0,
    max_zoom: float = 0.03,
    perspective: float = 1.5,
    blur: tuple[float, float] = (0.2, 0.6),
    shot_noise: tuple[float, float] = (1e-4, 4e-4),
    read_noise: float = 1.5 / 255,
    jpeg_quality: int = 92,
    subsampling: str = "4:2:0",
    moving_object: bool = True,
    mosaic: str | None = None,
) -> Burst:
    """Simulate ``n`` frames of ``image`` (``(H, W[, 3])`` in [0, 1]) as a handheld camera takes them.

    Frame k (frame 0 is the reference, its motion the identity):

    - global motion: a homography of the crop's centre: shift uniform in ``+-max_shift`` HR
      pixels, rotation uniform in ``+-max_angle`` degrees, a zoom ``1 + d k / (n - 1)`` with
      ``d`` uniform in ``+-max_zoom`` for the burst, and a perspective tilt that moves the
      corners by up to about ``perspective`` HR pixels;
    - a moving object (with ``moving_object``): a rectangle of a ninth of the picture (a third
      of each side) whose content, turned by 180 degrees, is displaced by up to a fifth of its
      size in every odd frame; the truth keeps it where frame 0 has it;
    - optics: a Gaussian blur of one standard deviation for the burst, uniform in ``blur``
      (low-resolution pixels), unknown to the pipelines;
    - the sensor: each LR pixel averages the ``scale x scale`` HR pixels it covers; noise of
      variance ``a * value + read_noise**2`` with ``a`` uniform in ``shot_noise`` (per burst);
      8 bits; JPEG at ``jpeg_quality``, chroma stored ``subsampling`` (``"4:2:0"``, OpenCV's
      default, ``"4:2:2"`` or ``"4:4:4"``), the files kept in ``encoded``;
    - or, with ``mosaic`` (a Bayer pattern, ``"rggb"``, ``"bggr"``, ``"grbg"``, ``"gbrg"``), a RAW
      camera (:func:`multisr.research.camera.mosaic_sensor`): the same optics and noise in linear
      light, one colour per pixel, 12-bit sensor values; ``frames`` are then ``(N, h, w)``
      uint16 mosaics (even ``h`` and ``w``) and ``settings["mosaic"]`` the pattern and the camera
      (:data:`~multisr.research.camera.RAW_CAMERA`), which :func:`save_burst` writes as DNG files.

    The same ``seed`` gives the same burst. ``settings`` records every value drawn.
    """
    if n < 1:
        raise UserError(f"n: expected at least 1 frame, got {n}")
    if mosaic is not None and (mosaic not in BAYER_PATTERNS or np.ndim(image) != 3):
        raise UserError(f"mosaic: expected one of {', '.join(BAYER_PATTERNS)} and a colour image, got {mosaic!r} "
                        f"and an image of shape {np.shape(image)}")
    rng = np.random.default_rng(seed)
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape[:2]
    margin = camera_margin(height, width, max_shift=max_shift, max_angle=max_angle, max_zoom=max_zoom,
                            perspective=perspective)
    step = scale if mosaic is None else 2 * scale  # a mosaic's frames have whole 2x2 patterns
    crop_h, crop_w = _crop_size(height, width, margin=margin, scale=step, least=6 * scale // step)
    center = ((crop_w - 1) / 2, (crop_h - 1) / 2)
    half_diagonal = float(np.hypot(crop_h, crop_w) / 2)
    zoom_drift = float(rng.uniform(-max_zoom, max_zoom))
    sigma_lr = float(rng.uniform(*blur))
    gain = float(rng.uniform(*shot_noise))
    rect, offsets = None, [(0, 0)] * n
    if moving_object:
        w, h = crop_w // 3, crop_h // 3
        reach_x, reach_y = max(1, w // 5), max(1, h // 5)
        x = int(rng.integers(reach_x, crop_w - w - reach_x + 1))
        y = int(rng.integers(reach_y, crop_h - h - reach_y + 1))
        rect = (x, y, w, h)
        offsets = [(0, 0) if k % 2 == 0 else
                   (int(rng.integers(-reach_x, reach_x + 1)) or reach_x, int(rng.integers(-reach_y, reach_y + 1)))
                   for k in range(n)]
    to_image = similarity_matrix(shift=(margin, margin))  # crop coordinates -> image coordinates
    placed = None if rect is None else (rect[0] + margin, rect[1] + margin, rect[2], rect[3])  # in image pixels
    still = image if rect is None else with_moving_object(image, placed, (0, 0))  # frame 0's scene, the truth's
    if subsampling not in JPEG_SUBSAMPLINGS:
        raise UserError(f"subsampling: expected one of {', '.join(JPEG_SUBSAMPLINGS)}, got {subsampling!r}")
    frames, matrices, encoded = [], [], []
    for k in range(n):
        hr_matrix = near_identity_homography(rng, k, n, center, half_diagonal, max_shift=max_shift,
                                              max_angle=max_angle, zoom_drift=zoom_drift, perspective=perspective)
        scene = still if offsets[k] == (0, 0) else with_moving_object(image, placed, offsets[k])
        frame_hr, _ = warp(scene, to_image @ np.linalg.inv(hr_matrix), (crop_h, crop_w))
        if mosaic is None:
            exposed = sensor(frame_hr, rng, scale=scale, blur_sigma_lr=sigma_lr, shot_noise=gain, read_noise=read_noise,
                             jpeg_quality=None)
            encoded.append(jpeg_bytes(exposed, jpeg_quality, subsampling))
            frames.append(decode_jpeg(encoded[-1]))
        else:
            frames.append(mosaic_sensor(frame_hr, rng, scale=scale, blur_sigma_lr=sigma_lr, shot_noise=gain,
                                        read_noise=read_noise, pattern=mosaic))
        matrices.append(to_low_resolution(hr_matrix, scale))
    truth = still[margin : margin + crop_h, margin : margin + crop_w].copy()
    region = None
    if rect is not None:
        xs = [rect[0] + dx for dx, _ in offsets]
        ys = [rect[1] + dy for _, dy in offsets]
        region = (min(xs), min(ys), max(xs) - min(xs) + rect[2], max(ys) - min(ys) + rect[3])
    settings = {"n": n, "seed": seed, "max_shift": max_shift, "max_angle": max_angle, "max_zoom": max_zoom,
                "perspective": perspective, "blur": list(blur), "shot_noise": list(shot_noise),
                "read_noise": read_noise, "jpeg_quality": None if mosaic else jpeg_quality,
                "chroma_subsampling": None if mosaic else subsampling,
                "mosaic": None if mosaic is None else {"pattern": mosaic, **RAW_CAMERA}, "drawn": {
                    "zoom_drift": zoom_drift, "blur_sigma_lr": sigma_lr, "shot_noise": gain,
                    "object_rect": list(rect) if rect else None, "object_offsets": [list(o) for o in offsets]}}
    frames = np.stack(frames) if mosaic else np.stack(frames).astype(np.float32)
    return Burst(frames, truth, np.stack(matrices), scale, "camera", region, settings, encoded or None)


def simulate(image: np.ndarray, *, protocol: str = "sr", **options) -> Burst:
    """:func:`simulate_burst` (``protocol="sr"``), :func:`simulate_camera_burst` (``"camera"``) or
    :func:`multisr.research.moving_target.simulate_target_burst` (``"target"``: ``image`` is the target,
    ``options["background"]`` the scene it crosses)."""
    if protocol == "sr":
        return simulate_burst(image, **options)
    if protocol == "camera":
        return simulate_camera_burst(image, **options)
    if protocol == "target":
        return simulate_target_burst(image, options.pop("background"), **options)
    raise UserError(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def save_burst(burst: Burst, out_dir: Path, *, file_format: str = "png") -> list[str]:
    """Write ``frame_000.png ...`` (a mosaic burst's as ``frame_000.dng ...``; with ``file_format="jpg"``
    the camera protocol's JPEG files as ``frame_000.jpg ...``), ``truth.png`` and ``truth.json`` into
    ``out_dir``.

    ``truth.json`` has the format of a run's ``transforms.json``: ``{"reference": 0, "scale",
    "frames": [names], "matrices": [3x3 per frame]}``, plus ``"protocol"``, ``"object_region"``
    (``[x, y, width, height]`` in ``truth.png``'s pixels, or null) and ``"settings"`` (the
    protocol's parameters and the values drawn; the target protocol's ``target_box``, in frame
    0's LR pixels, and ``target_matrices``). Returns the frame file names.
    """
    out_dir = Path(out_dir)
    camera = burst.settings.get("mosaic")
    height, width = burst.frames.shape[1:3]
    if camera and min(height, width) < MIN_RAW_SIDE:  # the tool writes nothing it cannot read back
        raise UserError(f"burst: expected frames of at least {MIN_RAW_SIDE}x{MIN_RAW_SIDE} pixels to write as RAW files "
                        f"(LibRaw reads no smaller one), found {width}x{height}")
    if file_format not in ("png", "jpg"):
        raise UserError(f"format: expected png or jpg, got {file_format!r}")
    if file_format == "jpg" and burst.encoded is None:
        raise UserError(f"format: expected the camera protocol (without --mosaic) for JPEG frames, got the "
                        f"{burst.protocol} protocol{' with a mosaic' if camera else ''}, "
                        "whose frames are not JPEG-coded")
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "dng" if camera else file_format
    names = [f"frame_{k:03d}.{suffix}" for k in range(len(burst.frames))]
    for k, (name, frame) in enumerate(zip(names, burst.frames)):
        if file_format == "jpg":
            (out_dir / name).write_bytes(burst.encoded[k])
        elif camera:
            write_dng(out_dir / name, frame, pattern=camera["pattern"], black=camera["black"], white=camera["white"],
                      xyz_to_camera=camera["xyz_to_camera"], neutral=camera["neutral"])
        else:
            write_image(out_dir / name, frame)
    write_image(out_dir / "truth.png", burst.truth)
    truth = {"reference": 0, "scale": burst.scale, "frames": names, "matrices": burst.matrices.tolist(),
             "protocol": burst.protocol, "object_region": list(burst.object_region) if burst.object_region else None,
             "settings": burst.settings}
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1))
    return names

"""The target protocol (``multisr simulate --protocol target``): a fixed camera, a static
background, and a planar target (a plate on a car, a face, a sign) that crosses the picture on its
own while it approaches.

Frame k (frame 0 is the reference):

- the target, ``target`` resized to ``side`` LR pixels across (48 by default), is a plane that moves by
  ``speed`` LR pixels a frame along x (left to right or back, drawn) and up to half a pixel a frame
  along y, grows by ``zoom`` over the burst (about its centre) and tilts a little (its corners
  move by up to ``perspective`` HR pixels): it crosses about half the picture;
- the camera is fixed, with a sub-pixel jitter (shifts within ``+-jitter`` HR pixels);
- then the camera protocol's optics and sensor: a Gaussian blur of one width for the burst,
  pixel-area sampling, signal-dependent noise, 8 bits and JPEG at ``jpeg_quality``.

The truth is frame 0's high-resolution picture; ``target_box`` the target's box in frame 0's LR
pixels (``x, y, w, h``); ``target_matrices`` its motion, frame 0's LR pixels -> frame k's, as a
tracker should find it; ``matrices`` the background's (the jitter).
"""
import cv2
import numpy as np

from ..imaging.geometry import similarity_matrix, to_low_resolution, warp
from ..params import SCALE
from .burst import Burst
from .camera import near_identity_homography, sensor

__all__ = ["LR_SIZE", "simulate_target_burst"]

LR_SIZE = (160, 112)  # (width, height) of the frames: the target crosses about half of it
TARGET_SIDE = 48  # LR pixels: the target's longer side in frame 0, by default
MIN_SIDE = 6  # LR pixels: the target's shorter side, at least


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to cover ``width x height`` and cut to it about its centre."""
    factor = max(width / image.shape[1], height / image.shape[0])
    size = (max(width, int(np.ceil(image.shape[1] * factor))), max(height, int(np.ceil(image.shape[0] * factor))))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return np.clip(scaled[top : top + height, left : left + width], 0, 1)


def simulate_target_burst(target: np.ndarray, background: np.ndarray, *, n: int = 20, scale: int = SCALE,
                          seed: int = 0, side: int = TARGET_SIDE, speed: float = 4.0, zoom: float = 0.15, perspective: float = 2.0,
                          jitter: float = 1.5, blur: tuple[float, float] = (0.2, 0.6),
                          shot_noise: tuple[float, float] = (1e-4, 4e-4), read_noise: float = 1.5 / 255,
                          jpeg_quality: int = 90):
    """``n`` frames of ``target`` crossing ``background`` (both ``(H, W[, 3])`` in [0, 1]; colour
    when either is) as the module docstring says. Returns a :class:`multisr.research.simulate.Burst` whose
    ``settings`` hold ``target_box`` and ``target_matrices`` besides every drawn value."""
    rng = np.random.default_rng(seed)
    colour = target.ndim == 3 or background.ndim == 3
    as_colour = (lambda a: a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)) if colour else (lambda a: a)
    lr_w, lr_h = LR_SIZE
    canvas_w, canvas_h = lr_w * scale, lr_h * scale
    scene = as_colour(_cover(np.asarray(background, np.float32), canvas_w, canvas_h))
    aspect = target.shape[0] / target.shape[1]
    box_w = side if aspect <= 1 else max(MIN_SIDE, int(round(side / aspect)))
    box_h = max(MIN_SIDE, min(side, int(round(box_w * aspect))))
    picture = as_colour(_cover(np.asarray(target, np.float32), box_w * scale, box_h * scale))
    direction = 1 if rng.random() < 0.5 else -1
    x0 = int(rng.integers(8, 12)) if direction > 0 else int(lr_w - box_w - rng.integers(8, 12))
    y0 = int(rng.integers((lr_h - box_h) // 2 - 6, (lr_h - box_h) // 2 + 7))
    speed_y = float(rng.uniform(-0.5, 0.5))
    tilt = rng.uniform(-1, 1, size=2) * perspective / (0.5 * np.hypot(box_w, box_h) * scale) ** 2
    sigma_lr, gain = float(rng.uniform(*blur)), float(rng.uniform(*shot_noise))
    centre = ((box_w * scale - 1) / 2, (box_h * scale - 1) / 2)  # the target's centre, its own pixels
    place = similarity_matrix(shift=(x0 * scale, y0 * scale))  # target pixels -> frame 0's HR pixels
    frames, matrices, target_matrices, truth = [], [], [], None
    for k in range(n):
        t = k / max(n - 1, 1)
        motion = similarity_matrix(scale=1 + zoom * t, shift=(direction * speed * k * scale, speed_y * k * scale),
                                   center=centre)
        tilting = np.eye(3)
        tilting[2, :2] = tilt * t
        to_centre, back = similarity_matrix(shift=(-centre[0], -centre[1])), similarity_matrix(shift=centre)
        plane = place @ motion @ back @ tilting @ to_centre  # target pixels -> the scene's HR pixels in frame k
        inside = _lands(plane, picture.shape[:2], (canvas_h, canvas_w))
        drawn, _ = warp(picture, np.linalg.inv(plane), (canvas_h, canvas_w))
        alpha = inside[..., None] if colour else inside
        moment = scene * (1 - alpha) + drawn * alpha
        camera = near_identity_homography(rng, k, n, (0.0, 0.0), 1.0, max_shift=jitter, max_angle=0.0,
                                          zoom_drift=0.0, perspective=0.0)
        frame_hr, _ = warp(moment, np.linalg.inv(camera), (canvas_h, canvas_w))
        if k == 0:
            truth = moment.copy()
        frames.append(sensor(frame_hr, rng, scale=scale, blur_sigma_lr=sigma_lr, shot_noise=gain,
                             read_noise=read_noise, jpeg_quality=jpeg_quality))
        matrices.append(to_low_resolution(camera, scale))
        target_matrices.append(to_low_resolution(camera @ plane @ np.linalg.inv(place), scale))
    box = [x0, y0, box_w, box_h]
    region = (x0 * scale, y0 * scale, box_w * scale, box_h * scale)
    settings = {"n": n, "seed": seed, "side": side, "speed": speed, "zoom": zoom, "perspective": perspective, "jitter": jitter,
                "blur": list(blur), "shot_noise": list(shot_noise), "read_noise": read_noise,
                "jpeg_quality": jpeg_quality, "chroma_subsampling": "4:2:0", "target_box": box,
                "target_matrices": np.stack(target_matrices).tolist(),
                "drawn": {"direction": direction, "speed_y": speed_y, "blur_sigma_lr": sigma_lr, "shot_noise": gain,
                          "tilt": tilt.tolist()}}
    return Burst(np.stack(frames).astype(np.float32), truth.astype(np.float32), np.stack(matrices), scale, "target",
                 region, settings)


def _lands(matrix: np.ndarray, source_shape: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """``shape`` float mask: 1 where the scene pixel comes from inside the target's picture."""
    height, width = shape
    inverse = np.linalg.inv(matrix)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    w = inverse[2, 0] * xs + inverse[2, 1] * ys + inverse[2, 2]
    u = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]) / w
    v = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]) / w
    return ((u >= -0.5) & (u <= source_shape[1] - 0.5) & (v >= -0.5) & (v <= source_shape[0] - 0.5)).astype(np.float32)

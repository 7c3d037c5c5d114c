"""The chroma-subsampling detector measured (``multisr bench subsampling``).

Every image of a folder becomes small bursts of camera frames (a crop at a random offset, a
Gaussian blur, signal-dependent noise, 8 bits: :func:`multisr.research.camera.sensor` at scale 1),
coded by each source at a quality drawn for the burst and decoded as a reader of that source
would, then handed to :func:`multisr.imaging.subsampling.detect_chroma_subsampling` as pixels only:

- ``jpeg-opencv`` and ``jpeg-pillow``: JPEG files at 4:4:4, 4:2:2 and 4:2:0, qualities 70 to 98,
  coded and decoded by OpenCV (libjpeg-turbo) and by Pillow;
- ``h264``: a video stream (libx264 through PyAV, ``yuv444p``, ``yuv422p``, ``yuv420p``; CRF from
  the quality: ``10 + 0.8 * (100 - quality)``), decoded to RGB by PyAV (swscale);
- ``mpeg4``: MPEG-4 part 2 (``yuv420p`` only), quantiser from the quality.
"""
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..imaging.subsampling import detect_chroma_subsampling
from ..storage.folders import list_images
from ..storage.io import read_image
from .camera import jpeg, sensor

__all__ = ["SOURCES", "QUALITIES", "bench_subsampling", "code_frames", "confusion", "load_colour_images"]

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
SOURCES = {"jpeg-opencv": SUBSAMPLINGS, "jpeg-pillow": SUBSAMPLINGS, "h264": SUBSAMPLINGS, "mpeg4": ("4:2:0",)}
QUALITIES = (70, 75, 80, 85, 90, 95, 98)
_PIXEL_FORMATS = {"4:4:4": "yuv444p", "4:2:2": "yuv422p", "4:2:0": "yuv420p"}
_PILLOW_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def code_frames(frames: list[np.ndarray], source: str, subsampling: str, quality: int) -> list[np.ndarray]:
    """``frames`` (``(H, W, 3)`` float32 8-bit levels in [0, 1], even H and W) coded by ``source``
    (a key of :data:`SOURCES`) with chroma stored ``subsampling`` at ``quality`` (70-98), and
    decoded back to RGB float32 in [0, 1]."""
    if source == "jpeg-opencv":
        return [jpeg(frame, quality, subsampling) for frame in frames]
    pixels = [np.round(frame * 255).astype(np.uint8) for frame in frames]
    if source == "jpeg-pillow":
        decoded = []
        for frame in pixels:
            data = io.BytesIO()
            Image.fromarray(frame).save(data, "JPEG", quality=quality, subsampling=_PILLOW_SUBSAMPLING[subsampling])
            with Image.open(data) as image:
                decoded.append(np.asarray(image.convert("RGB")))
        return [frame.astype(np.float32) / 255 for frame in decoded]
    return [frame.astype(np.float32) / 255 for frame in _video(pixels, source, subsampling, quality)]


def _video(frames: list[np.ndarray], codec: str, subsampling: str, quality: int) -> list[np.ndarray]:
    """8-bit RGB frames through a video codec (PyAV, in memory) and back."""
    import av  # noqa: PLC0415 - only this bench codes video

    data = io.BytesIO()
    with av.open(data, "w", format="matroska") as container:
        stream = container.add_stream("libx264" if codec == "h264" else "mpeg4", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = _PIXEL_FORMATS[subsampling]
        if codec == "h264":
            stream.options = {"crf": str(round(10 + 0.8 * (100 - quality)))}
        else:
            stream.options = {"qscale": str(max(1, round((100 - quality) / 5)))}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data.seek(0)
    with av.open(data) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _camera_frames(image: np.ndarray, rng, n: int) -> list[np.ndarray]:
    """``n`` frames of ``image`` as a camera takes them, before any coding: crops at offsets of
    0-7 px (so the coder's blocks fall anywhere on the scene), even sizes, blur and noise drawn."""
    height, width = (image.shape[0] - 8) // 2 * 2, (image.shape[1] - 8) // 2 * 2
    blur, gain = float(rng.uniform(0.2, 0.6)), float(rng.uniform(1e-4, 4e-4))
    frames = []
    for _ in range(n):
        top, left = rng.integers(0, 8, size=2)
        crop = np.ascontiguousarray(image[top : top + height, left : left + width])
        frames.append(sensor(crop, rng, scale=1, blur_sigma_lr=blur, shot_noise=gain, read_noise=1.5 / 255,
                             jpeg_quality=None))
    return frames


def bench_subsampling(images: dict[str, np.ndarray], *, n: int = 3, seed: int = 0, progress=None) -> list[dict]:
    """For every image (name -> ``(H, W, 3)`` RGB in [0, 1]), source and subsampling it codes: a
    burst of ``n`` frames at a quality drawn from :data:`QUALITIES`, and what the detector says.

    Returns rows ``{"image", "source", "truth", "quality", "decision", "residual", "structure"}``."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, image in images.items():
        for source, subsamplings in SOURCES.items():
            for truth in subsamplings:
                quality = int(rng.choice(QUALITIES))
                frames = code_frames(_camera_frames(image, rng, n), source, truth, quality)
                evidence = detect_chroma_subsampling(frames)
                rows.append({"image": name, "source": source, "truth": truth, "quality": quality,
                             **{key: value for key, value in evidence.as_dict().items()
                                if key in ("decision", "residual", "structure")}})
                if progress is not None:
                    progress()
    return rows


def confusion(rows: list[dict]) -> dict:
    """``{source: {truth: {decision: count}}}`` and ``"all"`` over every source."""
    table: dict = {}
    for row in rows:
        for source in (row["source"], "all"):
            cell = table.setdefault(source, {}).setdefault(row["truth"], dict.fromkeys(SUBSAMPLINGS, 0))
            cell[row["decision"]] += 1
    return table


def load_colour_images(folder: Path) -> dict[str, np.ndarray]:
    """name -> ``(H, W, 3)`` float32 RGB in [0, 1] of every colour image in ``folder`` (grey ones and
    those under 48 pixels a side skipped); a :class:`~multisr.errors.UserError` when none is left."""
    images = {}
    for path in list_images(Path(folder)):
        image, _ = read_image(path)
        if image.ndim == 3 and min(image.shape[:2]) >= 48:
            images[path.stem] = image
    if not images:
        raise UserError(f"{folder}: expected colour images of at least 48x48 pixels, found none")
    return images

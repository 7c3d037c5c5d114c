"""Reading a burst's frames from a video file (MP4, MOV, MKV, AVI, ...) through OpenCV's FFmpeg
backend: the decoder that ships with ``opencv-python-headless``, so a video needs nothing more
than an image does. Frames come out under the data contract (``float32`` in [0, 1], RGB, or grey
when every decoded frame has three equal channels, as grey sequences stored in colour codecs do).
"""
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import UserError
from .io import MAX_PIXELS_ENV, VIDEO_SUFFIXES, check_regular_file, max_pixels

__all__ = ["VIDEO_SUFFIXES", "is_video", "read_video", "video_info", "iter_video", "chroma_subsampling"]

# FFmpeg's own messages ("File ended prematurely") would precede the one-line error of a damaged
# video; OpenCV reads this when it first opens one (set it to 32 to see them again)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file (by its suffix); a folder never is."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.is_dir()


def read_video(path: Path, *, start: int = 0, count: int | None, budget: int | None = None) -> tuple[np.ndarray, dict]:
    """Frames ``start`` to ``start + count - 1`` (0-based, in decoding order) of the video ``path``
    (``count`` ``None``: every frame from ``start`` on, at least 2), their float32 copy taking at
    most ``budget`` bytes.

    Frames are decoded from the first (a seek can land on the wrong frame in codecs with sparse
    key frames), so a late ``start`` costs the decoding of the frames before it. Returns
    ``(frames, source)``: ``(count, h, w[, 3])`` float32, and what was read: ``file``, ``stream``
    (0, the first video stream), ``first``, ``count``, ``sha256`` of the decoded 8-bit frames and
    the ``decoder``. A file that does not open, decode or hold enough frames is :class:`UserError`.
    """
    path = Path(path)
    check_regular_file(path, what="a video file")  # before PyAV opens it: a pipe would block its thread
    # each frame's own size, checked beside OpenCV's decoding (PyAV lets go of the GIL as it decodes)
    sizes = ThreadPoolExecutor(max_workers=1)
    checked = sizes.submit(check_frame_sizes, path, frames=start + count if count is not None else sys.maxsize)
    sizes.shutdown(wait=False)
    kept, found, grey = [], 0, True
    frames = None  # with a known count, each frame goes straight into the one float32 copy
    rgb_digest, grey_digest = hashlib.sha256(), hashlib.sha256()  # of the 8-bit frames, as grey or RGB
    for index, frame, _ in _decoded(path):
        found = index + 1
        if index < start:
            continue
        rgb = np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB
        if budget is not None and (len(kept) + 1) * rgb.size * 4 > budget:
            raise UserError(f"{path}: expected a burst that fits in memory, but {len(kept) + 1} frames of "
                            f"{rgb.shape[1]}x{rgb.shape[0]} already take {(len(kept) + 1) * rgb.size * 4 / 1e9:.1f} "
                            f"GB and {budget / 1e9:.1f} GB can be used; take fewer frames (n)")
        grey = grey and bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
        rgb_digest.update(memoryview(rgb).cast("B"))
        if grey:  # a colour frame settles it: no grey digest is needed from then on
            grey_digest.update(memoryview(np.ascontiguousarray(rgb[..., 0])).cast("B"))
        if count is not None:
            if frames is None:
                frames = np.empty((count, *rgb.shape), np.float32)
            frames[len(kept)] = rgb
            frames[len(kept)] /= 255.0
            kept.append(None)
        else:
            kept.append(rgb)
        if len(kept) == count:
            break
    needed = 2 if count is None else count
    checked.result()
    if len(kept) < needed:
        asked = f"start={start}, n={count or 'all'}" if start else f"n={count or 'all'}"
        raise UserError(f"{path}: expected at least {start + needed} frames ({asked}), found {found}")
    if frames is None:  # every frame from start: their number was not known
        frames = np.stack(kept).astype(np.float32)
        kept.clear()
        frames /= 255.0
    if grey:
        frames = np.ascontiguousarray(frames[..., 0])
    source = {"file": str(path.resolve()), "stream": 0, "first": start, "count": len(frames),
              "sha256": (grey_digest if grey else rgb_digest).hexdigest(),
              "decoder": f"opencv-ffmpeg {cv2.__version__}", "chroma_subsampling": chroma_subsampling(path)}
    return frames, source


def chroma_subsampling(path: Path) -> str | None:
    """The first video stream's chroma subsampling from its pixel format (``yuv420p`` and the
    like: ``"4:2:0"``; ``"4:2:2"``, ``"4:4:4"``), or ``None`` when the format does not say."""
    try:
        with av.open(str(path)) as container:
            name = container.streams.video[0].codec_context.pix_fmt or ""
    except (av.error.FFmpegError, IndexError):
        return None
    for kind in ("420", "422", "444"):
        if kind in name or (kind == "420" and name in ("nv12", "nv21")):
            return f"{kind[0]}:{kind[1]}:{kind[2]}"
    return "4:4:4" if name.startswith(("rgb", "bgr", "gbr")) else None


def video_info(path: Path) -> tuple[int, float, bool]:
    """``(frames, frames per second, grey)`` of the video ``path``: the frames counted by decoding
    them all (a container's own count can be missing or wrong), ``grey`` when every frame has three
    equal channels."""
    count, grey, rate = 0, True, 25.0
    for index, frame, capture in _decoded(path):
        if index == 0:
            rate = float(capture.get(cv2.CAP_PROP_FPS)) or rate
        grey = grey and bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())
        count += 1
    check_frame_sizes(path, frames=count)
    return count, rate, grey


def check_frame_sizes(path: Path, *, frames: int) -> None:
    """:class:`UserError` when the first ``frames`` frames of the video ``path`` are not all of one
    size (a clip spliced from two): OpenCV's reader scales every frame to the first one's size and
    reports that size throughout, so the frames are decoded again here by PyAV, which gives each
    frame's own. A file PyAV cannot read is left to OpenCV's reading and its errors."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first = None
            for index, frame in enumerate(container.decode(stream)):
                if index >= frames:
                    return
                first = first or (frame.width, frame.height)
                if (frame.width, frame.height) != first:
                    raise UserError(f"{path}: expected every frame of the video to be {first[0]}x{first[1]} like "
                                    f"its first, but frame {index} is {frame.width}x{frame.height} (a clip spliced "
                                    "from two?); cut it where the size changes")
    except (av.FFmpegError, IndexError):
        return


def iter_video(path: Path, *, grey: bool):
    """The frames of the video ``path`` in order, float32 in [0, 1]: ``(h, w)`` with ``grey``, else
    ``(h, w, 3)`` RGB."""
    for _, frame, _ in _decoded(path):
        yield (frame[..., 0] if grey else frame[..., ::-1]).astype(np.float32) / 255.0


def _decoded(path: Path):
    """``(index, BGR uint8 frame, capture)`` for every frame of the video ``path``."""
    path = Path(path)
    check_regular_file(path, what="a video file")
    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV's own warnings before ours
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            raise UserError(f"{path}: expected a video FFmpeg can decode ({', '.join(VIDEO_SUFFIXES)}), but it "
                            "cannot be opened: damaged, truncated, or a codec this build lacks")
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > max_pixels():
            raise UserError(f"{path}: expected frames of at most {max_pixels():,} pixels ({MAX_PIXELS_ENV}), but "
                            f"the video's are {width}x{height}")
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield index, frame, capture
            index += 1
    finally:
        capture.release()
        cv2.utils.logging.setLogLevel(quiet)

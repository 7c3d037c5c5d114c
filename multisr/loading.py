"""A burst's source: its frames read from a folder of images (natural order) or a video file,
checked, named, and its reference frame chosen. These are the ``load`` stage's function and its
cache fingerprint (:mod:`multisr.stages`); :func:`burst_artifacts` also serves bursts already in
memory (:func:`multisr.engine.run_frames`).
"""
from pathlib import Path

import cv2
import numpy as np

from .color import luma
from .errors import UserError
from .files import file_digest
from .frame_selection import sharpest_frame
from .io import list_images, read_image
from .threads import in_threads
from .video import is_video, read_video

__all__ = ["MIN_SIDE", "load_burst", "burst_artifacts", "burst_fingerprint"]

MIN_SIDE = 8  # pixels: a frame's shorter side, at least (registration's windows need a few)


def _selected_files(folder: str, n: int, start: int) -> list[Path]:
    files = list_images(Path(folder))
    if n < 2:
        raise UserError(f"n: expected at least 2 frames, got {n}")
    if len(files) < start + n:
        asked = f"start={start}, n={n}" if start else f"n={n}"
        raise UserError(f"{folder}: expected at least {start + n} frames ({asked}), found {len(files)}")
    return files[start : start + n]


def load_burst(*, folder: str, n: int, start: int, reference: int | str) -> dict:
    if is_video(Path(folder)):
        if n < 2:
            raise UserError(f"n: expected at least 2 frames, got {n}")
        frames, source = read_video(Path(folder), start=start, count=n)
        names = [f"{Path(folder).name}#{start + k}" for k in range(n)]
        return {**burst_artifacts(frames, names, bit_depth=8, reference=reference), "source": source, "known": None}
    files = _selected_files(folder, n, start)
    decoded = in_threads(read_image, files)
    first = decoded[0][0].shape
    for path, (image, _) in zip(files, decoded):
        if image.shape != first:
            raise UserError(f"{path}: expected every frame to be {_describe(first)} like {files[0].name}, "
                            f"found {_describe(image.shape)}")
    source = {"folder": str(Path(folder).resolve()), "first": start, "count": n}
    return {**burst_artifacts(np.stack([image for image, _ in decoded]), [p.name for p in files],
                              bit_depth=max(depth for _, depth in decoded), reference=reference), "source": source,
            "known": None}


def burst_artifacts(frames: np.ndarray, names: list[str], *, bit_depth: int, reference: int | str) -> dict:
    """What a burst's source stage writes (``frames``, ``names``, ``bit_depth``, ``reference``), the
    frames ``(N, h, w[, 3])`` checked and the reference chosen (an index, or ``"sharpest"``)."""
    if isinstance(reference, int) and not 0 <= reference < len(frames):
        raise UserError(f"reference: expected a frame index from 0 to {len(frames) - 1}, got {reference}")
    if min(frames.shape[1:3]) < MIN_SIDE:
        raise UserError(f"{names[0]}: expected frames of at least {MIN_SIDE}x{MIN_SIDE} pixels, found "
                        f"{frames.shape[2]}x{frames.shape[1]}")
    if reference == "sharpest":
        reference = sharpest_frame(luma(frame) for frame in frames)  # one Y at a time in memory
    return {"frames": frames, "names": list(names), "bit_depth": bit_depth, "reference": reference}


def _describe(shape: tuple) -> str:
    kind = "colour" if len(shape) == 3 else "grey"
    return f"{shape[1]}x{shape[0]} {kind}"


def burst_fingerprint(params: dict) -> str:
    folder, n, start = params["folder"], params["n"], params["start"]
    try:
        if is_video(Path(folder)):  # the decoded frames depend on the file and the decoder
            return f"{file_digest(Path(folder))}:{start}:{n}:{cv2.__version__}"
        return ",".join(file_digest(p) for p in _selected_files(folder, n, start))
    except OSError as error:
        raise UserError(f"{error.filename}: expected a readable file, but it cannot be read "
                        f"({error.strerror})") from None

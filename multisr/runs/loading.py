"""A burst's source: its frames read from a folder of images (natural order) or a video file,
checked, named, and its reference frame chosen. These are the ``load`` stage's function and its
cache fingerprint (:mod:`multisr.runs.stages`); :func:`burst_artifacts` also serves bursts already in
memory (:func:`multisr.runs.engine.run_frames`).
"""
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import psutil

from ..errors import UserError
from ..imaging.color import luma
from ..params import ALL_FRAMES
from ..registration.frame_selection import sharpest_frame
from ..registration.tracking import check_roi, parse_roi
from ..storage.files import file_digest
from ..storage.folders import FolderListing, scan_folder
from ..storage.io import RAW_SUFFIXES, Picture, check_regular_file, image_size, read_picture
from ..storage.raw import DEVELOPMENT, RawFrame, raw_size, read_raw
from ..storage.video import is_video, read_video
from ..threads import in_threads

__all__ = ["MIN_SIDE", "load_burst", "read_frame", "burst_artifacts", "burst_fingerprint", "memory_budget", "check_box_early"]

MIN_SIDE = 8  # pixels: a frame's shorter side, at least (registration's windows need a few)
MEMORY_SHARE = 0.5  # of the memory available when the run starts: the most that a burst's frames may take


def memory_budget() -> int:
    """Bytes a burst's decoded frames may take: half the memory available now (the stages that
    follow need the rest)."""
    return int(MEMORY_SHARE * psutil.virtual_memory().available)


def _selected(folder: str, n: int | str, start: int) -> tuple[list[Path], FolderListing]:
    listing = scan_folder(Path(folder))
    files = listing.images
    if n == ALL_FRAMES:
        if len(files) - start < 2:
            raise UserError(f"{folder}: expected at least 2 frames from frame {start} on (n=all), found "
                            f"{max(0, len(files) - start)}")
        return files[start:], listing
    if len(files) < start + n:
        asked = f"start={start}, n={n}" if start else f"n={n}"
        raise UserError(f"{folder}: expected at least {start + n} frames ({asked}), found {len(files)}; "
                        f"n=all takes every frame")
    return files[start : start + n], listing


def _frame_size(path: Path) -> tuple[int, int, int] | None:
    """``(width, height, EXIF orientation)`` of a frame file from its header (a RAW file's as it
    is read: upright, orientation 1), or ``None`` when the header does not say."""
    if path.suffix.lower() in RAW_SUFFIXES:
        return (*raw_size(path), 1)
    return image_size(path)


def read_frame(path: Path) -> tuple[Picture, RawFrame | None]:
    """One frame file: an image, or a RAW file developed by LibRaw (and its mosaic, with what its file said)."""
    if path.suffix.lower() in RAW_SUFFIXES:
        raw = read_raw(path)
        return Picture(raw.image, 16), raw
    return read_picture(path), None


def _check_memory(files: list[Path]) -> None:
    """:class:`UserError` before decoding when the frames, as their headers give them, would take
    more than :func:`memory_budget` as float32 RGB (and a RAW frame's float32 mosaic)."""
    size = _frame_size(files[0])
    if size is None:
        return
    channels = 4 if files[0].suffix.lower() in RAW_SUFFIXES else 3
    needed = len(files) * size[0] * size[1] * channels * 4
    budget = memory_budget()
    if needed > budget:
        raise UserError(f"{files[0].parent}: expected a burst that fits in memory, but {len(files)} frames of "
                        f"{size[0]}x{size[1]} take about {needed / 1e9:.1f} GB and {budget / 1e9:.1f} GB can be "
                        f"used; take fewer frames (n)")


def _without_pixels(raw: RawFrame | None) -> RawFrame | None:
    """A RAW frame's record without its developed pixels (they are in the burst's array)."""
    return None if raw is None else replace(raw, image=None)


def _decoded(files: list[Path]) -> tuple[np.ndarray, list, list]:
    """The frames of ``files`` decoded into one ``(N, h, w[, 3])`` array, each frame written into it
    as it is decoded (a burst takes its own size, not twice it), and each frame's
    :class:`multisr.storage.io.Picture` (its pixels dropped) and RAW record; :class:`UserError`
    naming a frame whose size or colour differs from the first's."""
    first, first_raw = read_frame(files[0])
    frames = np.empty((len(files), *first.image.shape), np.float32)
    frames[0] = first.image
    pictures, raws = [replace(first, image=None)], [_without_pixels(first_raw)]

    def one(index: int) -> tuple:
        picture, raw = read_frame(files[index])
        if picture.image.shape != first.image.shape:
            raise UserError(f"{files[index]}: expected every frame to be {_describe(first.image.shape)} like "
                            f"{files[0].name}, found {_describe(picture.image.shape)}")
        frames[index] = picture.image
        return replace(picture, image=None), _without_pixels(raw)

    for picture, raw in in_threads(one, range(1, len(files))):
        pictures.append(picture)
        raws.append(raw)
    return frames, pictures, raws


def check_box_early(roi: str, folder: Path) -> None:
    """A box (``"X,Y,W,H"``) checked against a folder's frames from the first image's header,
    before anything is decoded (a video's size is known once it is decoded: the target stage
    checks it then)."""
    if is_video(folder) or not folder.is_dir():
        return
    size = _frame_size(scan_folder(folder).images[0])
    if size is not None:
        width, height, orientation = size
        upright = (width, height) if orientation < 5 else (height, width)  # 5-8 turn the picture
        check_roi(parse_roi(roi), upright[::-1])


def _no_mosaic_reason(files: list[Path], raws: list) -> str:
    """Why a RAW burst is not solved from its mosaics: a frame without a mosaic of red, green and
    blue, or two frames whose colour layouts differ (named)."""
    for path, raw in zip(files, raws):
        if raw.mosaic is None:
            return (f"{path.name} has no mosaic of red, green and blue it can be solved from (a linear DNG, a "
                    f"four-colour sensor, or levels and a white balance that cannot scale one)")
    for path, raw in zip(files, raws):
        if not np.array_equal(raw.colours, raws[0].colours):
            return (f"{path.name}'s colour layout ({raw.info['pattern']}) differs from {files[0].name}'s "
                    f"({raws[0].info['pattern']})")
    return "the frames' mosaics differ"


def load_burst(*, folder: str, n: int | str, start: int, reference: int | str, scale: int) -> dict:
    """The ``load`` stage: frames ``start`` to ``start + n - 1`` (``n`` ``"all"``: to the last) of
    a folder of images or a video file, upright by their EXIF orientation, with their ``source``
    (where they came from; for a folder also the files passed over, each frame's EXIF
    orientation, whether the reference has an alpha channel, which ``alpha`` carries, and for RAW
    frames what the reference's file said: pattern, levels, white balance, colour matrix). RAW
    frames also give their ``mosaic`` ``(N, h, w)`` and its ``colours`` ``(h, w)``
    (:class:`multisr.storage.raw.RawFrame`; ``None`` for other frames, and for RAW frames whose
    mosaics differ in layout). ``scale`` is the run's magnification, handed on to the stages."""
    if is_video(Path(folder)):
        frames, source = read_video(Path(folder), start=start, count=None if n == ALL_FRAMES else n,
                                    budget=memory_budget())
        names = [f"{Path(folder).name}#{start + k}" for k in range(len(frames))]
        return {**burst_artifacts(frames, names, bit_depth=8, reference=reference), "source": source, "known": None,
                "alpha": None, "mosaic": None, "colours": None, "target": None, "scale": scale}
    files, listing = _selected(folder, n, start)
    _check_memory(files)
    frames, pictures, raws = _decoded(files)
    artifacts = burst_artifacts(frames, [p.name for p in files], bit_depth=8, reference=reference)
    artifacts["bit_depth"] = pictures[artifacts["reference"]].bit_depth  # the result keeps the reference's
    alpha = pictures[artifacts["reference"]].alpha
    source = {"folder": str(Path(folder).resolve()), "first": start, "count": len(files),
              "exif_orientation": [picture.orientation for picture in pictures],
              "alpha": None if alpha is None else "the reference frame's, upscaled with MATLAB's bicubic",
              "passed_over": listing.passed_over,
              # a JPEG reference's: multiframe models 4:2:0 chroma (reconstruct.chroma_subsampling)
              "chroma_subsampling": pictures[artifacts["reference"]].chroma_subsampling}
    mosaic = colours = None
    if raws[0] is not None:  # RAW frames: how they were developed, and what the reference's file said
        source["raw"] = {"development": DEVELOPMENT, **raws[artifacts["reference"]].info}
        if all(raw.mosaic is not None and np.array_equal(raw.colours, raws[0].colours) for raw in raws):
            mosaic, colours = np.stack([raw.mosaic for raw in raws]), raws[0].colours
        source["raw"]["mosaic"] = mosaic is not None  # whether the burst can demosaic itself
        if mosaic is None:  # said on the console too (multisr run): the burst's own demosaicing is off
            source["raw"]["no_mosaic"] = _no_mosaic_reason(files, raws)
    return {**artifacts, "source": source, "known": None, "alpha": alpha, "mosaic": mosaic, "colours": colours,
            "target": None, "scale": scale}


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


def burst_fingerprint(params: dict, scale: int) -> str:
    """The load stage's outside data: the frames' files (or the video and its decoder); not the scale."""
    folder, n, start = params["folder"], params["n"], params["start"]
    try:
        if is_video(Path(folder)):  # the decoded frames depend on the file and the decoder
            check_regular_file(Path(folder), what="a video file")  # a pipe named like a video would be read forever
            return f"{file_digest(Path(folder))}:{start}:{n}:{cv2.__version__}"
        files, listing = _selected(folder, n, start)  # the files passed over are in the record
        return ",".join(file_digest(p) for p in files) + repr(sorted(listing.passed_over.items()))
    except OSError as error:
        raise UserError(f"{error.filename}: expected a readable file, but it cannot be read "
                        f"({error.strerror})") from None

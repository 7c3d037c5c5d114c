"""A super-resolved video: every output frame made from the window of frames around it, with that
frame as the reference (``multisr video``).

Output frame ``t`` (every ``step``-th frame of the clip) is the pipeline's result on frames
``t - window // 2`` to ``t + (window - 1) // 2``, shifted to stay inside the clip, with frame
``t`` the reference, so the video keeps its own timing. Each window runs in memory
(:func:`multisr.runs.engine.run_frames`, not through the stage cache: a clip's windows would fill it
with a copy of every frame 20 times over), and each finished output frame is recorded in
``OUT/frames/progress.jsonl`` with the settings' key and its PNG's digest, so a killed run,
started again with the same settings, recomputes only the frames it had not finished. The frames
are decoded once, in order, and only a window's worth is held at a time.

With ``share_registration``, overlapping windows share their registration
(:func:`known_matrices`): a frame that the previous window registered keeps that registration,
composed onto the new reference, and only the frames new to the window are registered (the
multi-frame solve then refines every frame's motion against its solution as always). On a
100-frame real clip that took 23 % less time, but the frames differed from the unshared ones by
6.2 levels of 255 on average (a window's blur estimate can come out otherwise), and no clip with
a known truth has shown which is better yet: it is off by default.
"""
import hashlib
import json
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..progress import progress_bar
from ..registration.tracking import Follower, parse_roi
from ..runs.engine import run_frames
from ..runs.pipeline import Pipeline
from ..params import SCALE
from ..runs.stages import STAGES
from ..storage.files import atomic_output, file_digest, remove, write_json
from ..storage.io import read_image, to_uint, write_image
from ..storage.rundir import check_out_dir, locked
from ..storage.video import VIDEO_SUFFIXES, chroma_subsampling, is_video, iter_video, video_info

__all__ = ["window_of", "known_matrices", "super_resolve_video"]

PROGRESS = "progress.jsonl"  # in OUT/frames: a line per finished output frame


def window_of(t: int, *, window: int, frames: int) -> range:
    """The frames of the window around frame ``t`` of a clip of ``frames`` frames: ``window``
    frames (fewer in a shorter clip), centred on ``t`` where the clip allows."""
    window = min(window, frames)
    first = min(max(0, t - window // 2), frames - window)
    return range(first, first + window)


def known_matrices(previous: range, matrices: np.ndarray, left_out: set[int], window: range, t: int
                   ) -> np.ndarray | None:
    """The registration of the frames of ``window`` against frame ``t`` that the previous window
    already found: ``matrices`` ``(len(previous), 3, 3)`` registered the frames of ``previous``
    against its reference (the clip's frames ``left_out`` excepted), so frame k's matrix against t
    is ``A(k) @ inv(A(t))``. Returns ``(len(window), 3, 3)``, NaN for the frames to register
    afresh, or ``None`` when ``t`` was not registered in the previous window."""
    if t not in previous or t in left_out:
        return None
    to_t = np.linalg.inv(matrices[t - previous.start])
    known = np.full((len(window), 3, 3), np.nan)
    for k in window:
        if k in previous and k not in left_out:
            known[k - window.start] = matrices[k - previous.start] @ to_t
    return known


def super_resolve_video(pipeline: Pipeline, clip: Path, *, out_dir: Path, window: int = 20, step: int = 1,
                        share_registration: bool = False, device: str = "auto", roi: str | None = None,
                        scale: int = SCALE) -> dict:
    """Write ``out_dir/frames/frame_NNNNNN.png`` (NNNNNN the clip's frame number), ``out_dir/video.mkv``
    (lossless FFV1, at the clip's frame rate divided by ``step``) and ``out_dir/video.json`` (the
    parameters, the source and each output frame's seconds, how many frames it registered afresh
    and whether it was ``resumed``: taken from an earlier run into ``out_dir`` with the same
    settings). By default every window is registered whole. With ``roi`` (``"X,Y,W,H"``, a box in
    the clip's first frame), the box's target is followed through the clip
    (:class:`multisr.registration.tracking.Follower`) and output frame t is the box of that size centred on the
    target in frame t, at ``scale`` x like every output frame (:func:`multisr.runs.engine.run_frames` with that box): a video
    stabilised on the target; ``video.json`` gives each output frame's box. Returns what
    ``video.json`` holds."""
    clip, out_dir = Path(clip), Path(out_dir)
    if not is_video(clip):
        raise UserError(f"clip {clip}: expected a video file ({', '.join(VIDEO_SUFFIXES)})")
    if window < 2 or step < 1:
        raise UserError(f"window: expected at least 2 frames and a step of at least 1, got {window} and {step}")
    if roi is not None:
        roi = STAGES["target"].params["roi"].check("roi", roi)
    scale = STAGES["load"].params["scale"].check("scale", scale)
    check_out_dir(out_dir, clip)
    with locked(out_dir):
        return _write_video(pipeline, clip, out_dir, window=window, step=step, share=share_registration, device=device,
                            roi=roi, scale=scale)


def _settings_key(pipeline: Pipeline, clip: Path, **settings) -> str:
    """SHA-256 of what the output frames depend on: the clip's bytes and decoder, the settings (the
    scale among them), and each stage's name, version, parameters and outside data (weights)."""
    steps = [[stage.name, stage.version, params,
              stage.fingerprint(params, settings["scale"]) if stage.fingerprint else ""] for stage, params in pipeline.steps]
    text = json.dumps({"clip": file_digest(clip), "decoder": cv2.__version__, "steps": steps, **settings},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _finished_frames(frames_dir: Path, key: str) -> dict[int, dict]:
    """The output frames an earlier run with settings ``key`` finished, by frame number (their
    progress lines, whose PNG is still there unchanged); an earlier run's frames under other
    settings are removed (only the ones its progress file names)."""
    progress = frames_dir / PROGRESS
    lines = []
    if progress.is_file():
        for text in progress.read_text().splitlines():
            try:
                line = json.loads(text)
                int(line["frame"]), str(line["sha256"])
            except (ValueError, TypeError, KeyError):  # the line a killed run was writing
                break
            lines.append(line)
    if any(line.get("key") != key for line in lines):
        for line in lines:
            remove(frames_dir / f"frame_{int(line['frame']):06d}.png")
        lines = []
    with atomic_output(progress) as tmp:  # without a line a killed run left half-written
        Path(tmp).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {line["frame"]: line for line in lines
            if (frames_dir / f"frame_{line['frame']:06d}.png").is_file()
            and file_digest(frames_dir / f"frame_{line['frame']:06d}.png") == line["sha256"]}


def _write_video(pipeline: Pipeline, clip: Path, out_dir: Path, *, window: int, step: int, share: bool,
                 device: str, roi: str | None, scale: int) -> dict:
    count, rate, grey = video_info(clip)
    if count < 2:
        raise UserError(f"{clip}: expected a video of at least 2 frames, found {count}")
    frames_dir = out_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    key = _settings_key(pipeline, clip, window=window, step=step, share=share, roi=roi, scale=scale)
    finished = _finished_frames(frames_dir, key)
    outputs = list(range(0, count, step))
    held: deque = deque()  # (frame number, frame) of the frames decoded so far that a window still needs
    decoded = enumerate(iter_video(clip, grey=grey))
    subsampling = chroma_subsampling(clip)  # the stream's, once: every window's solve models it
    records, writer, previous, follower = [], None, None, None
    started = time.perf_counter()
    try:
        with progress_bar(total=len(outputs), desc="video", unit="frame", leave=False) as bar, \
                open(frames_dir / PROGRESS, "a") as progress:
            for t in outputs:
                frames_used = window_of(t, window=window, frames=count)
                png = frames_dir / f"frame_{t:06d}.png"
                if t in finished:
                    line = finished[t]
                    image = to_uint(read_image(png)[0])
                else:
                    while not held or held[-1][0] < frames_used.stop - 1:
                        held.append(next(decoded))
                        follower = _follow(follower, roi, *held[-1])
                    while held[0][0] < frames_used.start:
                        held.popleft()
                    box = follower.box_in(t) if follower is not None else None
                    line = _solve_window(pipeline, clip, held, frames_used, t, previous, share=share, device=device,
                                         roi=box, subsampling=subsampling, scale=scale)
                    image = to_uint(line.pop("image"))
                    write_image(png, image.astype(np.float32) / 255)
                    line.update(key=key, sha256=file_digest(png))
                    progress.write(json.dumps(line) + "\n")
                    progress.flush()
                previous = (frames_used, np.array(line["matrices"]), set(line["left_out"])) if line["matrices"] else None
                if writer is None:
                    writer = cv2.VideoWriter(str(out_dir / ".video.mkv"), cv2.VideoWriter_fourcc(*"FFV1"),
                                             max(rate / step, 1.0), (image.shape[1], image.shape[0]))
                writer.write(image[..., ::-1] if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
                records.append({"frame": t, "window": [frames_used.start, frames_used.stop - 1],
                                "registered": line["registered"], "seconds": line["seconds"], "resumed": t in finished,
                                **({"roi": line["roi"]} if roi is not None else {})})
                bar.update()
    finally:
        if writer is not None:
            writer.release()
    (out_dir / ".video.mkv").replace(out_dir / "video.mkv")
    record = {"pipeline": pipeline.name, "clip": str(clip.resolve()), "frames_in_clip": count, "frame_rate": rate,
              "window": window, "step": step, "share_registration": share, "roi": roi, "scale": scale, "outputs": records,
              "seconds": round(time.perf_counter() - started, 4)}
    write_json(out_dir / "video.json", record)
    return record


def _follow(follower, roi: str | None, k: int, frame: np.ndarray):
    """The :class:`~multisr.registration.tracking.Follower` of ``roi`` with frame ``k`` added (made from frame
    0); ``None`` without a box."""
    if roi is None:
        return None
    if follower is None:
        return Follower(frame, parse_roi(roi))
    follower.add(k, frame)
    return follower


def _solve_window(pipeline: Pipeline, clip: Path, held: deque, frames_used: range, t: int, previous: tuple | None,
                  *, share: bool, device: str, roi: str | None, subsampling: str | None, scale: int) -> dict:
    """Output frame ``t`` from the frames ``held`` (those of ``frames_used``): its ``image``, its
    progress line (frame, seconds, frames registered afresh) and, with ``share``, the registration
    the next window may take from this one (``matrices``, ``left_out``; ``previous`` is this
    window's from the window before). ``subsampling``: the clip's chroma subsampling (read once)."""
    tick = time.perf_counter()
    known = known_matrices(*previous, frames_used, t) if share and previous is not None else None
    names = [f"{clip.name}#{k}" for k, _ in held]
    result = run_frames(pipeline, np.stack([frame for _, frame in held]), names=names,
                        reference=t - frames_used.start, known=known, device=device, roi=roi,
                        chroma_subsampling=subsampling, scale=scale)
    matrices, left_out = None, []
    if share and result.matrices is not None:
        matrices = result.matrices.tolist()
        left_out = sorted(frames_used.start + names.index(e["frame"]) for e in result.record["excluded"])
    return {"frame": t, "image": result.image, "matrices": matrices, "left_out": left_out, "roi": roi,
            "registered": len(frames_used) - 1 if known is None else int(np.isnan(known[:, 0, 0]).sum()),
            "seconds": round(time.perf_counter() - tick, 4)}

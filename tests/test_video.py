"""Bursts from video files: decoding to the known frames, runs equal to runs on the same frames as
images, and the one-line errors of a video that cannot be read."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, invoke
from multisr.storage.io import read_image, to_uint, write_image
from multisr.research.scenes import licence_plate
from multisr.storage.video import read_video


def write_video(path, frames, fourcc="FFV1"):
    """``(N, h, w[, 3])`` float frames, 8-bit, into ``path`` with ``fourcc`` (OpenCV's FFmpeg; FFV1, lossless, by default)."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (width, height))
    assert writer.isOpened()
    for frame in to_uint(frames):
        writer.write(frame[..., ::-1] if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


@pytest.fixture()
def burst_frames(tiny_burst):
    """The tiny burst's frames cut to an even size (what video encoders take)."""
    frames = np.stack([read_image(path)[0] for path in sorted(tiny_burst.glob("frame_*.png"))])
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


@pytest.mark.parametrize("suffix, fourcc", [(".mkv", "FFV1"), (".avi", "FFV1"), (".avi", "HFYU"), (".avi", "png ")])
def test_a_lossless_video_decodes_to_its_frames(burst_frames, tmp_path, suffix, fourcc):
    path = tmp_path / f"clip{suffix}"
    write_video(path, burst_frames, fourcc)
    frames, source = read_video(path, start=1, count=4)
    assert np.array_equal(frames, burst_frames[1:5])
    assert source["first"] == 1 and source["count"] == 4 and len(source["sha256"]) == 64
    assert source["chroma_subsampling"] == "4:4:4"  # RGB pixel formats: full chroma


@pytest.mark.parametrize("suffix, fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_a_lossy_videos_chroma_subsampling_is_read_from_its_stream(burst_frames, tmp_path, suffix, fourcc):
    """MPEG-4 and Motion JPEG as OpenCV writes them store chroma 4:2:0 (yuv420p, yuvj420p)."""
    path = tmp_path / f"clip{suffix}"
    write_video(path, burst_frames, fourcc)
    assert read_video(path, count=2)[1]["chroma_subsampling"] == "4:2:0"


def test_a_grey_video_decodes_to_grey_frames(burst_frames, tmp_path):
    grey = burst_frames.mean(axis=3)
    write_video(tmp_path / "grey.mkv", grey)
    frames, _ = read_video(tmp_path / "grey.mkv", count=len(grey))
    assert frames.ndim == 3 and np.array_equal(frames, to_uint(grey).astype(np.float32) / 255)


def test_a_run_on_a_video_equals_the_run_on_its_frames(burst_frames, tmp_path):
    video = tmp_path / "clip.mkv"
    write_video(video, burst_frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, frame in enumerate(burst_frames):
        write_image(folder / f"frame_{k:03d}.png", frame)
    for source, out in ((video, tmp_path / "from-video"), (folder, tmp_path / "from-images")):
        result = invoke("run", source, "--n", 4, "--start", 1, "--out", out, "--pipeline", "multiframe")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "from-video" / "result.png").read_bytes() == (tmp_path / "from-images" / "result.png").read_bytes()


@pytest.mark.parametrize("case, fragment", [
    ("garbage", "expected a video FFmpeg can decode"),
    ("truncated", "expected at least 6 frames (n=6)"),
    ("too_short", "expected at least 9 frames (start=3, n=6), found 6"),
])
def test_a_video_that_cannot_be_read_is_one_line(burst_frames, tmp_path, case, fragment):
    video = tmp_path / "clip.mkv"
    if case == "garbage":
        video.write_bytes(b"\x1aE\xdf\xa3 not a video" * 50)
    else:
        write_video(video, burst_frames)
    if case == "truncated":
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    start = 3 if case == "too_short" else 0
    result = invoke("run", video, "--n", 6, "--start", start, "--out", tmp_path / "out")
    assert_one_line_error(result, str(video), fragment)
    assert not (tmp_path / "out" / "result.png").exists()


def test_video_writes_a_frame_per_window_and_a_rerun_resumes_it(burst_frames, tmp_path):
    """A 6-frame clip, windows of 4 every 2nd frame: output frames 0, 2 and 4 (windows 0-3, 0-3 and
    2-5), as PNGs and as a lossless video of the same frames; run again, every frame is resumed
    and the video is the same; the windows leave nothing in the stage cache."""
    import json
    import os

    clip = tmp_path / "clip.mkv"
    write_video(clip, burst_frames)
    out = tmp_path / "video"
    videos = []
    for attempt in range(2):
        result = invoke("video", clip, "--window", 4, "--step", 2, "--out", out)
        assert result.exit_code == 0, result.output
        videos.append(read_video(out / "video.mkv", count=3)[0])
    record = json.loads((out / "video.json").read_text())
    assert [o["frame"] for o in record["outputs"]] == [0, 2, 4]
    assert [o["window"] for o in record["outputs"]] == [[0, 3], [0, 3], [2, 5]]
    assert all(o["resumed"] for o in record["outputs"])  # the second attempt
    pngs = sorted((out / "frames").glob("frame_*.png"))
    assert [p.name for p in pngs] == ["frame_000000.png", "frame_000002.png", "frame_000004.png"]
    assert np.array_equal(videos[0], np.stack([read_image(p)[0] for p in pngs]))
    assert np.array_equal(videos[0], videos[1])
    assert videos[0].shape[1:3] == (3 * burst_frames.shape[1], 3 * burst_frames.shape[2])
    assert not any(Path(os.environ["MULTISR_CACHE"]).glob("*/*"))


def test_a_killed_video_resumes_where_it_stopped(burst_frames, tmp_path, monkeypatch):
    """Killed while making its third frame, the video started again computes the frames from
    there on only (and a frame whose PNG was changed since), and ends equal to an unbroken run;
    with another step it starts over, without the earlier run's frames."""
    import json

    import multisr.outputs.videosr

    clip = tmp_path / "clip.mkv"
    write_video(clip, burst_frames)
    assert invoke("video", clip, "--window", 3, "--step", 1, "--out", tmp_path / "whole").exit_code == 0
    solve, calls = multisr.outputs.videosr._solve_window, []

    def dies_at_the_third(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return solve(*args, **kwargs)

    out = tmp_path / "video"
    with monkeypatch.context() as patched:
        patched.setattr(multisr.outputs.videosr, "_solve_window", dies_at_the_third)
        invoke("video", clip, "--window", 3, "--step", 1, "--out", out)
    assert sorted(p.name for p in (out / "frames").glob("frame_*.png")) == ["frame_000000.png", "frame_000001.png"]
    write_image(out / "frames" / "frame_000001.png", np.zeros((4, 4)))  # changed since: made again
    assert invoke("video", clip, "--window", 3, "--step", 1, "--out", out).exit_code == 0
    record = json.loads((out / "video.json").read_text())
    assert [o["resumed"] for o in record["outputs"]] == [True, False, False, False, False, False]
    for t in range(6):
        name = f"frames/frame_{t:06d}.png"
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), t
    assert np.array_equal(read_video(out / "video.mkv", count=6)[0], read_video(tmp_path / "whole" / "video.mkv", count=6)[0])

    assert invoke("video", clip, "--window", 3, "--step", 4, "--out", out).exit_code == 0
    assert sorted(p.name for p in (out / "frames").glob("frame_*.png")) == ["frame_000000.png", "frame_000004.png"]
    assert not any(o["resumed"] for o in json.loads((out / "video.json").read_text())["outputs"])


def test_overlapping_windows_share_their_registration(burst_frames, tmp_path):
    """Window 4, step 1, 6 frames: after the first window, each registers only the frames new to it
    (0, 0, 1, 1, 0 of its 3 others), and the frames stay within 2 levels of 255 (mean) of the
    video made with every window registered whole."""
    import json

    clip = tmp_path / "clip.mkv"
    write_video(clip, burst_frames)
    outputs = {}
    for share in ("--share-registration", "--no-share-registration"):
        out = tmp_path / share
        assert invoke("video", clip, "--window", 4, "--step", 1, "--out", out, share).exit_code == 0
        outputs[share] = json.loads((out / "video.json").read_text())["outputs"]
    assert [o["registered"] for o in outputs["--share-registration"]] == [3, 0, 0, 1, 1, 0]
    assert [o["registered"] for o in outputs["--no-share-registration"]] == [3] * 6
    for t in range(6):
        shared, whole = (read_image(tmp_path / share / "frames" / f"frame_{t:06d}.png")[0] for share in outputs)
        assert np.abs(shared - whole).mean() * 255 < 2, t


def test_a_known_registration_composes_onto_the_new_reference():
    """The previous window's matrices (here the true ones, against frame 0), composed onto frame 1,
    agree with registering against frame 1 directly: within 0.1 LR px (measured up to 0.05) on a
    burst turned by up to 15 degrees, where composing the wrong way round is 0.7-0.8 px off."""
    from multisr.imaging.geometry import rms_displacement
    from multisr.registration.burst import register_burst
    from multisr.research.simulate import simulate_burst
    from multisr.outputs.videosr import known_matrices

    burst = simulate_burst(licence_plate(width=300, height=190), n=7, seed=11, max_angle=15)
    known = known_matrices(range(0, 6), burst.matrices[:6], set(), range(1, 7), 1)
    direct = register_burst(burst.frames[1:7], reference=0)
    assert np.isnan(known[5]).all()  # frame 6 was not in the previous window
    for k in range(5):
        assert rms_displacement(known[k], direct[k].matrix, burst.frames.shape[1:3]) < 0.1, k

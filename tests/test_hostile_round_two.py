"""The second hostile round: code in checkpoints, image bombs, a batch that dies whole, options that
reach a library unchecked, signals, noise before the error, paths out of the package, damaged
weights. Each case is built here and must end as the README promises: one line naming the file or
option, a non-zero exit, nothing half-written, nothing lost."""
import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, copy_burst, invoke
from multisr.storage.io import write_image
from multisr.sr.weights import WEIGHTS_DIR

COMMAND = [sys.executable, "-c", "from multisr.cli import cli; cli()"]


class Marker:
    """Unpickling this creates a file: what a crafted checkpoint would do with code of its own."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A PNG of ``width`` x ``height`` grey pixels whose header is valid; ``rows`` is its IDAT's
    uncompressed data (by default nothing at all: a header that claims what the file does not hold)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows or b""))
            + chunk(b"IEND", b""))


# --- code in checkpoints, damaged weights ------------------------------------------------------


def test_a_crafted_checkpoint_runs_no_code(plate, tmp_path):
    write_image(tmp_path / "images" / "plate.png", plate)
    (tmp_path / "train").mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"model": Marker(str(marker)), "optimizer": {}, "epoch": 1, "elapsed": 0.0, "log": []},
               tmp_path / "train" / "checkpoint.pt", pickle_protocol=2)
    result = invoke("train", "--data", tmp_path / "images", "--out", tmp_path / "train", "--epochs", 1)
    assert_one_line_error(result, "checkpoint.pt", "cannot be read (UnpicklingError)")
    assert not marker.exists()


def test_a_damaged_copy_of_shipped_weights_or_one_without_digest_is_refused(tiny_burst, tmp_path):
    """100 bytes flipped in the middle of a copy of srcnn-955.pt, passed as a file: caught by the
    tensors' digest that every shipped file now carries (or the file no longer reads at all)."""
    data = bytearray((WEIGHTS_DIR / "srcnn-955.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 100] = bytes(255 - b for b in data[middle : middle + 100])
    (tmp_path / "copy.pt").write_bytes(bytes(data))
    result = invoke("upscale", tiny_burst / "frame_000.png", "--out", tmp_path / "up.png", "--model", tmp_path / "copy.pt")
    assert_one_line_error(result, "copy.pt")
    assert "digest" in result.stderr or "cannot be read" in result.stderr
    payload = torch.load(WEIGHTS_DIR / "srcnn-955.pt", weights_only=True)
    del payload["sha256"]
    torch.save(payload, tmp_path / "bare.pt")
    result = invoke("upscale", tiny_burst / "frame_000.png", "--out", tmp_path / "up.png", "--model", tmp_path / "bare.pt")
    assert_one_line_error(result, "bare.pt", "found none")
    assert not (tmp_path / "up.png").exists()
    for name in ("srcnn-955", "srcnn-915", "restore-955", "restore-mix"):
        assert "sha256" in torch.load(WEIGHTS_DIR / f"{name}.pt", weights_only=True)


# --- image bombs ---------------------------------------------------------------------------------


def test_an_image_whose_header_claims_ten_gigapixels_is_one_line(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    (frames / "frame_003.png").write_bytes(png(100000, 100000))
    assert_one_line_error(invoke("run", frames, "--n", "all", "--out", tmp_path / "out"), "frame_003.png",
                          "header says 100000x100000", "MULTISR_MAX_PIXELS")
    assert_one_line_error(invoke("upscale", frames / "frame_003.png", "--out", tmp_path / "up.png"), "frame_003.png")
    assert_one_line_error(invoke("compare", tiny_burst, "--n", 6, "--out", tmp_path / "report", "--truth",
                                 frames / "frame_003.png"), "frame_003.png", "100000x100000")
    assert not (tmp_path / "out" / "result.png").exists() and not (tmp_path / "up.png").exists()


def test_a_small_file_that_decodes_to_more_than_the_limit_is_refused_undecoded(tmp_path, monkeypatch):
    """A 4000x4000 PNG of zeros is 16 kB; under a limit of 10 megapixels it is refused from its
    header, and the limit is the user's to raise."""
    (tmp_path / "bomb.png").write_bytes(png(4000, 4000, b"\0" * (4001 * 4000)))
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    monkeypatch.setenv("MULTISR_MAX_PIXELS", "10M")
    assert_one_line_error(invoke("upscale", tmp_path / "bomb.png", "--out", tmp_path / "up.png"),
                          "at most 10,000,000 pixels", "4000x4000")
    monkeypatch.setenv("MULTISR_MAX_PIXELS", "ten")
    assert_one_line_error(invoke("upscale", tmp_path / "bomb.png", "--out", tmp_path / "up.png"), "MULTISR_MAX_PIXELS",
                          "'ten'")


# --- a batch that dies whole ------------------------------------------------------------------


@pytest.fixture
def in_process_scheduler():
    """A Dask cluster of threads in this process, so that a test's monkeypatching reaches its tasks."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_a_burst_that_raises_anything_fails_alone_and_batch_json_follows(tiny_burst, tmp_path, monkeypatch,
                                                                         in_process_scheduler):
    import multisr.outputs.batch as batch

    inputs = tmp_path / "bursts"
    for name in "abc":
        copy_burst(tiny_burst, inputs / name if inputs.exists() else (inputs.mkdir() or inputs / name), n=4)
    out = tmp_path / "out"
    first = invoke("batch", inputs, "--out", out, "--scheduler", in_process_scheduler, "--pipeline", "bicubic")
    assert first.exit_code == 0, first.output
    import multisr.runs.runner as runner

    original_run_one, original_run = batch.run_one, runner.run_pipeline
    seen = tmp_path / "seen"  # files, not objects: Dask pickles a task's function by value
    seen.mkdir()

    def run_pipeline_failing_on_b(pipeline, frames_dir, **kwargs):
        if str(frames_dir).endswith("/b"):
            raise RuntimeError("a fault of multisr's own\nsecond line")
        return original_run(pipeline, frames_dir, **kwargs)

    def dying_on_c(pipeline, overrides, burst, out_dir, *args):
        (seen / os.path.basename(burst)).write_text((out / "batch.json").read_text())  # the folder's summary meanwhile
        if burst.endswith("/c"):
            raise ZeroDivisionError()  # as a worker that died would: the task's future raises
        return original_run_one(pipeline, overrides, burst, out_dir, *args)

    monkeypatch.setattr(runner, "run_pipeline", run_pipeline_failing_on_b)
    monkeypatch.setattr(batch, "run_one", dying_on_c)
    second = invoke("batch", inputs, "--out", out, "--scheduler", in_process_scheduler, "--pipeline", "bicubic")
    assert second.exit_code == 1, second.output
    summary = json.loads((out / "batch.json").read_text())
    assert summary["finished"] and summary["failed"] == 2
    a, b, c = summary["bursts"]
    assert "result" in a and "error" not in a
    assert "failed unexpectedly (RuntimeError: a fault of multisr's own); please report it" in b["error"]
    assert "failed unexpectedly (ZeroDivisionError)" in c["error"] and "\n" not in b["error"] + c["error"]
    meanwhile = [json.loads(path.read_text()) for path in seen.iterdir()]
    assert len(meanwhile) == 3 and all(not s["finished"] for s in meanwhile)  # never the earlier batch's summary
    assert all(row.get("pending") or "result" in row or "error" in row for s in meanwhile for row in s["bursts"])
    assert any(row.get("pending") for s in meanwhile for row in s["bursts"])


def test_a_second_batch_into_the_same_folder_is_refused_at_once(tiny_burst, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".batch.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = invoke("batch", tiny_burst, "--out", out, "--workers", 1, "--threads", 1)
    assert_one_line_error(result, "--out", "another multisr batch is writing to this folder")
    assert not (out / "batch.json").exists()


@pytest.mark.parametrize("option, fragments", [
    (["--scheduler", "htp:/x"], ["--scheduler", "expected a Dask scheduler address", "'htp:/x'"]),
    (["--scheduler", "tcp://127.0.0.1:1"], ["--scheduler", "none answered within 10 s"]),
    (["--threads", "100000"], ["--threads", "at most", "100000"]),
    (["--workers", "5000", "--threads", "1"], ["--threads", "5000 x 1"]),
])
def test_batch_options_are_checked_before_any_task(tiny_burst, tmp_path, option, fragments):
    result = invoke("batch", tiny_burst, "--out", tmp_path / "out", *option)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out" / tiny_burst.name).exists()


def test_a_cache_limit_beyond_any_disk_is_one_line(tiny_burst, tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISR_CACHE_LIMIT", "99999999999999999999T")
    assert_one_line_error(invoke("run", tiny_burst, "--n", 4, "--out", tmp_path / "out"), "MULTISR_CACHE_LIMIT",
                          "at most")


# --- signals ----------------------------------------------------------------------------------


def _start(*args, cwd=None):
    """multisr ARGS in its own process group, as a terminal starts a foreground job: with Ctrl-C's
    default action, whatever this test process inherited (a shell's background job ignores SIGINT,
    and a child would inherit that and never see the Ctrl-C)."""
    return subprocess.Popen(COMMAND + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=cwd,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(process, path, timeout=120):
    """Until ``path`` exists (the run is under way), or fail."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("signal_number, status, words", [(signal.SIGTERM, 143, "stopped (SIGTERM)"),
                                                          (signal.SIGINT, 130, "interrupted (Ctrl-C)")])
def test_a_run_stopped_by_a_signal_says_so_in_one_line(tmp_path, signal_number, status, words):
    """A signal once the frames are loaded, in a run that lasts several seconds more (20 frames of
    about 230x140: the plate's 74x40 frames took under a second from there once the solve got
    faster, and the signal could come after the end): one line, the shell's status, no result and
    no record."""
    from multisr.research.scenes import licence_plate
    from multisr.research.simulate import save_burst, simulate_burst

    save_burst(simulate_burst(licence_plate(width=720, height=450), n=20, seed=5), tmp_path / "burst")
    out = tmp_path / "out"
    process = _start("run", tmp_path / "burst", "--n", 20, "--out", out, "--pipeline", "multiframe")
    _wait_for(process, out / "stages" / "load")
    os.killpg(process.pid, signal_number)  # as a terminal's Ctrl-C reaches its foreground group
    _, stderr = process.communicate(timeout=120)
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert process.returncode == status and len(errors) == 1 and words in errors[0], stderr
    assert "Traceback" not in stderr
    assert not (out / "result.png").exists() and not (out / "run.json").exists()


def test_ctrl_c_during_a_batch_is_one_line_without_the_workers_tracebacks(tiny_burst, tmp_path):
    inputs = tmp_path / "bursts"
    inputs.mkdir()
    for k in range(6):
        copy_burst(tiny_burst, inputs / f"b{k}")
    out = tmp_path / "out"
    process = _start("batch", inputs, "--out", out, "--workers", 2, "--threads", 1)
    _wait_for(process, out / "b0" / ".lock")  # a worker has started its first burst
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert process.returncode == 130 and len(errors) == 1 and "interrupted (Ctrl-C)" in errors[0], stderr
    assert "Traceback" not in stderr and "leaked semaphore" not in stderr and "KeyboardInterrupt" not in stderr, stderr


# --- noise, paths -------------------------------------------------------------------------------


def test_a_video_that_cannot_be_opened_is_the_only_line(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"not a video" * 100)
    done = subprocess.run(COMMAND + ["run", str(tmp_path / "clip.mp4"), "--n", "3", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith("Error: ") and len(done.stderr.splitlines()) == 1, \
        done.stderr


def test_a_pipeline_name_never_reaches_outside_the_package(tiny_burst, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../multiframe.toml here either
    for name in ("../multiframe", "../pipelines/multiframe", "/multiframe"):
        assert_one_line_error(invoke("run", tiny_burst, "--n", 4, "--out", tmp_path / "out", "--pipeline", name),
                              "--pipeline", "expected one of", repr(name))


def test_research_options_are_checked_before_any_work(tmp_path):
    """Found reviewing every option that reaches a library: torch's thread count (a MemoryError
    traceback), and a benchmark frame size over the pixel limit (a child's traceback)."""
    assert_one_line_error(invoke("train", "--data", tmp_path, "--out", tmp_path / "t", "--threads", 100000),
                          "--threads", "100000")
    assert_one_line_error(invoke("bench", "speed", "--sizes", "100000x100000"), "--sizes", "100000x100000")
    assert not (tmp_path / "t").exists()


def test_a_video_whose_frame_size_changes_midway_is_one_line(tmp_path):
    """Two MPEG-1 streams of 64x48 and 96x64 frames, one after the other in one file: OpenCV's
    reader would scale the second's frames to 64x48 without a word."""
    import cv2

    parts = []
    for size, name in (((64, 48), "a.mpg"), ((96, 64), "b.mpg")):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*"PIM1"), 25, size)
        assert writer.isOpened()
        for k in range(6):
            frame = np.zeros((size[1], size[0], 3), np.uint8)
            frame[:, : 8 * (k + 1)] = 200
            writer.write(frame)
        writer.release()
        parts.append((tmp_path / name).read_bytes())
    (tmp_path / "spliced.mpg").write_bytes(b"".join(parts))
    assert_one_line_error(invoke("run", tmp_path / "spliced.mpg", "--n", 9, "--out", tmp_path / "out"), "spliced.mpg",
                          "to be 64x48 like its first, but frame 5 is 96x64")
    assert invoke("run", tmp_path / "spliced.mpg", "--n", 4, "--out", tmp_path / "first", "--pipeline", "bicubic").exit_code == 0
    assert_one_line_error(invoke("video", tmp_path / "spliced.mpg", "--window", 3, "--out", tmp_path / "video"),
                          "frame 5 is 96x64")


def test_a_pipe_named_like_a_video_is_one_line_and_nothing_hangs(tmp_path):
    """Found reviewing every video open: the cache key read a pipe named clip.mp4 forever."""
    os.mkfifo(tmp_path / "clip.mp4")
    done = subprocess.run(COMMAND + ["run", str(tmp_path / "clip.mp4"), "--n", "3", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "expected a video file, found a special file" in done.stderr and "Traceback" not in done.stderr, done.stderr

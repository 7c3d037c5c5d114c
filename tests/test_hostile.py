"""Hostile input, damaged files and concurrent runs: each case is built here and must end as the
README promises (one line, exit status 2, nothing half-written, the user's files untouched),
or, where the input is usable, as a correct run. Cases that once hung run in a child process
with a time limit, so that a regression fails instead of hanging the suite."""
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, copy_burst, invoke
from multisr.storage.io import read_image, write_image
from multisr.sr.weights import MODEL_NAMES, WEIGHTS_DIR, load_model

COMMAND = [sys.executable, "-c", "from multisr.cli import cli; cli()"]
TIME_LIMIT_S = 120  # far above a tiny burst's run; a hang is what it catches


def run_child(*args, timeout=TIME_LIMIT_S):
    """``multisr ARGS`` in a child process; ``(exit status, stderr)``."""
    done = subprocess.run(COMMAND + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stderr


def assert_child_error(status, stderr, *fragments):
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.is_symlink()}


# --- frames that once hung -------------------------------------------------------------------


@pytest.mark.parametrize("level", [128, 1])
def test_a_burst_of_flat_frames_stops_with_one_line(tmp_path, level):
    frames = tmp_path / "flat"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"f{k}.png"), np.full((56, 106, 3), level, np.uint8))
    status, stderr = run_child("run", frames, "--n", 2, "--out", tmp_path / "out")
    assert_child_error(status, stderr, "expected at least 2 frames that register", "without texture")
    assert not (tmp_path / "out" / "result.png").exists()


def test_one_flat_frame_in_a_burst_is_left_out(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    shape = read_image(frames / "frame_002.png")[0].shape
    cv2.imwrite(str(frames / "frame_002.png"), np.full(shape, 128, np.uint8))
    status, stderr = run_child("run", frames, "--n", 6, "--out", tmp_path / "out")
    assert status == 0, stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [e["frame"] for e in record["excluded"]] == ["frame_002.png"]


def test_a_fifo_named_like_a_frame_is_refused(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    os.mkfifo(frames / "frame_009.png")
    status, stderr = run_child("run", frames, "--n", 7, "--out", tmp_path / "out", timeout=60)
    assert_child_error(status, stderr, "frame_009.png", "special file")


def test_a_link_to_dev_zero_named_like_a_frame_is_refused(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    (frames / "frame_009.png").symlink_to("/dev/zero")
    status, stderr = run_child("run", frames, "--n", 7, "--out", tmp_path / "out", timeout=60)
    assert_child_error(status, stderr, "frame_009.png", "special file")


# --- frames folders that are wrong ----------------------------------------------------------


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("broken_link", ["frame_009.png", "cannot be reached"]),
        ("link_loop", ["frame_009.png", "cannot be reached"]),
        ("one_pixel", ["expected frames of at least 8x8 pixels, found 1x1"]),
        ("one_row", ["expected frames of at least 8x8 pixels, found 50x1"]),
        ("frames_is_a_file", ["expected a folder of frames or a video (.mp4", "but it is a file"]),
        ("sixteen_bit_and_eight_bit_sizes", ["expected every frame to be"]),
    ],
)
def test_frames_that_cannot_make_a_run_are_refused(tiny_burst, tmp_path, case, fragments):
    frames = tmp_path / "frames"
    n = 6
    if case in ("broken_link", "link_loop"):
        copy_burst(tiny_burst, frames)
        if case == "broken_link":
            (frames / "frame_009.png").symlink_to(tmp_path / "gone.png")
        else:
            (frames / "frame_009.png").symlink_to(frames / "frame_010.png")
            (frames / "frame_010.png").symlink_to(frames / "frame_009.png")
        n = 7
    elif case in ("one_pixel", "one_row"):
        frames.mkdir()
        for k in range(3):
            write_image(frames / f"f{k}.png", np.zeros((1, 1 if case == "one_pixel" else 50), np.float32))
        n = 3
    elif case == "frames_is_a_file":
        frames.write_bytes(b"not a folder")
    else:
        copy_burst(tiny_burst, frames)
        write_image(frames / "frame_001.png", np.zeros((20, 20), np.float32), bit_depth=16)
    before = snapshot(frames) if frames.is_dir() else None
    result = invoke("run", frames, "--n", n, "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out" / "result.png").exists()
    assert before is None or snapshot(frames) == before


def test_an_unreadable_frame_is_refused(tiny_burst, tmp_path, monkeypatch):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    (frames / "frame_001.png").chmod(0)
    if os.geteuid() == 0:  # root reads any file: the permission check is told the truth a user would get
        allowed = os.access
        monkeypatch.setattr("multisr.storage.io.os.access", lambda path, mode: Path(path).name != "frame_001.png"
                            and allowed(path, mode))
    assert_one_line_error(invoke("run", frames, "--n", 6, "--out", tmp_path / "out"), "frame_001.png", "permission")


# --- output folders that cannot hold a run ---------------------------------------------------


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("out_is_a_file", ["expected a folder for the run", "is a file"]),
        ("out_under_a_file", ["expected a folder for the run", "is a file"]),
        ("out_is_the_frames_folder", ["expected a folder other than the frames folder"]),
        ("result_is_a_folder", ["result.png: expected a file (or nothing), found a folder"]),
        ("run_json_is_a_folder", ["run.json: expected a file (or nothing), found a folder"]),
    ],
)
def test_an_out_folder_that_cannot_hold_a_run_is_refused(tiny_burst, tmp_path, case, fragments):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    out = tmp_path / "out"
    if case == "out_is_a_file":
        out.write_text("mine")
    elif case == "out_under_a_file":
        (tmp_path / "file").write_text("mine")
        out = tmp_path / "file" / "out"
    elif case == "out_is_the_frames_folder":
        out = frames
    else:
        (out / ("result.png" if case == "result_is_a_folder" else "run.json")).mkdir(parents=True)
    before = snapshot(frames)
    assert_one_line_error(invoke("run", frames, "--n", 6, "--out", out), *fragments)
    assert snapshot(frames) == before
    if case == "out_is_a_file":
        assert out.read_text() == "mine"


def test_an_out_folder_the_system_refuses_is_one_line(tiny_burst, tmp_path):
    """A read-only folder; as root, who writes anywhere, a folder under /sys, which the kernel
    refuses to anyone."""
    if os.geteuid() != 0:
        parent = tmp_path / "read-only"
        parent.mkdir()
        parent.chmod(0o500)
        out = parent / "out"
    else:
        out = Path("/sys/multisr-test-out")
        if out.exists() or not os.path.ismount("/sys"):
            pytest.skip("no sysfs here to refuse")
    assert_one_line_error(invoke("run", tiny_burst, "--n", 6, "--out", out), str(out), "could not read or write")


# --- parameters and pipeline files -----------------------------------------------------------


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("fuse.method=[1,2]", "--set fuse.method: expected a string"),
        ("srcnn.batch_size=2.5", "--set srcnn.batch_size: expected an integer"),
        ("register.max_scale_change=-1", "--set register.max_scale_change: expected a number from 0 to 10"),
        ("register.min_success=nan", "--set register.min_success: expected a finite number, got nan"),
        ("fuse.method=avg", "--set fuse.method: expected one of median, mean, got 'avg'"),
    ],
)
def test_bad_parameters_stop_before_any_stage(tiny_burst, tmp_path, override, fragment):
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", tiny_burst, "--n", 6, "--out", out, "--set", override), fragment)
    assert not out.exists()  # refused before the run touched anything


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("reconstruct.tv_weight=nan", "--set reconstruct.tv_weight: expected a finite number, got nan"),
        ("reconstruct.refine_rounds=-3", "--set reconstruct.refine_rounds: expected an integer from 0 to 10"),
        ("reconstruct.motion_learning_rate=fast", "has no parameter 'motion_learning_rate'"),
    ],
)
def test_bad_solve_parameters_stop_before_any_stage(tiny_burst, tmp_path, override, fragment):
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", tiny_burst, "--n", 6, "--out", out, "--pipeline", "multiframe",
                                 "--set", override), fragment)
    assert not out.exists()


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"stages = [1, 2]", "stages[0] is 1"),
        (b'stages = ["upscale"]', "stages[0] is 'upscale'"),
        ('description = "caf\xe9"'.encode("latin-1"), "expected a UTF-8 TOML pipeline file"),
        (b"stages = [", "expected TOML"),
    ],
)
def test_bad_pipeline_files_are_one_line(tiny_burst, tmp_path, content, fragment):
    path = tmp_path / "mine.toml"
    path.write_bytes(content)
    assert_one_line_error(invoke("run", tiny_burst, "--n", 6, "--out", tmp_path / "out", "--pipeline", path),
                          str(path), fragment)


# --- weights ----------------------------------------------------------------------------------


def _weights(tmp_path, name="mine.pt", **changes):
    payload = torch.load(WEIGHTS_DIR / MODEL_NAMES["srcnn-955"], weights_only=True)
    payload.update(changes)
    path = tmp_path / name
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("nan", "expected finite weights"),
        ("no_config", "expected an SRCNN config"),
        ("huge_kernel", "expected an SRCNN config"),
        ("string_config", "expected an SRCNN config"),
        ("not_weights", "cannot be read"),
    ],
)
def test_damaged_or_meaningless_weights_are_refused(tiny_burst, tmp_path, case, fragment):
    if case == "nan":
        state = {k: torch.full_like(v, float("nan")) for k, v in load_model("srcnn-955").state_dict().items()}
        path = _weights(tmp_path, state_dict=state)
    elif case == "no_config":
        path = _weights(tmp_path, config=None)
    elif case == "huge_kernel":
        path = _weights(tmp_path, config={"f1": 4001, "f2": 5, "f3": 5, "n1": 64, "n2": 32})
    elif case == "string_config":
        path = _weights(tmp_path, config={"f1": "9", "f2": 5, "f3": 5, "n1": 64, "n2": 32})
    else:
        path = tmp_path / "mine.pt"
        path.write_bytes(b"\x00" * 1000)
    result = invoke("run", tiny_burst, "--n", 6, "--out", tmp_path / "out", "--set", f"srcnn.model={path}")
    assert_one_line_error(result, str(path), fragment)
    assert not (tmp_path / "out" / "result.png").exists()


def test_a_changed_shipped_weights_file_is_refused(tmp_path, monkeypatch):
    """100 bytes flipped in the middle of a copy of the shipped weights, taken as the package's."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in MODEL_NAMES.values():
        (folder / name).write_bytes((WEIGHTS_DIR / name).read_bytes())
    (folder / "SHA256SUMS").write_text((WEIGHTS_DIR / "SHA256SUMS").read_text())
    data = bytearray((folder / "srcnn-955.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 100] = bytes(255 - b for b in data[middle : middle + 100])
    (folder / "srcnn-955.pt").write_bytes(bytes(data))
    monkeypatch.setattr("multisr.sr.weights.WEIGHTS_DIR", folder)
    from multisr.errors import UserError

    with pytest.raises(UserError, match="expected the weights shipped with multisr, but the file has changed"):
        load_model("srcnn-955")
    load_model("srcnn-915")  # the others still load


# --- the cache and the run folder -------------------------------------------------------------


def test_edited_cached_values_are_recomputed_not_trusted(tiny_burst, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    result = (out / "result.png").read_bytes()
    meta_path = out / "stages" / "load" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["values"]["bit_depth"] = 16
    meta_path.write_text(json.dumps(meta))
    register_path = out / "stages" / "register" / "meta.json"
    register = json.loads(register_path.read_text())
    register["values"]["registration"][2]["excluded"] = "edited by hand"
    register_path.write_text(json.dumps(register))
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    record = json.loads((out / "run.json").read_text())
    cached = {s["name"]: s["cached"] for s in record["stages"]}
    assert not cached["load"] and not cached["register"]
    assert read_image(out / "result.png")[1] == 8 and (out / "result.png").read_bytes() == result
    assert record["excluded"] == []


@pytest.mark.parametrize("damage", ["empty_list", "missing_key", "stage_is_a_file"])
def test_a_damaged_stage_entry_is_recomputed(tiny_burst, tmp_path, damage):
    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    result = (out / "result.png").read_bytes()
    entry = out / "stages" / "upscale"
    if damage == "empty_list":
        (entry / "meta.json").write_text("[]")
    elif damage == "missing_key":
        meta = json.loads((entry / "meta.json").read_text())
        del meta["digests"]
        (entry / "meta.json").write_text(json.dumps(meta))
    else:  # the entry in the stage cache and the run folder's link to it, each replaced by a file
        target = entry.resolve()
        shutil.rmtree(target)
        target.write_text("not a folder")
        entry.unlink()
        entry.write_text("not a folder")
    again = invoke("run", tiny_burst, "--n", 6, "--out", out)
    assert again.exit_code == 0, again.output
    assert (out / "result.png").read_bytes() == result and (out / "stages" / "upscale" / "meta.json").is_file()


def test_no_cache_into_an_old_run_folder_leaves_no_stale_stage(tiny_burst, tmp_path):
    from multisr import open_run

    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    assert invoke("run", tiny_burst, "--n", 6, "--out", out, "--no-cache", "--set", "fuse.method=mean").exit_code == 0
    assert not (out / "stages").exists()
    run = open_run(out)
    assert run.record["parameters"]["stages"]["fuse"]["method"] == "mean"
    with pytest.raises(Exception, match="no stored output"):
        run["fuse"]


def test_a_run_killed_between_result_and_record_leaves_no_record(tiny_burst, tmp_path, monkeypatch):
    """The result is written, then the process dies before run.json: the folder holds no run.json
    (never the previous run's beside the new result), and a rerun completes it consistently."""
    import multisr.runs.runner as runner

    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    write_json = runner.write_json

    def dies_at_the_record(path, data):
        if path.name == "run.json":
            raise KeyboardInterrupt("killed")
        write_json(path, data)

    monkeypatch.setattr(runner, "write_json", dies_at_the_record)
    killed = invoke("run", tiny_burst, "--n", 6, "--out", out, "--set", "fuse.method=mean")
    assert killed.exit_code != 0 and not (out / "run.json").exists()
    monkeypatch.setattr(runner, "write_json", write_json)
    assert invoke("run", tiny_burst, "--n", 6, "--out", out, "--set", "fuse.method=mean").exit_code == 0
    record = json.loads((out / "run.json").read_text())
    from multisr.storage.files import file_digest

    assert record["result_sha256"] == file_digest(out / "result.png")


def test_leftovers_of_a_killed_run_are_cleaned_and_stale_transforms_removed(tiny_burst, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    (out / ".result.abc123.png").write_bytes(b"partial")
    (out / ".scratch-0123abcd").mkdir()
    (out / "stages" / ".tmp-srcnn-0123abcd").mkdir()
    assert invoke("run", tiny_burst, "--n", 6, "--out", out, "--pipeline", "single").exit_code == 0
    assert not (out / ".result.abc123.png").exists() and not (out / ".scratch-0123abcd").exists()
    assert not (out / "stages" / ".tmp-srcnn-0123abcd").exists()
    assert not (out / "transforms.json").exists()  # single does not register: no stale transforms


def test_stages_on_a_truncated_run_record_is_one_line(tiny_burst, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    text = (out / "run.json").read_text()
    (out / "run.json").write_text(text[: len(text) // 2])
    assert_one_line_error(invoke("stages", out), "run.json", "damaged")


def test_compare_with_a_truncated_truth_is_one_line(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    (frames / "truth.png").write_bytes((tiny_burst / "truth.png").read_bytes())
    (frames / "truth.json").write_text('{"matrices": [[1, 0')
    result = invoke("compare", frames, "--n", 6, "--out", tmp_path / "report", "--truth", frames / "truth.png",
                    "--pipelines", "bicubic,presenters")
    assert_one_line_error(result, "truth.json", "damaged")


# --- concurrent runs --------------------------------------------------------------------------


def test_a_run_on_a_folder_another_run_holds_is_refused_at_once(tiny_burst, tmp_path):
    """The lock a run holds (taken here by the test, as a running process would) makes a second
    process stop with one line, leaving the folder as it was."""
    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 6, "--out", out).exit_code == 0
    before = snapshot(out)
    with open(out / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        status, stderr = run_child("run", tiny_burst, "--n", 6, "--out", out, "--set", "fuse.method=mean")
    assert_child_error(status, stderr, "another multisr run is writing to this folder")
    assert snapshot(out) == before


def test_two_processes_on_one_folder_never_mix_their_runs(tiny_burst, plate, tmp_path):
    """Two real processes, two different bursts, one --out, started together: each either
    finishes as it would alone or is refused; the folder ends describing one of them exactly."""
    from multisr.research.simulate import save_burst, simulate_burst

    other = tmp_path / "other"
    save_burst(simulate_burst(plate[::-1].copy(), n=6, seed=8), other)
    alone = {}
    for name, frames in (("a", tiny_burst), ("b", other)):
        assert invoke("run", frames, "--n", 6, "--out", tmp_path / f"alone-{name}", "--no-cache").exit_code == 0
        alone[str(frames.resolve())] = read_image(tmp_path / f"alone-{name}" / "result.png")[0]
    out = tmp_path / "shared"
    children = [subprocess.Popen(COMMAND + ["run", str(frames), "--n", "6", "--out", str(out)], stderr=subprocess.PIPE,
                                 text=True) for frames in (tiny_burst, other)]
    errors = [child.communicate(timeout=TIME_LIMIT_S)[1] for child in children]
    outcomes = [(child.returncode, stderr) for child, stderr in zip(children, errors)]
    for status, stderr in outcomes:
        assert status == 0 or (status == 2 and "another multisr run is writing" in stderr), stderr
    assert any(status == 0 for status, _ in outcomes)
    record = json.loads((out / "run.json").read_text())
    assert_same_image(out / "result.png", alone[record["parameters"]["frames"]])
    rerun = invoke("run", tiny_burst, "--n", 6, "--out", out)  # and the cache serves nothing of the other
    assert rerun.exit_code == 0
    assert_same_image(out / "result.png", alone[str(tiny_burst.resolve())])


def assert_same_image(path, expected):
    """Within one 8-bit level: a run in a child process and one in this process can register
    with matrices 1e-7 apart, which can move a rounded pixel by a level (the other burst's
    result is tens of levels away)."""
    assert np.abs(read_image(path)[0] - expected).max() <= 1 / 255 + 1e-6


# --- other commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, fragment", [("x.xyz", "expected an image file name ending in"),
                                            ("folder.png", "found a folder"), ("noext", "got 'no suffix'")])
def test_upscale_to_a_path_that_cannot_take_an_image_is_one_line(tiny_burst, tmp_path, name, fragment):
    if name == "folder.png":
        (tmp_path / name).mkdir()
    assert_one_line_error(invoke("upscale", tiny_burst / "frame_000.png", "--out", tmp_path / name), fragment)


def test_compare_into_a_file_is_one_line_before_any_run(tiny_burst, tmp_path):
    (tmp_path / "report").write_text("mine")
    result = invoke("compare", tiny_burst, "--n", 6, "--out", tmp_path / "report", "--pipelines", "bicubic")
    assert_one_line_error(result, "expected a folder for the report, but it is a file")
    assert (tmp_path / "report").read_text() == "mine"


def test_a_run_that_would_fill_the_disk_stops_before_writing(tiny_burst, tmp_path, monkeypatch):
    """The disk is said to have 1 MB free: the cache of a presenters run on 6 frames of about
    64x36 needs more (3 stacks of 6 colour 192x108 frames, 1.5 MB each)."""
    import shutil as shell

    usage = shell.disk_usage(tmp_path)
    monkeypatch.setattr("multisr.runs.engine.shutil.disk_usage", lambda path: usage._replace(free=1_000_000))
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", tiny_burst, "--n", 6, "--out", out), "the run would write about",
                          "GB are free", "without the stage cache writes less")
    assert not (out / "stages" / "upscale").exists() and not (out / "result.png").exists()


def test_a_truncated_png_is_one_line_and_nothing_else(tiny_burst, tmp_path):
    """Checked in a child process: the PNG decoder writes its own complaint to the process's
    stderr, which a truncated file must never reach."""
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    data = (frames / "frame_001.png").read_bytes()
    (frames / "frame_001.png").write_bytes(data[: len(data) // 2])
    status, stderr = run_child("run", frames, "--n", 6, "--out", tmp_path / "out")
    assert_child_error(status, stderr, "frame_001.png", "truncated")
    assert stderr.strip().splitlines() == [line for line in stderr.strip().splitlines() if line.startswith("Error: ")]


def test_a_run_over_the_users_disk_limit_stops_before_writing(tiny_burst, tmp_path):
    """6 colour frames of about 64x36: three stacks of 6 x 192x108x3 float32 (1.5 MB each) and
    more, over a limit of 1 MB; under 1 GB, the run goes and records its estimate."""
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", tiny_burst, "--n", 6, "--out", out, "--max-disk", 0.001),
                          "--max-disk: expected the run to write at most 0.0 GB")
    assert not (out / "stages" / "upscale").exists()
    assert invoke("run", tiny_burst, "--n", 6, "--out", out, "--max-disk", 1).exit_code == 0
    record = json.loads((out / "run.json").read_text())
    assert 3 * 6 * 108 * 192 * 3 * 4 < record["disk_bytes"] < 10**7


def test_a_users_weights_file_with_flipped_bytes_is_refused(tiny_burst, tmp_path):
    """Weights saved by multisr carry the digest of their tensors: 100 bytes flipped among the
    tensors' bytes (found by their values, so the file's structure stays whole) are caught."""
    from multisr.sr.weights import save_weights

    path = tmp_path / "mine.pt"
    save_weights(load_model("srcnn-955"), path, scale=3, meta={})
    assert load_model(str(path)) is not None
    data = bytearray(path.read_bytes())
    start = bytes(data).index(load_model("srcnn-955").patch.bias.detach().numpy().tobytes())  # 64 floats
    data[start : start + 100] = bytes(255 - b for b in data[start : start + 100])
    path.write_bytes(bytes(data))
    result = invoke("run", tiny_burst, "--n", 6, "--out", tmp_path / "out", "--set", f"srcnn.model={path}")
    assert_one_line_error(result, str(path), "expected weights matching the digest saved with them")

import json
import os
import stat

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, copy_burst, invoke
from multisr.imaging.geometry import rms_displacement
from multisr.research.scenes import licence_plate
from multisr.storage.io import read_image, write_image


def test_run_end_to_end(tiny_burst, tmp_path):
    out = tmp_path / "out"
    result = invoke("run", tiny_burst, "--n", 6, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    frame, _ = read_image(tiny_burst / "frame_000.png")
    image, bit_depth = read_image(out / "result.png")
    assert image.shape == (3 * frame.shape[0], 3 * frame.shape[1], 3) and bit_depth == 8
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "result.png").stat().st_mode) == 0o666 & ~umask  # as open() would make it
    transforms = json.loads((out / "transforms.json").read_text())
    truth = json.loads((tiny_burst / "truth.json").read_text())
    assert transforms["reference"] == 0 and transforms["scale"] == 3
    assert transforms["frames"] == truth["frames"]
    # the registration within 0.2 LR px of the truth over the frame (its entries trade shift for zoom)
    errors = [rms_displacement(np.array(a), np.array(b), frame.shape[:2])
              for a, b in zip(transforms["matrices"], truth["matrices"])]
    assert max(errors) < 0.2, errors
    run = json.loads((out / "run.json").read_text())
    assert [s["name"] for s in run["stages"]] == ["load", "register", "upscale", "srcnn", "realign", "fuse"]
    assert all(s["seconds"] >= 0 for s in run["stages"]) and run["device"] == "cpu"
    assert run["versions"]["torch"] and run["parameters"]["n"] == 6 and run["excluded"] == []


@pytest.mark.parametrize("pipeline", ["presenters", "multiframe"])
def test_reference_option_and_16_bit_grey_input(tiny_burst, tmp_path, pipeline):
    frames = tmp_path / "grey16"
    frames.mkdir()
    for path in sorted(tiny_burst.glob("frame_*.png")):
        image, _ = read_image(path)
        write_image(frames / path.name.replace(".png", ".tif"), image.mean(axis=2), bit_depth=16)
    out = tmp_path / "out"
    result = invoke("run", frames, "--n", 4, "--reference", 2, "--out", out, "--pipeline", pipeline)
    assert result.exit_code == 0, result.output
    raw = cv2.imread(str(out / "result.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    transforms = json.loads((out / "transforms.json").read_text())
    assert transforms["reference"] == 2 and np.allclose(transforms["matrices"][2], np.eye(3))


def test_the_reference_is_the_sharpest_frame_unless_named(tiny_burst, tmp_path):
    """A burst whose first frame is blurred (Gaussian, 1.5 LR pixels: a shaken shutter press) is
    super-resolved for another frame by default, and for frame 0 when the user names it."""
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    image, _ = read_image(frames / "frame_000.png")
    write_image(frames / "frame_000.png", cv2.GaussianBlur(image, (0, 0), 1.5))
    chosen = {}
    for reference in ("sharpest", "0"):
        out = tmp_path / f"out-{reference}"
        extra = [] if reference == "sharpest" else ["--reference", reference]
        result = invoke("run", frames, "--n", 4, "--out", out, "--pipeline", "bicubic", *extra)
        assert result.exit_code == 0, result.output
        chosen[reference] = json.loads((out / "run.json").read_text())["reference_frame"]
    assert chosen == {"sharpest": "frame_001.png", "0": "frame_000.png"}
    assert_one_line_error(invoke("run", frames, "--out", tmp_path / "bad", "--reference", "blurriest"),
                          "--reference: expected a frame index (0, 1, ... in the digits 0-9) or sharpest, got 'blurriest'")


def test_no_cache_writes_only_the_results(tiny_burst, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", tiny_burst, "--n", 3, "--out", out, "--no-cache").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".lock", "result.png", "run.json", "transforms.json"]


def test_a_frame_that_does_not_register_is_left_out_with_a_warning(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "frames")
    noise = np.random.default_rng(0).random(read_image(frames / "frame_003.png")[0].shape)
    write_image(frames / "frame_003.png", noise)
    out = tmp_path / "out"
    result = invoke("run", frames, "--n", 6, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Warning: frame_003.png left out of the burst" in result.stderr
    run = json.loads((out / "run.json").read_text())
    assert [e["frame"] for e in run["excluded"]] == ["frame_003.png"]


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing", ["does not exist"]),
        ("empty", ["expected image files", "found none"]),
        ("too_few", ["expected at least 6 frames (n=6), found 3"]),
        ("n_below_2", ["--n: expected a number of frames, at least 2, or all, got 1"]),
        ("sizes", ["frame_002.png", "expected every frame to be", "found"]),
        ("corrupt", ["frame_001.png", "corrupt or not an image"]),
        ("not_image", ["scan.pdf", "expected only images", "found a .pdf file"]),
        ("reference", ["--reference: expected a frame index from 0 to 5, got 9"]),
    ],
)
def test_bad_input_gets_one_line_and_no_result(tiny_burst, tmp_path, case, fragments):
    frames = tmp_path / "frames"
    n, extra = 6, []
    if case == "missing":
        pass
    elif case == "empty":
        frames.mkdir()
    else:
        copy_burst(tiny_burst, frames, n=3 if case == "too_few" else None)
    if case == "n_below_2":
        n = 1
    elif case == "sizes":
        write_image(frames / "frame_002.png", np.zeros((10, 10, 3), np.float32))
    elif case == "corrupt":
        (frames / "frame_001.png").write_bytes(b"\x89PNG broken")
    elif case == "not_image":
        (frames / "scan.pdf").write_text("%PDF-1.4")  # a sidecar (notes.txt) is passed over instead
    elif case == "reference":
        extra = ["--reference", 9]
    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in frames.iterdir()} if frames.exists() else {}
    result = invoke("run", frames, "--n", n, "--out", out, *extra)
    assert_one_line_error(result, *fragments)
    assert not (out / "result.png").exists()
    assert {p: p.read_bytes() for p in frames.iterdir()} == before if frames.exists() else True


def test_unknown_pipeline_is_refused(tiny_burst, tmp_path):
    assert_one_line_error(invoke("run", tiny_burst, "--out", tmp_path, "--pipeline", "nope"),
                          "--pipeline: expected one of bicubic, merge, multiframe, presenters, single")


def test_simulate_writes_frames_and_truth(plate, tmp_path):
    write_image(tmp_path / "plate.png", plate)
    result = invoke("simulate", tmp_path / "plate.png", "--out", tmp_path / "burst", "--n", 4, "--seed", 1)
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "burst" / "truth.json").read_text())
    assert truth["frames"] == [f"frame_{k:03d}.png" for k in range(4)] and truth["scale"] == 3
    frame, _ = read_image(tmp_path / "burst" / "frame_000.png")
    hr, _ = read_image(tmp_path / "burst" / "truth.png")
    assert hr.shape == (3 * frame.shape[0], 3 * frame.shape[1], 3)


def test_simulate_camera_and_bench_quality_on_the_camera_protocol(tmp_path):
    scene = licence_plate(width=300, height=200)
    write_image(tmp_path / "images" / "plate.png", scene)
    result = invoke("simulate", tmp_path / "images" / "plate.png", "--out", tmp_path / "burst", "--n", 4,
                    "--protocol", "camera")
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "burst" / "truth.json").read_text())
    assert truth["protocol"] == "camera" and len(truth["object_region"]) == 4 and len(truth["matrices"]) == 4
    result = invoke("bench", "quality", "--data", tmp_path / "images", "--protocol", "camera", "--n", 6,
                    "--pipelines", "bicubic,multiframe", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["images"]["plate"]
    assert row["multiframe"]["object_psnr"] > 0 and row["multiframe"]["registration"]["rms_px"] < 0.5
    assert row["multiframe"]["psnr"] > row["bicubic"]["psnr"]  # six frames of a sharp scene: clearly above
    assert_one_line_error(invoke("simulate", tmp_path / "images" / "plate.png", "--out", tmp_path / "b",
                                 "--protocol", "phone"), "--protocol")


def test_bench_quality_runs_raw_bursts_from_their_dng_files(tmp_path):
    """--mosaic: each burst written as DNG files and run from its folder; the colour scores and the
    setting are in the report; the burst's own demosaic beats LibRaw's frame by frame there too."""
    write_image(tmp_path / "images" / "plate.png", licence_plate(width=300, height=200))
    (tmp_path / "library.toml").write_text('[[stages]]\nname = "register"\n[[stages]]\nname = "reconstruct"\n'
                                           'demosaic = "library"\n')
    result = invoke("bench", "quality", "--data", tmp_path / "images", "--protocol", "camera", "--mosaic", "rggb",
                    "--n", 6, "--pipelines", f"bicubic,multiframe,{tmp_path / 'library.toml'}", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    row = report["images"]["plate"]
    assert report["settings"]["mosaic"] == "rggb" and row["multiframe"]["registration"]["rms_px"] < 0.5
    assert row["multiframe"]["rgb_psnr"] > row["library"]["rgb_psnr"] > row["bicubic"]["rgb_psnr"]
    assert_one_line_error(invoke("bench", "quality", "--data", tmp_path / "images", "--mosaic", "rggb"),
                          "mosaic", "camera protocol")


def test_upscale_keeps_bit_depth_and_channels(tmp_path):
    image = np.random.default_rng(0).random((12, 14)).astype(np.float32)
    write_image(tmp_path / "in.png", image, bit_depth=16)
    result = invoke("upscale", tmp_path / "in.png", "--out", tmp_path / "out.png", "--model", "srcnn-955")
    assert result.exit_code == 0, result.output
    raw = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (36, 42)


def test_eval_and_upscale_errors(tmp_path):
    assert_one_line_error(invoke("eval", "--data", tmp_path / "none"), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("eval", "--data", tmp_path / "empty"), "found none")
    (tmp_path / "small").mkdir()
    write_image(tmp_path / "small" / "a.png", np.zeros((20, 20), np.float32))
    assert_one_line_error(invoke("eval", "--data", tmp_path / "small"), "a.png", "expected an image at least")
    assert_one_line_error(invoke("upscale", tmp_path / "small" / "a.png", "--out", tmp_path / "o.png",
                                 "--model", tmp_path / "missing.pt"), "--model", "no such file")


def test_train_restore_refuses_single_image_evaluation(tmp_path):
    assert_one_line_error(invoke("train", "--task", "restore", "--data", tmp_path, "--out", tmp_path / "run",
                                 "--eval-data", tmp_path), "--task restore", "--eval-data")


def test_bench_speed_reports_every_stage_and_the_flop_rates():
    result = invoke("bench", "speed", "--sizes", "32x24", "--n", 3, "--pipelines", "single,presenters,multiframe",
                    "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["matmul_gflops"] > 0 and report["network_gflops"] > 0
    assert [row["pipeline"] for row in report["rows"]] == ["single", "presenters", "multiframe"]
    presenters, multiframe = report["rows"][1:]
    assert set(presenters["stages"]) == {"load", "register", "upscale", "srcnn", "realign", "fuse"}
    assert presenters["peak_mib"] > 50 and presenters["srcnn_gflops"] > 0
    assert set(multiframe["stages"]) == {"load", "register", "reconstruct", "restore"} and multiframe["peak_mib"] > 50
    assert_one_line_error(invoke("bench", "speed", "--sizes", "640"), "--sizes: expected WxH")


def test_a_burst_where_nothing_registers_fails_with_one_line(tmp_path):
    frames = tmp_path / "noise"
    frames.mkdir()
    rng = np.random.default_rng(5)
    for k in range(4):
        write_image(frames / f"frame_{k:03d}.png", rng.random((40, 50)))
    result = invoke("run", frames, "--n", 4, "--out", tmp_path / "out")
    assert_one_line_error(result, "expected at least 2 frames that register, but 3 of 4 were left out",
                          "and 1 more")
    assert "srcnn" not in result.stderr  # it stopped after registration
    assert not (tmp_path / "out" / "result.png").exists()


@pytest.mark.parametrize("command, library, shown", [
    ("run", "n: expected at least 2 frames, got 1", "--n: expected at least 2 frames, got 1"),
    ("run", "out_dir runs/x: expected a folder", "--out runs/x: expected a folder"),
    ("run", "max_disk_bytes: expected at most 1.0 GB", "--max-disk: expected at most 1.0 GB"),
    ("run", "overrides fuse.method: expected a string", "--set fuse.method: expected a string"),
    ("run", "pipeline: expected one of", "--pipeline: expected one of"),
    ("compare", "pipeline: expected one of", "--pipelines: expected one of"),
    ("run", "frames: expected at least 2 frames that register", "frames: expected at least 2 frames that register"),
    ("run", "frames_dir: not an option", "frames_dir: not an option"),  # an argument has no flag
])
def test_library_errors_name_arguments_and_the_command_line_shows_its_flags(command, library, shown):
    """The library names its own arguments; each command shows the flag of the option that sets one."""
    from multisr.cli import cli

    assert cli.commands[command].flagged(library) == shown

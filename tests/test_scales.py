"""Any scale a user asks for: the geometry contract, the pipelines and the command line at x2, x3 and x4."""
import json

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, invoke
from multisr.errors import UserError
from multisr.imaging.geometry import scale_matrix
from multisr.imaging.metrics import score_image
from multisr.reconstruction.observation import psf_kernel
from multisr.research.simulate import simulate_burst
from multisr.runs.engine import run_frames
from multisr.runs.pipeline import Pipeline, load_pipeline
from multisr.sr.weights import SHIPPED, load_model
from multisr.storage.io import read_image, write_image

PIPELINES = ("bicubic", "single", "presenters", "multiframe")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_pixel_centres_land_where_the_contract_says(scale):
    """HR = s * LR + (s - 1) / 2: LR pixel 0 is the mean of HR pixels 0 .. s-1, whose centre is (s - 1) / 2."""
    assert np.allclose(scale_matrix(scale) @ [0, 0, 1], [(scale - 1) / 2, (scale - 1) / 2, 1])
    assert np.allclose(scale_matrix(scale) @ [2, 5, 1], [2 * scale + (scale - 1) / 2, 5 * scale + (scale - 1) / 2, 1])


@pytest.mark.parametrize("scale, expected", [(2, [1, 2, 1]), (3, [1, 1, 1]), (4, [1, 2, 2, 2, 1])])
def test_the_box_psf_is_the_lr_pixels_footprint(scale, expected):
    """The box covers ``scale`` HR pixels centred on one: at an even scale, half of each end pixel."""
    assert np.allclose(psf_kernel("box", scale), np.array(expected) / np.sum(expected))


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("name", PIPELINES)
def test_a_constant_burst_stays_constant(scale, name):
    """Every pipeline at x2 and x4 turns frames of one grey into a result of that grey, s times as
    large (the motion given: a flat frame has nothing to register)."""
    frames = np.full((6, 30, 40), 0.4, np.float32)
    known = np.repeat(np.eye(3)[None], 6, axis=0)
    result = run_frames(load_pipeline(name), frames, reference=0, known=known, scale=scale)
    assert result.image.shape == (30 * scale, 40 * scale)
    assert np.abs(result.image - 0.4).max() < 2 / 255
    assert result.record["parameters"]["scale"] == scale


@pytest.mark.parametrize("scale", [2, 4])
def test_the_multiframe_result_sits_on_the_truths_grid(scale, plate):
    """A simulated burst at x2 and x4 (known sub-pixel shifts): multiframe's result is the truth's
    grid (phase correlation finds it within 0.1 HR px) and beats the reference's bicubic upscale
    and single-image SR."""
    burst = simulate_burst(plate, n=10, seed=4, scale=scale)
    scores = {}
    for name in ("bicubic", "single", "multiframe"):
        image = run_frames(load_pipeline(name), burst.frames, reference=0, scale=scale).image
        scores[name] = score_image(image, burst.truth, shave=scale)["psnr"]
    solved = run_frames(Pipeline("solve", "", [s for s in load_pipeline("multiframe").steps if s[0].name != "restore"]),
                        burst.frames, reference=0, scale=scale).image
    a, b = (np.ascontiguousarray(image.mean(axis=2), np.float64) for image in (solved, burst.truth))
    (dx, dy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(a.shape[::-1], cv2.CV_64F))
    assert np.hypot(dx, dy) < 0.1, (dx, dy)
    assert scores["multiframe"] > scores["single"] > scores["bicubic"], scores


@pytest.mark.parametrize("scale", [2, 4])
def test_shipped_models_load_at_their_scales(scale):
    for name, scales in SHIPPED.items():
        if scale in scales:
            assert load_model(name, scale=scale).meta["training"]["scale"] == scale


def test_a_scale_without_weights_is_one_line():
    with pytest.raises(UserError, match=r"model: expected a model shipped for scale 2, but srcnn-915 is shipped at x3 "
                                        r"only \(shipped: .*srcnn-955 at x2, x3, x4"):
        load_model("srcnn-915", scale=2)


@pytest.mark.parametrize("value", ["5", "1", "0", "x", "2.5", "-3"])
@pytest.mark.parametrize("command", ["run", "compare", "video", "batch", "upscale"])
def test_a_bad_scale_is_one_line(tmp_path, value, command):
    result = invoke(command, tmp_path, "--out", tmp_path / "out", "--scale", value)
    assert_one_line_error(result, "--scale")
    assert not (tmp_path / "out").exists()


def test_run_at_x2_and_x4_from_the_command_line(tmp_path, tiny_burst):
    for scale in (2, 4):
        out = tmp_path / f"x{scale}"
        result = invoke("run", tiny_burst, "--n", 4, "--pipeline", "single", "--scale", scale, "--out", out)
        assert result.exit_code == 0, result.output
        image, _ = read_image(out / "result.png")
        frame, _ = read_image(tiny_burst / "frame_000.png")
        assert image.shape[:2] == (scale * frame.shape[0], scale * frame.shape[1])


def test_the_scale_is_in_the_cache_key(tmp_path, tiny_burst):
    """The same burst at x2 and then x3 computes every stage again, and x2 again takes all from the cache."""
    runs = {}
    for label, scale in (("a", 2), ("b", 3), ("c", 2)):
        result = invoke("run", tiny_burst, "--n", 4, "--pipeline", "presenters", "--scale", scale, "--out", tmp_path / label)
        assert result.exit_code == 0, result.output
        runs[label] = (tmp_path / label / "run.json").read_text()
    stages = {label: {s["name"]: s["cached"] for s in json.loads(text)["stages"]} for label, text in runs.items()}
    assert not any(cached for name, cached in stages["b"].items() if name not in ("load", "register", "select_reference"))
    assert all(stages["c"].values()), stages["c"]


def test_simulate_and_compare_at_x4(tmp_path, plate):
    """simulate --scale 4 writes a truth 4x the frames; compare --scale 4 scores every pipeline against it."""
    write_image(tmp_path / "scene.png", plate)
    result = invoke("simulate", tmp_path / "scene.png", "--scale", 4, "--n", 6, "--out", tmp_path / "burst")
    assert result.exit_code == 0, result.output
    frame, _ = read_image(tmp_path / "burst" / "frame_000.png")
    truth, _ = read_image(tmp_path / "burst" / "truth.png")
    assert truth.shape[:2] == (4 * frame.shape[0], 4 * frame.shape[1])
    report = invoke("compare", tmp_path / "burst", "--n", 6, "--scale", 4, "--truth", tmp_path / "burst" / "truth.png",
                    "--pipelines", "bicubic,single", "--out", tmp_path / "report")
    assert report.exit_code == 0, report.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    scores = {m["name"]: m["psnr"] for m in metrics["methods"]}
    assert metrics["scale"] == 4 and scores["single"] > scores["bicubic"], scores


def test_a_model_not_shipped_for_the_scale_is_refused_before_the_run(tmp_path, tiny_burst):
    result = invoke("run", tiny_burst, "--n", 4, "--pipeline", "presenters", "--set", "srcnn.model=srcnn-915",
                    "--scale", 2, "--out", tmp_path / "out")
    assert_one_line_error(result, "scale 2", "srcnn-915 is shipped at x3 only", "srcnn-955 at x2, x3, x4")
    assert not (tmp_path / "out").exists()


def test_video_and_batch_follow_the_scale(tmp_path, tiny_burst):
    """video --scale 2 writes frames twice the clip's size; batch --scale 4 four times the burst's, recorded."""
    from test_video import write_video

    frames = np.stack([read_image(path)[0] for path in sorted(tiny_burst.glob("frame_*.png"))])[:, :36, :64]
    write_video(tmp_path / "clip.mkv", frames)
    result = invoke("video", tmp_path / "clip.mkv", "--window", 3, "--step", 3, "--pipeline", "single", "--scale", 2,
                    "--out", tmp_path / "video")
    assert result.exit_code == 0, result.output
    made = sorted((tmp_path / "video" / "frames").glob("frame_*.png"))
    assert len(made) == 2 and read_image(made[0])[0].shape[:2] == (72, 128)
    assert json.loads((tmp_path / "video" / "video.json").read_text())["scale"] == 2
    result = invoke("batch", tiny_burst, "--n", 3, "--pipeline", "single", "--scale", 4, "--workers", 1, "--threads", 1,
                    "--out", tmp_path / "batch")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "batch" / "batch.json").read_text())
    image, _ = read_image(summary["bursts"][0]["result"])
    height, width = read_image(tiny_burst / "frame_000.png")[0].shape[:2]
    assert summary["scale"] == 4 and image.shape[:2] == (4 * height, 4 * width)

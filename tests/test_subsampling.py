"""How a burst's chroma was stored, told from its pixels (multisr.imaging.subsampling), and the
camera protocol's frames as JPEG files (simulate --format jpg, --subsampling)."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import invoke, shared_data
from multisr.imaging.subsampling import detect_chroma_subsampling
from multisr.research.bench_subsampling import code_frames
from multisr.research.camera import sensor
from multisr.research.simulate import simulate_camera_burst
from multisr.runs.engine import run_frames
from multisr.runs.pipeline import load_pipeline, with_overrides
from multisr.storage.io import read_image, read_picture


def camera_frames(name: str, n: int = 3, seed: int = 0) -> list[np.ndarray]:
    """``n`` camera frames (blur, noise, 8 bits, no coding yet) of a Set5 image, cropped at offsets of
    0-7 px so that a coder's blocks fall differently on the scene in each."""
    image, _ = read_image(shared_data("eval", "Set5", f"{name}_GT.bmp"))
    rng = np.random.default_rng(seed)
    height, width = (image.shape[0] - 8) // 2 * 2, (image.shape[1] - 8) // 2 * 2
    frames = []
    for _ in range(n):
        top, left = rng.integers(0, 8, size=2)
        frames.append(sensor(image[top : top + height, left : left + width], rng, scale=1, blur_sigma_lr=0.4,
                             shot_noise=2e-4, read_noise=1.5 / 255, jpeg_quality=None))
    return frames


@pytest.mark.parametrize("source", ["jpeg-opencv", "jpeg-pillow"])
@pytest.mark.parametrize("truth, quality", [("4:4:4", 70), ("4:4:4", 98), ("4:2:2", 75), ("4:2:2", 95),
                                            ("4:2:0", 70), ("4:2:0", 98)])
@pytest.mark.parametrize("image", ["butterfly", "baby"])
def test_jpeg_frames_subsampling_is_told_from_their_pixels(image, source, truth, quality):
    """JPEG at low and high quality, two coders and decoders: the decision is the coder's, and a
    subsampled axis's residual is within the rounding floor's band (under 2.7 floors), a full one's
    well above it."""
    evidence = detect_chroma_subsampling(code_frames(camera_frames(image), source, truth, quality))
    assert evidence.decision == truth, evidence
    halved = {"4:4:4": (False, False), "4:2:2": (True, False), "4:2:0": (True, True)}[truth]
    for axis_halved, residual in zip(halved, evidence.residual):
        assert (residual <= 2.7) if axis_halved else (residual > 4.0), evidence


@pytest.mark.parametrize("truth, quality", [("4:2:0", 70), ("4:2:0", 95), ("4:2:2", 90), ("4:4:4", 98)])
def test_video_frames_subsampling_is_told_from_their_pixels(truth, quality):
    """Frames through H.264 (libx264 via PyAV) and decoded to RGB, as an export of a video's frames."""
    evidence = detect_chroma_subsampling(code_frames(camera_frames("butterfly", n=4), "h264", truth, quality))
    assert evidence.decision == truth, evidence


def test_a_burst_with_no_colour_is_not_called_subsampled():
    """Grey frames stored as RGB, coded 4:2:0: no chroma structure to tell from, so full chroma
    (never subsampled by default), and the evidence says there was nothing to judge."""
    grey = [np.repeat(frame.mean(axis=2, keepdims=True), 3, axis=2) for frame in camera_frames("baby")]
    evidence = detect_chroma_subsampling(code_frames(grey, "jpeg-opencv", "4:2:0", 90))
    assert evidence.decision == "4:4:4"
    assert all(structure < 12 for structure in evidence.structure), evidence


def test_frames_too_small_to_judge_are_full_chroma():
    frames = [frame[:12, :20] for frame in code_frames(camera_frames("bird"), "jpeg-opencv", "4:2:0", 90)]
    evidence = detect_chroma_subsampling(frames)
    assert evidence.decision == "4:4:4" and evidence.residual == (None, None)


@pytest.fixture(scope="module")
def colour_bursts():
    """Camera bursts of butterfly (8 frames, 84x84, JPEG 92) with chroma stored 4:4:4 and 4:2:0."""
    image, _ = read_image(shared_data("eval", "Set5", "butterfly_GT.bmp"))
    return {subsampling: simulate_camera_burst(image, n=8, seed=4, subsampling=subsampling)
            for subsampling in ("4:4:4", "4:2:0")}


@pytest.mark.parametrize("truth", ["4:4:4", "4:2:0"])
def test_multiframe_solves_png_frames_chroma_as_their_pixels_say(colour_bursts, truth):
    """Frames handed over as pixels alone (as PNG files say nothing): multiframe's solve records the
    subsampling the pixels tell, with its evidence; a 4:4:4 burst is left alone."""
    burst = colour_bursts[truth]
    record = run_frames(load_pipeline("multiframe"), burst.frames).record
    assert record["solve"]["chroma_subsampling"] == truth
    evidence = record["solve"]["chroma_subsampling_evidence"]
    assert evidence["told_by"] == "pixels" and evidence["decision"] == truth


def test_a_named_subsampling_overrides_the_pixels(colour_bursts):
    pipeline = with_overrides(load_pipeline("multiframe"), ["reconstruct.chroma_subsampling=4:2:2"])
    record = run_frames(pipeline, colour_bursts["4:2:0"].frames).record
    assert record["solve"]["chroma_subsampling"] == "4:2:2"
    assert record["solve"]["chroma_subsampling_evidence"] == {"told_by": "option"}


def test_what_a_file_says_is_taken_before_the_pixels(colour_bursts):
    record = run_frames(load_pipeline("multiframe"), colour_bursts["4:4:4"].frames, chroma_subsampling="4:2:2").record
    assert record["solve"]["chroma_subsampling"] == "4:2:2"
    assert record["solve"]["chroma_subsampling_evidence"] == {"told_by": "files"}


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_simulate_writes_the_camera_protocols_jpeg_files(subsampling, tmp_path):
    """--format jpg: the frames are the JPEG files the protocol decoded (same pixels as the burst in
    memory), their headers say the subsampling, and truth.json records it."""
    image = shared_data("eval", "Set5", "bird_GT.bmp")
    result = invoke("simulate", image, "--out", tmp_path, "--n", 3, "--protocol", "camera", "--format", "jpg",
                    "--subsampling", subsampling, "--seed", 5)
    assert result.exit_code == 0, result.output
    burst = simulate_camera_burst(read_image(image)[0], n=3, seed=5, subsampling=subsampling)
    for k in range(3):
        picture = read_picture(tmp_path / f"frame_{k:03d}.jpg")
        assert picture.chroma_subsampling == subsampling
        assert np.array_equal(picture.image, burst.frames[k])
    assert json.loads((tmp_path / "truth.json").read_text())["settings"]["chroma_subsampling"] == subsampling


def test_jpeg_frames_of_a_protocol_that_does_not_code_them_are_one_line(tmp_path):
    image = tmp_path / "scene.png"
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(image)
    result = invoke("simulate", image, "--out", tmp_path / "b", "--n", 3, "--format", "jpg")
    assert result.exit_code != 0
    assert "format" in result.output and "camera protocol" in result.output and "sr protocol" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_bench_subsampling_prints_the_detectors_confusion_table(tmp_path):
    for name in ("bird", "head"):
        Image.open(shared_data("eval", "Set5", f"{name}_GT.bmp")).save(tmp_path / f"{name}.png")
    result = invoke("bench", "subsampling", "--data", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["bursts"]) == 2 * 10  # JPEG by two coders at three subsamplings, H.264 at three, MPEG-4 at one
    table = report["confusion"]["all"]
    assert sum(table["4:4:4"].values()) == 2 * 3 and table["4:4:4"]["4:2:0"] == table["4:4:4"]["4:2:2"] == 0
    right = sum(table[truth][truth] for truth in table)
    assert right >= 18, table
    assert "right on" in invoke("bench", "subsampling", "--data", tmp_path).output
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(grey / "flat.png")
    result = invoke("bench", "subsampling", "--data", grey)
    assert result.exit_code != 0 and "expected colour images" in result.output


def test_a_targets_chroma_is_told_from_the_whole_frames(colour_bursts):
    """With a box (--roi), the windows are too small to tell from: the target stage tells it from
    the whole frames, and the solve of the window uses that."""
    frames = colour_bursts["4:2:0"].frames
    record = run_frames(load_pipeline("multiframe"), frames, roi="20,24,28,18", reference=0).record
    assert record["solve"]["chroma_subsampling"] == "4:2:0"
    assert record["solve"]["chroma_subsampling_evidence"]["told_by"] == "pixels"
    window = colour_bursts["4:2:0"].frames[:, 20:44, 16:52]
    assert detect_chroma_subsampling(window).decision == "4:4:4"  # what the windows alone would have said

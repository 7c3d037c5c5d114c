"""RAW bursts: DNG files the tests write (tifffile) are read back with their pattern, levels,
white balance and colour matrix, developed by LibRaw, and run; damaged RAW files are one line."""
import json

import cv2
import numpy as np
import pytest
import tifffile

from conftest import assert_one_line_error, invoke
from multisr.research.simulate import simulate_burst
from multisr.storage.raw import raw_info, read_raw

BLACK, WHITE = 256, 4095
XYZ_TO_CAMERA = np.array([[0.9, -0.3, -0.1], [-0.4, 1.2, 0.2], [-0.05, 0.15, 0.6]])
SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]])
NEUTRAL = (0.5, 1.0, 0.6)  # the camera's response to white, R G B: the white balance is its inverse
PATTERNS = {"RGGB": (0, 1, 1, 2), "BGGR": (2, 1, 1, 0)}


def _rationals(values) -> tuple:
    return tuple(v for x in values for v in (int(round(x * 10000)), 10000))


def write_dng(path, rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` linear camera RGB in [0, 1] (even H, W) as a Bayer DNG: each pixel
    keeps its CFA colour, times the camera's response to white, on BLACK..WHITE. Returns the mosaic."""
    colours = np.array(PATTERNS[pattern]).reshape(2, 2)
    height, width = rgb.shape[:2]
    site = np.tile(colours, (height // 2, width // 2))
    chosen = np.take_along_axis(rgb, site[..., None], axis=2)[..., 0] * np.array(NEUTRAL)[site]
    mosaic = np.round(BLACK + chosen * (WHITE - BLACK)).astype(np.uint16)
    tags = [(50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
            (50708, "s", 0, "multisr test camera", True),  # UniqueCameraModel
            (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
            (33422, "B", 4, PATTERNS[pattern], True),  # CFAPattern
            (50714, "H", 1, (BLACK,), True), (50717, "H", 1, (WHITE,), True),  # BlackLevel, WhiteLevel
            (50721, "2i", 9, _rationals(XYZ_TO_CAMERA.ravel()), True),  # ColorMatrix1
            (50778, "H", 1, (21,), True),  # CalibrationIlluminant1: D65
            (50728, "2I", 3, _rationals(NEUTRAL), True)]  # AsShotNeutral
    tifffile.imwrite(path, mosaic, photometric=32803, extratags=tags, subfiletype=0)
    return mosaic


@pytest.fixture(scope="module")
def dng_burst(plate, tmp_path_factory):
    """A 6-frame simulated burst of the plate (seed 3) written as RGGB DNG files."""
    folder = tmp_path_factory.mktemp("dng")
    burst = simulate_burst(plate, n=6, seed=3)
    for k, frame in enumerate(burst.frames):
        even = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
        write_dng(folder / f"IMG_{k:04d}.dng", np.clip(even, 0, 1))
    return folder


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR"])
def test_a_dng_is_read_back_with_its_pattern_levels_balance_and_matrix(pattern, tmp_path):
    rgb = np.random.default_rng(0).random((32, 48, 3))
    mosaic = write_dng(tmp_path / "one.dng", rgb, pattern)
    import rawpy

    with rawpy.imread(str(tmp_path / "one.dng")) as raw:
        info = raw_info(raw)
        assert np.array_equal(raw.raw_image, mosaic)
    assert info["pattern"] == pattern
    assert info["black_levels"] == [BLACK] * 4 and info["white_level"] == WHITE
    balance = np.array(info["white_balance"][:3]) / info["white_balance"][1]
    assert np.allclose(balance, 1 / np.array(NEUTRAL) * NEUTRAL[1], rtol=1e-3)
    # LibRaw's camera -> sRGB matrix from the file's XYZ -> camera one (sRGB's D65 primaries, rows to sum 1)
    camera_from_srgb = XYZ_TO_CAMERA @ SRGB_TO_XYZ
    camera_from_srgb /= camera_from_srgb.sum(axis=1, keepdims=True)
    assert np.allclose(info["camera_to_srgb"], np.linalg.inv(camera_from_srgb), atol=1e-3), info["camera_to_srgb"]
    image, _ = read_raw(tmp_path / "one.dng")
    assert image.shape == (32, 48, 3) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1


def test_a_dng_burst_runs_to_a_16_bit_result_that_records_the_files(dng_burst, tmp_path):
    result = invoke("run", dng_burst, "--n", "all", "--out", tmp_path / "out", "--pipeline", "multiframe")
    assert result.exit_code == 0, result.output
    png = cv2.imread(str(tmp_path / "out" / "result.png"), cv2.IMREAD_UNCHANGED)
    frame, _ = read_raw(dng_burst / "IMG_0000.dng")
    assert png.dtype == np.uint16 and png.shape == (3 * frame.shape[0], 3 * frame.shape[1], 3)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    raw = record["source"]["raw"]
    assert raw["pattern"] == "RGGB" and raw["white_level"] == WHITE and "AHD" in raw["development"]


def test_a_raw_files_jpeg_is_passed_over_and_other_images_are_refused(dng_burst, tmp_path):
    folder = tmp_path / "camera"
    folder.mkdir()
    for path in sorted(dng_burst.iterdir()):
        (folder / path.name).write_bytes(path.read_bytes())
        cv2.imwrite(str(folder / f"{path.stem}.JPG"), np.zeros((8, 8, 3), np.uint8))  # the camera's own JPEG
    result = invoke("run", folder, "--n", "all", "--out", tmp_path / "out", "--pipeline", "bicubic")
    assert result.exit_code == 0, result.output
    assert "6 JPEG beside its RAW frame" in result.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["source"]["count"] == 6 and len(record["source"]["passed_over"]["developed"]) == 6
    cv2.imwrite(str(folder / "other.png"), np.zeros((8, 8, 3), np.uint8))
    assert_one_line_error(invoke("run", folder, "--n", "all", "--out", tmp_path / "o2"), "expected frames of one kind",
                          "6 RAW files and 1 images")


@pytest.mark.parametrize("content", [b"raw", b"II*\x00" + bytes(200)])
def test_a_damaged_or_unsupported_raw_file_is_one_line(content, dng_burst, tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for path in sorted(dng_burst.iterdir())[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "IMG_0009.CR2").write_bytes(content)
    result = invoke("run", folder, "--n", "all", "--out", tmp_path / "out")
    assert_one_line_error(result, "IMG_0009.CR2", "expected a RAW file LibRaw can read")
    assert not (tmp_path / "out" / "result.png").exists() and not (tmp_path / "out" / "run.json").exists()


def test_a_raw_file_given_as_an_image_is_one_line(dng_burst, tmp_path):
    """A DNG is a TIFF whose pixels are the mosaic: `upscale` must not read it as a grey image."""
    result = invoke("upscale", dng_burst / "IMG_0000.dng", "--out", tmp_path / "up.png")
    assert_one_line_error(result, "IMG_0000.dng", "found a RAW file", "multisr run FOLDER")
    assert not (tmp_path / "up.png").exists()


def test_a_raw_frame_over_the_pixel_limit_is_refused_before_it_is_developed(dng_burst, tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISR_MAX_PIXELS", "1000")
    result = invoke("run", dng_burst, "--n", "all", "--out", tmp_path / "out")
    assert_one_line_error(result, "IMG_0000.dng", "at most 1,000 pixels")

"""RAW bursts: DNG files written by the package's writer are read back with their pattern, levels,
white balance, colour matrix and mosaic, developed by LibRaw as multisr develops, and run; the
burst demosaics itself better than LibRaw demosaics each frame; damaged RAW files are one line."""
import json

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, invoke
from multisr.imaging.develop import develop
from multisr.imaging.metrics import score_image
from multisr.research.camera import RAW_CAMERA, camera_from_srgb
from multisr.research.simulate import save_burst, simulate_burst, simulate_camera_burst
from multisr.storage.dng import BAYER_PATTERNS, write_dng
from multisr.storage.raw import raw_info, read_raw

BLACK, WHITE, NEUTRAL = RAW_CAMERA["black"], RAW_CAMERA["white"], np.array(RAW_CAMERA["neutral"])


def mosaic_of(camera_rgb: np.ndarray, pattern: str = "rggb") -> np.ndarray:
    """``camera_rgb`` ``(H, W, 3)`` linear white-balanced camera RGB in [0, 1] (even H, W) as the
    sensor's uint16 values: each pixel keeps its CFA colour, times the camera's response to white."""
    height, width = camera_rgb.shape[:2]
    site = np.tile(np.array(BAYER_PATTERNS[pattern]).reshape(2, 2), (height // 2, width // 2))
    chosen = np.take_along_axis(camera_rgb, site[..., None], axis=2)[..., 0] * NEUTRAL[site]
    return np.round(BLACK + chosen * (WHITE - BLACK)).astype(np.uint16)


def write_camera_dng(path, camera_rgb: np.ndarray, pattern: str = "rggb") -> np.ndarray:
    """:func:`mosaic_of` written by the package's DNG writer with :data:`RAW_CAMERA`; returns the mosaic."""
    mosaic = mosaic_of(camera_rgb, pattern)
    write_dng(path, mosaic, pattern=pattern, black=BLACK, white=WHITE, xyz_to_camera=RAW_CAMERA["xyz_to_camera"],
              neutral=NEUTRAL)
    return mosaic


def flat_patches(seed: int = 0) -> np.ndarray:
    """``(64, 64, 3)`` linear camera RGB: 4x4 patches of 16x16 pixels, each one random colour."""
    colours = np.random.default_rng(seed).uniform(0.05, 0.9, size=(4, 4, 3))
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


@pytest.fixture(scope="module")
def dng_burst(plate, tmp_path_factory):
    """A 6-frame simulated burst of the plate (seed 3) written as RGGB DNG files."""
    folder = tmp_path_factory.mktemp("dng")
    burst = simulate_burst(plate, n=6, seed=3)
    for k, frame in enumerate(burst.frames):
        even = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
        write_camera_dng(folder / f"IMG_{k:04d}.dng", np.clip(even, 0, 1))
    return folder


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "grbg"])
def test_a_dng_is_read_back_with_its_pattern_levels_balance_matrix_and_mosaic(pattern, tmp_path):
    rgb = np.random.default_rng(0).random((32, 48, 3))
    written = write_camera_dng(tmp_path / "one.dng", rgb, pattern)
    import rawpy

    with rawpy.imread(str(tmp_path / "one.dng")) as raw:
        info = raw_info(raw)
        assert np.array_equal(raw.raw_image, written)
    assert info["pattern"] == pattern.upper()
    assert info["black_levels"] == [BLACK] * 4 and info["white_level"] == WHITE
    balance = np.array(info["white_balance"][:3]) / info["white_balance"][1]
    assert np.allclose(balance, 1 / NEUTRAL * NEUTRAL[1], rtol=1e-3)
    # LibRaw's camera -> sRGB matrix: the inverse of the simulation's sRGB -> camera one
    assert np.allclose(info["camera_to_srgb"], np.linalg.inv(camera_from_srgb(RAW_CAMERA["xyz_to_camera"])),
                       atol=1e-3), info["camera_to_srgb"]
    frame = read_raw(tmp_path / "one.dng")
    assert frame.image.shape == (32, 48, 3) and frame.image.dtype == np.float32
    assert 0 <= frame.image.min() and frame.image.max() <= 1
    # the mosaic: each pixel's own colour of the camera RGB written, to the sensor's 12-bit step
    site = np.tile(np.array(BAYER_PATTERNS[pattern]).reshape(2, 2), (16, 24))
    assert np.array_equal(frame.colours, site)
    truth = np.take_along_axis(rgb, site[..., None], axis=2)[..., 0]
    assert np.abs(frame.mosaic - truth).max() < 1.0 / (WHITE - BLACK) / NEUTRAL.min()


def test_multisr_develops_the_mosaic_as_libraw_does(tmp_path):
    """On flat colour patches (where demosaicing is exact away from their edges) LibRaw's
    development equals multisr's :func:`develop` of the camera RGB written, within half a level."""
    rgb = flat_patches()
    write_camera_dng(tmp_path / "flat.dng", rgb)
    image = read_raw(tmp_path / "flat.dng").image
    inner = np.zeros((64, 64), bool)
    for top in range(0, 64, 16):
        for left in range(0, 64, 16):
            inner[top + 4 : top + 12, left + 4 : left + 12] = True
    difference = (image - develop(rgb, np.linalg.inv(camera_from_srgb(RAW_CAMERA["xyz_to_camera"]))))[inner]
    assert np.abs(difference).max() * 255 < 0.5  # measured 0.26


def test_a_turned_raw_file_gives_its_mosaic_turned_as_its_picture(tmp_path):
    """A DNG whose Orientation says "turn 90 degrees": the mosaic and its colours turn with the picture."""
    rgb = flat_patches(seed=1)[:, :48]
    mosaic = write_camera_dng(tmp_path / "plain.dng", rgb)
    write_dng(tmp_path / "turned.dng", mosaic, pattern="rggb", black=BLACK, white=WHITE,
              xyz_to_camera=RAW_CAMERA["xyz_to_camera"], neutral=NEUTRAL, orientation=6)
    plain, turned = read_raw(tmp_path / "plain.dng"), read_raw(tmp_path / "turned.dng")
    assert turned.image.shape == (48, 64, 3)
    turns = [k for k in (1, 3) if np.abs(np.rot90(plain.image, k) - turned.image).max() < 1e-6]
    assert len(turns) == 1, "the picture is the plain one turned by 90 degrees"
    assert np.array_equal(np.rot90(plain.mosaic, turns[0]), turned.mosaic)
    assert np.array_equal(np.rot90(plain.colours, turns[0]), turned.colours)


def test_a_dng_burst_runs_to_a_16_bit_result_that_records_the_files(dng_burst, tmp_path):
    result = invoke("run", dng_burst, "--n", "all", "--out", tmp_path / "out", "--pipeline", "multiframe")
    assert result.exit_code == 0, result.output
    png = cv2.imread(str(tmp_path / "out" / "result.png"), cv2.IMREAD_UNCHANGED)
    frame = read_raw(dng_burst / "IMG_0000.dng").image
    assert png.dtype == np.uint16 and png.shape == (3 * frame.shape[0], 3 * frame.shape[1], 3)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    raw = record["source"]["raw"]
    assert raw["pattern"] == "RGGB" and raw["white_level"] == WHITE and "AHD" in raw["development"]
    tif = cv2.imread(str(tmp_path / "out" / "result.tif"), cv2.IMREAD_UNCHANGED)
    assert tif.dtype == np.uint16 and np.array_equal(tif, png)  # the same pixels, for photo editors
    assert raw["mosaic"] and record["parameters"]["stages"]["reconstruct"]["demosaic"] == "burst"
    assert record["solve"]["demosaic"] == "burst" and record["solve"]["mosaic"]["psf"]


def test_a_box_on_a_raw_burst_cuts_the_mosaics_with_the_frames(dng_burst, tmp_path):
    """With --roi the target's windows are cut from the mosaics too, each with its own colour
    layout: the burst still demosaics itself, and the result is the box at 3x."""
    result = invoke("run", dng_burst, "--n", "all", "--reference", 0, "--roi", "12,8,40,22", "--out", tmp_path / "out",
                    "--pipeline", "multiframe")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["solve"]["demosaic"] == "burst"
    assert cv2.imread(str(tmp_path / "out" / "result.png"), cv2.IMREAD_UNCHANGED).shape == (66, 120, 3)


def test_a_raw_burst_without_a_colour_mosaic_runs_on_libraws_development(plate, tmp_path):
    """A linear DNG (demosaiced in the camera: three values a pixel) has no mosaic to solve
    from: the run says so in run.json and reconstructs from LibRaw's development."""
    import tifffile

    folder = tmp_path / "linear"
    folder.mkdir()
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "multisr linear camera", True),
            (50721, "2i", 9, tuple(v for x in np.ravel(RAW_CAMERA["xyz_to_camera"]) for v in (int(x * 10000), 10000)),
             True), (50778, "H", 1, (21,), True), (50717, "H", 1, (WHITE,), True)]
    for k, frame in enumerate(simulate_burst(plate, n=4, seed=3).frames):
        tifffile.imwrite(folder / f"IMG_{k:04d}.dng", np.round(np.clip(frame, 0, 1) * WHITE).astype(np.uint16),
                         photometric=34892, extratags=tags, subfiletype=0)  # LinearRaw
    result = invoke("run", folder, "--n", "all", "--out", tmp_path / "out", "--pipeline", "multiframe")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["source"]["raw"]["mosaic"] is False and record["solve"]["demosaic"] == "library"


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


def test_the_burst_demosaics_itself_better_than_libraw_demosaics_each_frame(tmp_path):
    """A simulated RAW burst (camera protocol, RGGB, known motion) written as DNG files: the
    reconstruction from the mosaics (demosaic=burst) is nearer the truth in RGB than the same
    reconstruction from LibRaw's demosaic of each frame (demosaic=library)."""
    from conftest import shared_data
    from multisr.storage.io import read_image

    image, _ = read_image(shared_data("eval", "Set5", "butterfly_GT.bmp"))
    burst = simulate_camera_burst(image, n=10, seed=4, mosaic="rggb", moving_object=False)
    save_burst(burst, tmp_path / "burst")
    scores = {}
    for demosaic in ("library", "burst"):
        out = tmp_path / f"out-{demosaic}"
        result = invoke("run", tmp_path / "burst", "--n", "all", "--reference", 0, "--out", out, "--pipeline",
                        "multiframe", "--set", f"reconstruct.demosaic={demosaic}")
        assert result.exit_code == 0, result.output
        scores[demosaic] = score_image(read_image(out / "result.png")[0], burst.truth, shave=3)
    # measured +3.71 dB RGB and +3.67 dB Y (seeds 5 and 6: +3.7 and +5.1 RGB)
    assert scores["burst"]["rgb_psnr"] > scores["library"]["rgb_psnr"] + 2.0, scores
    assert scores["burst"]["psnr"] > scores["library"]["psnr"] + 2.0, scores

"""A camera's folder as it is: sidecar, system and video files beside the frames, EXIF orientation,
alpha channels, and ``--n all``. Each case builds its folder from a simulated burst."""
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import assert_one_line_error, copy_burst, invoke
from multisr.storage.io import ORIENTATIONS, read_picture, to_uint, write_image

# EXIF orientation -> how to store an upright image so that a viewer shows it upright again
STORE_FOR_ORIENTATION = {
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


def save_with_orientation(path, pixels: np.ndarray, orientation: int, **options) -> None:
    """``pixels`` (``uint8`` RGB as stored) written by Pillow with EXIF orientation ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, exif=exif, **options)


def rgb_of(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def result_of(out):
    return cv2.imread(str(out / "result.png"), cv2.IMREAD_UNCHANGED)


def test_sidecar_system_and_video_files_are_passed_over_with_one_warning(tiny_burst, tmp_path):
    frames = copy_burst(tiny_burst, tmp_path / "camera")
    for name in ("frame_000.xmp", "frame_001.xmp", "IMG_0001.AAE", "Thumbs.db", "desktop.ini", ".DS_Store",
                 "notes.txt", "clip.MOV"):
        (frames / name).write_bytes(b"not a frame")
    result = invoke("run", frames, "--n", "all", "--out", tmp_path / "out", "--pipeline", "bicubic")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "passed over" in line]
    assert len(warnings) == 1, result.stderr
    for fragment in ("passed over 7 files", "4 sidecar (.aae, .txt, .xmp)", "2 system (Thumbs.db, desktop.ini)",
                     "1 video (.mov)"):
        assert fragment in warnings[0], warnings[0]
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["parameters"]["n"] == 6
    assert record["source"]["passed_over"]["video"] == ["clip.MOV"]
    assert ".DS_Store" not in json.dumps(record["source"]["passed_over"])  # hidden files stay silent
    plain = invoke("run", tiny_burst, "--n", "all", "--out", tmp_path / "plain", "--pipeline", "bicubic")
    assert (result_of(tmp_path / "out") == result_of(tmp_path / "plain")).all()
    assert "passed over" not in plain.stderr


def test_a_folder_of_sidecars_alone_or_an_unknown_kind_is_one_line(tiny_burst, tmp_path):
    sidecars = tmp_path / "sidecars"
    sidecars.mkdir()
    for k in range(3):
        (sidecars / f"IMG_{k}.xmp").write_bytes(b"xmp")
    assert_one_line_error(invoke("run", sidecars, "--n", "all", "--out", tmp_path / "o1"), "found none",
                          "or RAW files")
    heic = copy_burst(tiny_burst, tmp_path / "heic")
    (heic / "IMG_0007.HEIC").write_bytes(b"heic")
    assert_one_line_error(invoke("run", heic, "--n", "all", "--out", tmp_path / "o2"), "IMG_0007.HEIC",
                          "found a .HEIC file")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_viewers_apply_it(orientation, tmp_path):
    """Pillow's own ``exif_transpose`` is the truth; a 16x24 image has no symmetry to hide a wrong turn."""
    upright = np.random.default_rng(orientation).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    path = tmp_path / "frame.png"
    save_with_orientation(path, STORE_FOR_ORIENTATION[orientation](upright), orientation)
    with Image.open(path) as stored:
        shown = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
    assert (shown == upright).all()  # the storing table above is right
    picture = read_picture(path)
    assert picture.orientation == orientation
    assert (to_uint(picture.image) == upright).all()
    assert set(ORIENTATIONS) == set(range(1, 9))


def test_a_burst_shot_upright_on_a_phone_comes_out_upright(tiny_burst, tmp_path):
    """Frames stored turned (orientation 6, lossless PNG) give the run on the upright frames, to
    the byte, with the orientation in run.json; JPEGs shown as 36 wide come out 108 wide."""
    turned, jpegs = tmp_path / "turned", tmp_path / "jpegs"
    turned.mkdir(), jpegs.mkdir()
    upright = copy_burst(tiny_burst, tmp_path / "upright")
    for path in sorted(upright.glob("*.png")):
        pixels = rgb_of(path)
        save_with_orientation(turned / path.name, np.rot90(pixels, 1), 6)
        save_with_orientation(jpegs / path.with_suffix(".jpg").name, np.rot90(pixels, 1), 6, quality=95)
    for name in ("upright", "turned"):
        assert invoke("run", tmp_path / name, "--n", "all", "--out", tmp_path / f"out-{name}").exit_code == 0
    assert (result_of(tmp_path / "out-turned") == result_of(tmp_path / "out-upright")).all()
    record = json.loads((tmp_path / "out-turned" / "run.json").read_text())
    assert record["source"]["exif_orientation"] == [6] * 6
    assert invoke("run", jpegs, "--n", "all", "--out", tmp_path / "out-jpeg", "--pipeline", "bicubic").exit_code == 0
    height, width = rgb_of(upright / "frame_000.png").shape[:2]
    assert result_of(tmp_path / "out-jpeg").shape[:2] == (3 * height, 3 * width)
    single = invoke("upscale", jpegs / "frame_000.jpg", "--out", tmp_path / "up.png")
    assert single.exit_code == 0 and cv2.imread(str(tmp_path / "up.png")).shape[:2] == (3 * height, 3 * width)


@pytest.mark.parametrize("pipeline", ["bicubic", "single", "presenters", "multiframe"])
def test_alpha_is_carried_through_every_pipeline(pipeline, tiny_burst, tmp_path):
    """Frames with a transparent strip over magenta: result.png keeps the reference's alpha
    (bicubic 3x), so the strip stays transparent; its colour is the run's on the frames without
    alpha, to the byte."""
    with_alpha = tmp_path / "rgba"
    with_alpha.mkdir()
    for path in sorted(tiny_burst.glob("frame_*.png")):
        rgb = read_picture(path).image
        rgb[:, :8] = (1.0, 0.0, 1.0)
        alpha = np.ones(rgb.shape[:2], np.float32)
        alpha[:, :8] = 0.0
        write_image(with_alpha / path.name, rgb, alpha=alpha)
        write_image(tmp_path / f"{path.name}.rgb.png", rgb)
    opaque = tmp_path / "rgb"
    opaque.mkdir()
    for path in tmp_path.glob("*.rgb.png"):
        shutil.move(path, opaque / path.name.removesuffix(".rgb.png"))
    for name in ("rgba", "rgb"):
        result = invoke("run", tmp_path / name, "--n", "all", "--out", tmp_path / f"out-{name}", "--pipeline", pipeline)
        assert result.exit_code == 0, result.output
    carried, plain = result_of(tmp_path / "out-rgba"), result_of(tmp_path / "out-rgb")
    assert carried.shape[2] == 4 and plain.shape[2] == 3
    assert (carried[..., :3] == plain).all()
    assert (carried[:, : 3 * 8 - 3, 3] == 0).all() and (carried[:, 3 * 8 + 3 :, 3] == 255).all()
    record = json.loads((tmp_path / "out-rgba" / "run.json").read_text())
    assert "bicubic" in record["source"]["alpha"]


def test_upscale_keeps_alpha_and_refuses_a_format_without_it(tmp_path):
    rgb = np.random.default_rng(0).random((20, 30, 3), np.float32)
    alpha = np.ones((20, 30), np.float32)
    alpha[5:15, 10:20] = 0.0
    write_image(tmp_path / "in.png", rgb, alpha=alpha)
    assert invoke("upscale", tmp_path / "in.png", "--out", tmp_path / "out.png").exit_code == 0
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (60, 90, 4) and out[20:40, 35:55, 3].max() == 0 and out[:10, :, 3].min() == 255
    assert_one_line_error(invoke("upscale", tmp_path / "in.png", "--out", tmp_path / "out.jpg"), "out.jpg",
                          "transparency")
    assert not (tmp_path / "out.jpg").exists()


def test_n_all_takes_every_frame_from_start(tiny_burst, tmp_path):
    result = invoke("run", tiny_burst, "--n", "all", "--start", 2, "--out", tmp_path / "out", "--pipeline", "bicubic",
                    "--reference", 0)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["parameters"]["n"] == 4 and record["reference_frame"] == "frame_002.png"
    assert_one_line_error(invoke("run", tiny_burst, "--n", "al", "--out", tmp_path / "o2"), "--n", "'al'")
    assert_one_line_error(invoke("run", tiny_burst, "--n", "all", "--start", 5, "--out", tmp_path / "o3"),
                          "at least 2 frames", "found 1")
    assert_one_line_error(invoke("run", tiny_burst, "--n", 9, "--out", tmp_path / "o4"), "found 6",
                          "n=all takes every frame")


@pytest.mark.parametrize("subsampling, options", [("4:2:0", {"subsampling": 2}), ("4:2:2", {"subsampling": 1}),
                                                  ("4:4:4", {"subsampling": 0}), (None, None)])
def test_a_jpeg_frames_chroma_subsampling_is_read_from_its_header(subsampling, options, tmp_path):
    pixels = (np.random.default_rng(0).random((16, 24, 3)) * 255).astype(np.uint8)
    path = tmp_path / ("frame.jpg" if options is not None else "frame.png")
    Image.fromarray(pixels).save(path, **(options or {}))
    assert read_picture(path).chroma_subsampling == subsampling


def test_multiframe_models_the_4_2_0_chroma_of_jpeg_frames(tiny_burst, tmp_path):
    """A folder of JPEG frames (Pillow's default, 4:2:0): run.json's source says so, and
    multiframe's chroma solve modelled it; --set reconstruct.chroma_subsampling=none does not."""
    jpegs = tmp_path / "jpegs"
    jpegs.mkdir()
    for path in sorted(tiny_burst.glob("frame_*.png")):
        Image.fromarray(rgb_of(path)).save(jpegs / path.with_suffix(".jpg").name, quality=95)
    for setting, expected in (("auto", "4:2:0"), ("none", "none")):
        out = tmp_path / f"out-{setting}"
        result = invoke("run", jpegs, "--n", "all", "--out", out, "--pipeline", "multiframe", "--set",
                        f"reconstruct.chroma_subsampling={setting}")
        assert result.exit_code == 0, result.output
        record = json.loads((out / "run.json").read_text())
        assert record["source"]["chroma_subsampling"] == "4:2:0"
        assert record["solve"]["chroma_subsampling"] == expected

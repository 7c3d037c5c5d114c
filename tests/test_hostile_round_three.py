"""The third hostile round (issue "Nothing hangs, nothing lies, round three"): numbers written with
other digits, damaged RAW files, untrusted metadata, cache paths that are not folders, progress
bars in a log, reasons that must be true. Each case is built here and must end as the README
promises: one line naming the file or option, a non-zero exit, nothing half-written, nothing lost,
nothing true left unsaid."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, invoke
from multisr.params import parse_integer, parse_number
from multisr.storage.folders import list_images

SUPERSCRIPT, ARABIC_INDIC = "²", "٣"  # str.isdigit() passes the first, int() refuses it; int() reads the second


# --- numbers written with other digits -----------------------------------------------------------


@pytest.mark.parametrize("text", [SUPERSCRIPT, ARABIC_INDIC, "٣.٥", "1e3", "", "nan", "inf", "0x10", "1_000"])
def test_only_the_digits_0_to_9_are_a_number(text):
    with pytest.raises(ValueError, match="digits 0-9"):
        parse_integer(text)
    if text not in ("1e3",):
        with pytest.raises(ValueError, match="digits 0-9"):
            parse_number(text)
    assert parse_integer(" -12 ") == -12 and parse_number("3e-4") == 3e-4 and parse_number(".5") == 0.5


@pytest.mark.parametrize("digit", [SUPERSCRIPT, ARABIC_INDIC])
@pytest.mark.parametrize("args, option", [
    (["run", "{burst}", "--n", "{d}"], "--n"),
    (["run", "{burst}", "--start", "{d}"], "--start"),
    (["run", "{burst}", "--reference", "{d}"], "--reference"),
    (["run", "{burst}", "--roi", "1,1,20,{d}"], "--roi"),
    (["run", "{burst}", "--max-disk", "{d}"], "--max-disk"),
    (["compare", "{burst}", "--crop", "0,0,8,{d}"], "crop"),
    (["video", "{burst}", "--window", "{d}"], "--window"),
    (["batch", "{burst}", "--workers", "{d}"], "--workers"),
    (["upscale", "{burst}/frame_000.png", "--scale", "{d}"], "--scale"),
    (["simulate", "{burst}/truth.png", "--seed", "{d}"], "--seed"),
    (["simulate", "{burst}/truth.png", "--noise", "{d}"], "--noise"),
    (["train", "--data", "{burst}", "--epochs", "{d}"], "--epochs"),
    (["train", "--data", "{burst}", "--lr", "{d}"], "--lr"),
    (["bench", "quality", "--data", "{burst}", "--n", "{d}"], "--n"),
    (["bench", "quality", "--data", "{burst}", "--protocol", "plate", "--widths", "2{d}"], "--widths"),
    (["bench", "speed", "--sizes", "160x1{d}"], "--sizes"),
])
def test_every_number_option_refuses_other_digits_in_one_line(tiny_burst, tmp_path, args, option, digit):
    """Before, a superscript passed str.isdigit() and ended in int()'s traceback (--reference,
    --roi), and other scripts' digits were silently read as numbers (every click option)."""
    filled = [a.format(burst=tiny_burst, d=digit) for a in args] + ["--out", tmp_path / "out"]
    if args[0] == "bench":
        filled = filled[:-2]
    result = invoke(*filled)
    assert_one_line_error(result, option, "0-9")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("variable, value", [("MULTISR_MAX_PIXELS", "٥٠٠M"), ("MULTISR_CACHE_LIMIT", "٢G")])
def test_environment_numbers_refuse_other_digits(tiny_burst, tmp_path, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("MULTISR_CACHE", str(tmp_path / "cache"))
    assert_one_line_error(invoke("run", tiny_burst, "--n", "all", "--out", tmp_path / "out"), variable, repr(value))


def test_file_names_with_superscripts_sort_without_a_traceback(tmp_path):
    for name in ("²", "frame_10", "frame_9"):
        (tmp_path / f"{name}.png").write_bytes(b"")
    assert [p.stem for p in list_images(tmp_path)] == ["frame_9", "frame_10", "²"]


# --- RAW files LibRaw opens but cannot unpack ------------------------------------------------------


@pytest.fixture(scope="module")
def raw_burst(tmp_path_factory):
    """A 4-frame RGGB DNG burst (multisr simulate --mosaic), for damaging."""
    folder = tmp_path_factory.mktemp("raw")
    from conftest import REPO_DATA

    assert invoke("simulate", REPO_DATA / "eval" / "Set5" / "bird_GT.bmp", "--protocol", "camera", "--mosaic",
                  "rggb", "--n", 4, "--out", folder).exit_code == 0
    return folder


@pytest.mark.parametrize("kept", [0.3, 0.8, 0.99])
def test_a_truncated_raw_file_is_one_line_and_libraw_says_nothing(raw_burst, tmp_path, kept):
    """Before: LibRaw opened the file, the first look at its pattern unpacked it, and LibRaw's
    LibRawIOError came out as a traceback. The command runs in a process of its own, so that
    what LibRaw's C code writes to the process's stderr is seen too."""
    import shutil
    import subprocess
    import sys

    burst = tmp_path / "burst"
    shutil.copytree(raw_burst, burst)
    data = (burst / "frame_002.dng").read_bytes()
    (burst / "frame_002.dng").write_bytes(data[: int(len(data) * kept)])
    done = subprocess.run([sys.executable, "-c", "from multisr.cli import cli; cli()", "run", str(burst), "--n", "all",
                           "--pipeline", "single", "--no-cache", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and "\r" not in line]
    assert lines == [lines[-1]] and lines[-1].startswith("Error: ") and "frame_002.dng" in lines[-1], done.stderr
    assert "LibRawIOError" in lines[-1] and not (tmp_path / "out" / "result.png").exists()


# --- untrusted metadata -----------------------------------------------------------------------------


def png_with_exif(pixels: np.ndarray, exif: bytes) -> bytes:
    """A PNG of ``pixels`` (uint8) with an eXIf chunk holding ``exif`` before its pixels."""
    import struct
    import zlib

    import cv2

    data = cv2.imencode(".png", pixels)[1].tobytes()
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    end_of_header = 8 + 25  # the signature, then IHDR (4 + 4 + 13 + 4 bytes)
    return data[:end_of_header] + chunk + data[end_of_header:]


def tiff_exif(tag_type: int, count: int, value: bytes, entries: int = 1) -> bytes:
    """A big-endian TIFF header and one IFD whose first entry is the orientation (0x0112) of
    ``tag_type`` (3 SHORT, 5 RATIONAL); a RATIONAL's value lies after the IFD."""
    import struct

    ifd = struct.pack(">H", entries)
    offset = 8 + 2 + 12 * entries + 4
    field = value.ljust(4, b"\0") if len(value) <= 4 else struct.pack(">I", offset)
    ifd += struct.pack(">HHI", 0x0112, tag_type, count) + field
    return b"MM\0*" + struct.pack(">I", 8) + ifd + b"\0\0\0\0" + (value if len(value) > 4 else b"")


@pytest.mark.parametrize("case", ["rational orientation", "orientation 99", "cut eXIf chunk", "garbage eXIf chunk",
                                  "a tag past the block"])
def test_untrusted_exif_is_a_missing_value_and_the_pixels_are_used(tiny_burst, tmp_path, case):
    """Before: an orientation stored as a RATIONAL was applied (here it turned one frame: "expected
    every frame to be 67x37"; elsewhere run.json could not be written), an eXIf chunk cut short
    raised struct.error, and a tag whose data lies past the block made Pillow warn (an error
    under the suite's warnings-as-errors)."""
    import shutil
    import struct

    import cv2

    burst = tmp_path / "burst"
    shutil.copytree(tiny_burst, burst)
    exif = {"rational orientation": tiff_exif(5, 1, struct.pack(">II", 6, 1)),
            "orientation 99": tiff_exif(3, 1, struct.pack(">H", 99)),
            "cut eXIf chunk": tiff_exif(3, 1, struct.pack(">H", 6), entries=5)[:20],
            "garbage eXIf chunk": b"MM\0*\0\0\0\x08" + bytes(range(256)) * 2,
            # two entries: the orientation, and 100 bytes of text said to lie at offset 5000
            "a tag past the block": (b"MM\0*" + struct.pack(">IH", 8, 2) + struct.pack(">HHIHH", 0x0112, 3, 1, 1, 0)
                                     + struct.pack(">HHII", 0x010F, 2, 100, 5000) + b"\0\0\0\0")}[case]
    frame = burst / "frame_001.png"
    frame.write_bytes(png_with_exif(cv2.imread(str(frame), cv2.IMREAD_UNCHANGED), exif))
    result = invoke("run", burst, "--n", "all", "--pipeline", "single", "--no-cache", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["source"]["exif_orientation"][1] == 1


# --- cache paths that are not folders ---------------------------------------------------------------


@pytest.mark.parametrize("args", [["cache"], ["cache", "--clear"], ["run", "{burst}", "--n", "all", "--out", "{out}"]])
@pytest.mark.parametrize("given", ["environment", "option", "under a file"])
def test_a_cache_that_is_a_file_is_one_line_naming_where_it_came_from(tiny_burst, tmp_path, monkeypatch, args, given):
    """Before: MULTISR_CACHE naming a file gave 'multisr cache' "0 entries" and 'cache --clear'
    "cleared", status 0; a run refused it but named --cache, which the user had not given."""
    a_file = tmp_path / "cache-file"
    a_file.write_text("not a folder")
    path = a_file / "below" if given == "under a file" else a_file
    filled = [a.format(burst=tiny_burst, out=tmp_path / "out") for a in args]
    if given == "option":
        filled += ["--cache", path]
    else:
        monkeypatch.setenv("MULTISR_CACHE", str(path))
    result = invoke(*filled)
    assert_one_line_error(result, "--cache" if given == "option" else "$MULTISR_CACHE", "expected a folder", "is a file")
    assert a_file.read_text() == "not a folder" and not (tmp_path / "out").exists()


# --- progress bars in a log ---------------------------------------------------------------------------


def test_a_video_run_into_a_log_file_writes_no_bars_and_a_terminal_gets_them(tmp_path):
    """Before: 'multisr video CLIP 2> log' left carriage returns, blank lines and cursor-up escapes
    (the stages' bars inside the video's) in the log. Every bar of the package is off where stderr
    is not a terminal; under a pseudo-terminal they are drawn."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    import cv2
    from multisr.research.scenes import licence_plate
    from multisr.research.simulate import simulate_burst

    burst = simulate_burst(licence_plate(width=240, height=150), n=6, seed=1)
    clip = tmp_path / "clip.mkv"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"FFV1"), 10, burst.frames.shape[2:0:-1])
    for frame in burst.frames:
        writer.write(cv2.cvtColor(np.round(frame * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    command = [sys.executable, "-c", "from multisr.cli import cli; cli()", "video", str(clip), "--window", "3"]
    with open(tmp_path / "log", "w") as log:
        subprocess.run([*command, "--out", str(tmp_path / "logged")], stderr=log, check=True, timeout=300)
    assert (tmp_path / "log").read_text() == ""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    child = subprocess.Popen([*command, "--out", str(tmp_path / "seen")], stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:  # what the terminal would show, read as it comes (the pseudo-terminal's buffer is small)
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the child has closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    done = child.wait(timeout=300)
    drawn = b"".join(chunks).decode(errors="replace")
    assert done == 0 and "video:" in drawn and "frame/s" in drawn


# --- reasons that are true ------------------------------------------------------------------------------


def _target_burst(speed: float, n: int):
    from conftest import REPO_DATA
    from multisr.research.moving_target import simulate_target_burst
    from multisr.storage.io import read_image

    set5 = REPO_DATA / "eval" / "Set5"
    return simulate_target_burst(read_image(set5 / "head_GT.bmp")[0], read_image(set5 / "woman_GT.bmp")[0], n=n,
                                 seed=2, speed=speed, zoom=0.0)


def _inside(burst, k: int) -> float:
    """The share of the target's box inside frame k, by the truth."""
    from multisr.imaging.geometry import apply

    x, y, w, h = burst.settings["target_box"]
    ys, xs = np.mgrid[y : y + h, x : x + w].astype(np.float64)
    u, v = apply(np.array(burst.settings["target_matrices"][k]), xs, ys)
    height, width = burst.frames.shape[1:3]
    return float(np.mean((u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)))


def test_a_target_out_of_the_picture_is_said_to_leave_it_and_a_hidden_one_is_not():
    """A target 12 LR px a frame fast is wholly out of the picture in its last frames (before, such
    frames could read 'the fit failed'); hidden under a grey patch in frames 3-5, it is 'not
    found ... or is hidden or changed', never said to leave the picture while all of it is in it."""
    from multisr.imaging.geometry import apply
    from multisr.registration.tracking import LEAVES, track_target

    burst = _target_burst(12.0, 20)
    x, y, w, h = burst.settings["target_box"]
    for k in (3, 4, 5):  # a grey patch over the target
        u, v = apply(np.array(burst.settings["target_matrices"][k]), np.array([x, x + w]), np.array([y, y + h]))
        burst.frames[k, int(v[0]) - 2 : int(v[1]) + 3, max(0, int(u.min()) - 2) : int(u.max()) + 3] = 0.5
    tracked = track_target(burst.frames, 0, (x, y, w, h))
    for k, reason in enumerate(tracked.reasons):
        inside = _inside(burst, k)
        if inside == 0:
            assert reason == LEAVES, (k, reason)
        if k in (3, 4, 5):
            assert reason is not None and "hidden or changed" in reason and reason != LEAVES, (k, reason)
        elif inside == 1:
            assert reason is None, (k, reason)
    assert any(_inside(burst, k) == 0 for k in range(20))


def test_boxes_of_8_to_15_pixels_are_found_in_identical_frames():
    """Before: the option's check took boxes of 8 px and more, and the fit's minimum of valid points
    (and its 4-px border) failed every box under 16 px in every frame, identical frames too."""
    import cv2
    from conftest import REPO_DATA
    from multisr.registration.tracking import track_target
    from multisr.storage.io import read_image

    frame = cv2.resize(read_image(REPO_DATA / "eval" / "Set5" / "butterfly_GT.bmp")[0], (120, 120),
                       interpolation=cv2.INTER_AREA)
    frames = np.stack([frame] * 6)
    for box in [(40, 40, 8, 8), (40, 40, 10, 10), (40, 40, 15, 9), (10, 10, 12, 8), (60, 30, 8, 15)]:
        tracked = track_target(frames, 0, box)
        assert tracked.reasons == [None] * 6, (box, tracked.reasons)
        assert np.abs(tracked.matrices - np.eye(3)).max() < 1e-3


# --- the smaller ones ---------------------------------------------------------------------------------


def test_simulate_writes_no_raw_file_that_libraw_cannot_read(tmp_path):
    """Before: a 97x76 picture made 18x10 DNG files, which LibRaw then refused to read."""
    import cv2
    from conftest import REPO_DATA
    from multisr.storage.io import read_image, write_image

    write_image(tmp_path / "small.png", cv2.resize(read_image(REPO_DATA / "eval" / "Set5" / "bird_GT.bmp")[0], (97, 76)))
    result = invoke("simulate", tmp_path / "small.png", "--protocol", "camera", "--mosaic", "rggb", "--out",
                    tmp_path / "burst")
    assert_one_line_error(result, "small.png", "22x22", "18x10")
    assert not (tmp_path / "burst").exists()


def test_a_burst_of_8_and_16_bit_frames_gives_the_reference_depth(tiny_burst, tmp_path):
    """The README: the result has the reference frame's bit depth (before: the deepest frame's)."""
    import shutil

    import cv2

    burst = tmp_path / "burst"
    shutil.copytree(tiny_burst, burst)
    frame = cv2.imread(str(burst / "frame_003.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(burst / "frame_003.png"), frame.astype(np.uint16) * 257)
    for reference, depth in ((0, np.uint8), (3, np.uint16)):
        out = tmp_path / f"out{reference}"
        result = invoke("run", burst, "--n", "all", "--reference", reference, "--pipeline", "single", "--out", out)
        assert result.exit_code == 0, result.output
        assert cv2.imread(str(out / "result.png"), cv2.IMREAD_UNCHANGED).dtype == depth


def test_a_raw_burst_of_two_colour_layouts_says_it_is_not_solved_from_its_mosaics(raw_burst, tmp_path):
    import shutil

    from conftest import REPO_DATA

    other = tmp_path / "bggr"
    assert invoke("simulate", REPO_DATA / "eval" / "Set5" / "bird_GT.bmp", "--protocol", "camera", "--mosaic", "bggr",
                  "--n", 4, "--out", other).exit_code == 0
    burst = tmp_path / "burst"
    shutil.copytree(raw_burst, burst)
    shutil.copy(other / "frame_002.dng", burst / "frame_002.dng")
    result = invoke("run", burst, "--n", "all", "--pipeline", "multiframe", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert ("Warning: the RAW frames are demosaiced by LibRaw one by one, not solved from the burst's mosaics: "
            "frame_002.dng's colour layout (BGGR) differs from frame_000.dng's (RGGB)") in result.stderr
    assert json.loads((tmp_path / "out" / "run.json").read_text())["solve"]["demosaic"] == "library"


def test_a_bad_pixel_limit_is_refused_when_the_frames_come_from_the_cache(tiny_burst, tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISR_CACHE", str(tmp_path / "cache"))
    assert invoke("run", tiny_burst, "--n", "all", "--pipeline", "single", "--out", tmp_path / "first").exit_code == 0
    monkeypatch.setenv("MULTISR_MAX_PIXELS", "lots")
    result = invoke("run", tiny_burst, "--n", "all", "--pipeline", "single", "--out", tmp_path / "second")
    assert_one_line_error(result, "MULTISR_MAX_PIXELS", "'lots'")


def test_raw_levels_that_cannot_scale_a_mosaic_are_missing_values(tmp_path):
    """A DNG whose white level (1000) lies below its black level (4000): its mosaic is not used
    (it would have been scaled by a negative range), the burst is developed by LibRaw, and the
    console says which frame."""
    from multisr.research.camera import RAW_CAMERA
    from multisr.storage.dng import write_dng

    rng = np.random.default_rng(0)
    base = rng.integers(300, 4000, (64, 96)).astype(np.uint16)
    for k in range(4):
        write_dng(tmp_path / f"frame_{k:03d}.dng", np.roll(base, k, axis=1), pattern="rggb",
                  black=4000 if k == 1 else 256, white=1000 if k == 1 else 4095,
                  xyz_to_camera=RAW_CAMERA["xyz_to_camera"], neutral=RAW_CAMERA["neutral"])
    result = invoke("run", tmp_path, "--n", "all", "--pipeline", "multiframe", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "frame_001.dng has no mosaic of red, green and blue it can be solved from" in result.stderr
    from multisr.storage.io import read_image

    assert np.isfinite(read_image(tmp_path / "out" / "result.png")[0]).all()


@pytest.mark.parametrize("command", [["run"], ["simulate"], ["train"], ["bench", "quality"], ["batch"], ["video"]])
def test_help_shows_a_number_option_s_range_only_where_it_has_one(command):
    """An unbounded number option read "[default: 0; x<=None]" once its type checked the digits."""
    text = invoke(*command, "--help").output
    assert "None" not in text
    if command == ["run"]:
        assert "x>=0" in text  # --start's bound is still shown

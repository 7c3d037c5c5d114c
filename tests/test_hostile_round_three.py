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

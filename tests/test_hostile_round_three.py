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

"""multisr compare: the report's numbers, and the page as a browser shows it."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import shared_data
from multisr.cli import cli
from multisr.storage.io import read_image
from multisr.imaging.metrics import score_image
from multisr.research.simulate import save_burst, simulate_burst

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def compare(*args):
    result = CliRunner().invoke(cli, ["compare", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def check_in_browser(index: Path, screenshot: Path) -> None:
    """Open the page in headless Chromium: every image loaded, no console errors; save a screenshot."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(index.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        assert images and all(loaded for _, loaded in images), images
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(height + 100, 6000))
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    assert screenshot.stat().st_size > 10_000


def test_report_with_truth_agrees_with_the_metric_code(tmp_path):
    image, _ = read_image(shared_data("eval", "Set5", "butterfly_GT.bmp"))
    burst = tmp_path / "burst"
    save_burst(simulate_burst(image, n=6, seed=0), burst)
    out = tmp_path / "report"
    compare(burst, "--n", 6, "--out", out, "--truth", burst / "truth.png")
    metrics = json.loads((out / "metrics.json").read_text())
    truth, _ = read_image(burst / "truth.png")
    assert [m["name"] for m in metrics["methods"]] == ["bicubic", "single", "presenters", "multiframe", "merge"]
    for method in metrics["methods"]:
        result, _ = read_image(out / method["image"])
        expected = score_image(result, truth, shave=3)
        assert method["psnr"] == pytest.approx(expected["psnr"], abs=1e-9)
        assert method["ssim"] == pytest.approx(expected["ssim"], abs=1e-9)
        assert (out / method["error_map"]).is_file() and method["seconds"] > 0
    scores = {m["name"]: m["psnr"] for m in metrics["methods"]}
    assert scores["multiframe"] > scores["presenters"] > scores["single"] > scores["bicubic"]
    assert len(metrics["registration"]) == 6 and metrics["excluded"] == []
    check_in_browser(out / "index.html", tmp_path / "report_with_truth.png")


def test_report_without_truth_on_a_real_burst(tmp_path):
    out = tmp_path / "report"
    compare(shared_data("real", "alpaca"), "--n", 8, "--out", out, "--crop", "60,60,48,48")
    assert "multiframe" in [m["name"] for m in json.loads((out / "metrics.json").read_text())["methods"]]
    html = (out / "index.html").read_text()
    assert "There is no ground truth" in html and "PSNR (dB)" not in html
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["crop"] == [60, 60, 48, 48] and all("psnr" not in m for m in metrics["methods"])
    result, _ = read_image(out / "images" / "presenters.png")
    frame, _ = read_image(shared_data("real", "alpaca") / "frame_000.png")
    assert result.shape == (3 * frame.shape[0], 3 * frame.shape[1])
    check_in_browser(out / "index.html", tmp_path / "report_alpaca.png")


def test_bad_crop_and_truth_are_refused(tiny_burst, tmp_path):
    for args, fragment in [(["--crop", "1,2,3"], "--crop: expected X,Y,W,H"),
                           (["--crop", "0,0,5000,10"], "--crop: expected a region inside"),
                           (["--truth", tiny_burst / "frame_001.png"], "expected a truth of")]:
        result = CliRunner().invoke(cli, ["compare", str(tiny_burst), "--n", "3", "--out", str(tmp_path / "r"),
                                          *map(str, args)])
        assert result.exit_code == 2 and fragment in result.stderr, result.output


def test_the_disk_bursts_outlier_frames_are_reported_as_left_out(tmp_path):
    out = tmp_path / "report"
    compare(shared_data("real", "disk"), "--n", 26, "--out", out, "--pipelines", "bicubic,multiframe")
    left_out = [e["frame"] for e in json.loads((out / "metrics.json").read_text())["excluded"]]
    assert left_out == [f"frame_{k:03d}.png" for k in range(20, 26)]
    assert "frame_023.png" in (out / "index.html").read_text()


def test_the_report_shows_the_reference_every_run_used(tiny_burst, tmp_path):
    """With frame 0 blurred, the sharpest frame (1) is every pipeline's reference: run.json's
    reference_index says 1 and its n 4 for the single-image pipelines too (their
    select_reference stage keeps one frame, renumbered 0), and the report's reference image is
    frame 1."""
    import cv2

    from conftest import copy_burst, invoke
    from multisr.storage.io import write_image

    frames = copy_burst(tiny_burst, tmp_path / "frames")
    image, _ = read_image(frames / "frame_000.png")
    write_image(frames / "frame_000.png", cv2.GaussianBlur(image, (0, 0), 1.5))
    out = tmp_path / "report"
    result = invoke("compare", frames, "--n", 4, "--out", out, "--pipelines", "bicubic,presenters")
    assert result.exit_code == 0, result.output
    for name in ("bicubic", "presenters"):
        record = json.loads((out / "runs" / name / "run.json").read_text())
        assert (record["reference_index"], record["reference_frame"]) == (1, "frame_001.png"), name
        assert record["parameters"]["n"] == 4, name
    assert json.loads((out / "metrics.json").read_text())["reference"] == 1
    shown = read_image(out / "images" / "reference.png")[0][::3, ::3]  # magnified 3x, nearest
    assert np.abs(shown - read_image(frames / "frame_001.png")[0]).max() < 1 / 255

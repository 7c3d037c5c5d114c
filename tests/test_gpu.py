"""The SR network and a whole run on a CUDA GPU; skipped where torch sees none."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import shared_data
from multisr.cli import cli
from multisr.research.evaluate import evaluate_folder
from multisr.sr.inference import super_resolve_luma
from multisr.sr.weights import load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# float16 on the GPU: an output step is about 5e-4 near 1.0, so tiles computed with other
# kernel choices can differ by a few of those; the PSNR must stay within the 0.05 dB.
TILE_TOLERANCE = 2e-3
PSNR_TOLERANCE_DB = 0.05


def test_tiled_equals_untiled_on_the_gpu():
    model = load_model("srcnn-955", device="cuda")
    y = np.random.default_rng(3).random((2, 300, 410)).astype(np.float32)
    whole = super_resolve_luma(y, model, tile=4096)
    tiled = super_resolve_luma(y, model, tile=128)
    assert np.abs(tiled - whole).max() < TILE_TOLERANCE


def test_gpu_half_precision_keeps_set5_psnr():
    data = shared_data("eval", "Set5")
    cpu = evaluate_folder(data, scale=3, model=load_model("srcnn-955", device="cpu"))["mean"]["model"]["psnr"]
    gpu = evaluate_folder(data, scale=3, model=load_model("srcnn-955", device="cuda"))["mean"]["model"]["psnr"]
    assert abs(gpu - cpu) < PSNR_TOLERANCE_DB, (cpu, gpu)


def test_a_run_on_the_gpu_records_its_device(tiny_burst, tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tiny_burst), "--n", "6", "--out", str(tmp_path / "run"),
                                      "--device", "cuda"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["device"].startswith("cuda")
    assert {s["name"]: s["device"] for s in record["stages"]}["srcnn"].startswith("cuda")


def test_frames_in_flight_give_what_one_frame_at_a_time_gives():
    from multisr.sr.inference import sharpen_frames

    model = load_model("srcnn-955", device="cuda")
    frames = np.random.default_rng(4).random((7, 90, 120, 3)).astype(np.float32)
    together = sharpen_frames(frames, model, batch_size=1)
    one_by_one = np.stack([sharpen_frames(frame[None], model)[0] for frame in frames])
    assert np.abs(together - one_by_one).max() < TILE_TOLERANCE

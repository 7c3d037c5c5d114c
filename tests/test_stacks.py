"""Stacks on disk, and the stages that work through them in bands: each equals the whole-frame
computation, and no read takes more than a band."""
import os

import cv2
import numpy as np
import pytest

from multisr.reconstruction.fusion import masked_median
from multisr.imaging.geometry import similarity_matrix, to_high_resolution, warp
from multisr.params import SCALE
from multisr.registration.burst import Registration
from multisr.imaging.resize import upscale
from multisr.sr.inference import sharpen_frames
from multisr.sr.weights import load_model
from multisr.storage.stacks import Stack
from multisr.runs.stages import UPSCALE_MARGIN, _fuse, _realign, _srcnn, _upscale

BAND = 7  # rows a band in these tests, far fewer than a frame's


@pytest.fixture
def small_bands(monkeypatch):
    """Bands of ``BAND`` rows for every stage, and a record of every read's rows."""
    monkeypatch.setattr("multisr.runs.stages.band_rows", lambda width, frames=1, workers=1: BAND)
    reads = []
    original = Stack.__getitem__

    def spy(self, key):
        part = original(self, key)
        reads.append(part.shape[1] if part.ndim == len(self.shape) else part.shape[0])
        return part

    monkeypatch.setattr(Stack, "__getitem__", spy)
    return reads


def test_a_stack_reads_and_writes_like_an_array(tmp_path):
    values = np.random.default_rng(0).random((3, 20, 30, 3)).astype(np.float32)
    stack = Stack.create(tmp_path / "s.npy", values.shape)
    for top in range(0, 20, 6):
        stack[:, top : top + 6] = values[:, top : top + 6]
    assert np.array_equal(stack[1, 4:9], values[1, 4:9])
    assert np.array_equal(stack[2, ::4, ::3], values[2, ::4, ::3])
    assert np.array_equal(np.load(tmp_path / "s.npy"), values)  # a plain .npy
    assert np.array_equal(np.asarray(Stack(tmp_path / "s.npy")), values)
    assert len(stack) == 3 and stack.shape == values.shape and stack.dtype == np.float32


@pytest.mark.parametrize("kernel", ["matlab", "opencv"])
@pytest.mark.parametrize("channels", [(), (3,)])
def test_upscale_in_bands_equals_the_whole_frame(tmp_path, small_bands, kernel, channels):
    frames = np.random.default_rng(1).random((2, 40, 33, *channels)).astype(np.float32)
    hr = _upscale(frames=frames, scale=SCALE, kernel=kernel, workspace=tmp_path)["hr"]
    whole = np.stack([upscale(frame, SCALE, kernel=kernel) for frame in frames])
    assert np.abs(np.asarray(hr) - whole).max() < 1e-6


def test_srcnn_from_stack_to_stack_in_bands_equals_the_whole_frame(tmp_path, small_bands, monkeypatch):
    frames = np.random.default_rng(2).random((2, 45, 38, 3)).astype(np.float32)
    whole = sharpen_frames(frames, load_model("srcnn-955"))
    monkeypatch.setattr("multisr.sr.inference.BATCH_PIXELS", BAND * 38)
    source = Stack.create(tmp_path / "in.npy", frames.shape)
    source[:] = frames
    (tmp_path / "out").mkdir()
    sharpened = _srcnn(hr=source, scale=SCALE, model="srcnn-955", batch_size=4, device="cpu", workspace=tmp_path / "out")["hr"]
    assert np.abs(np.asarray(sharpened) - whole).max() < 1e-5
    assert max(small_bands) <= BAND + 2 * load_model("srcnn-955").shrink


def test_realign_in_bands_equals_the_whole_warp(tmp_path, small_bands):
    """Within 1e-4 (OpenCV rounds a band's shifted coordinates slightly differently), valid masks
    identical, an excluded frame all invalid, and no read beyond the rows a band needs."""
    rng = np.random.default_rng(3)
    frames = rng.random((3, 60, 72, 3)).astype(np.float32)
    source = Stack.create(tmp_path / "in.npy", frames.shape)
    source[:] = frames
    lr = [np.eye(3), similarity_matrix(scale=1.02, angle=2.0, shift=(1.3, -0.7), center=(12, 10)),
          np.array([[1.01, 0.01, 0.4], [-0.01, 0.99, 0.2], [2e-4, -1e-4, 1.0]])]
    registration = [Registration(matrix, 1.0, None, excluded=excluded) for matrix, excluded in zip(lr, [None, None, "blurred"])]
    (tmp_path / "out").mkdir()
    small_bands.clear()
    flat = np.full((3, 20, 24, 3), 0.5, np.float32)  # LR frames that agree everywhere
    out = _realign(hr=source, frames=flat, scale=SCALE, reference=0, matrices=np.stack(lr), registration=registration,
                   target=None, workspace=tmp_path / "out")
    assert max(small_bands) <= BAND + 10  # a band's rows, turned by 2 degrees over 72 columns, and the taps
    for k, matrix in enumerate(to_high_resolution(np.stack(lr), SCALE)):
        warped, valid = warp(frames[k], matrix, frames.shape[1:3])
        assert np.abs(out["hr"][k] - warped).max() < 1e-4
        assert np.array_equal(out["valid"][k], valid & (k != 2))
    # something in frame 1 that the reference does not have: its samples there are not valid
    texture = cv2.GaussianBlur(rng.random((20, 24)).astype(np.float32), (0, 0), 2.0)
    still = np.repeat(np.repeat(texture[None, ..., None], 3, axis=0), 3, axis=3)
    still[1, 6:12, 8:14] += 0.3
    (tmp_path / "again").mkdir()
    out = _realign(hr=source, frames=still, scale=SCALE, reference=0, matrices=np.stack([np.eye(3)] * 3),
                   registration=[Registration(np.eye(3), 1.0, None)] * 3, target=None, workspace=tmp_path / "again")
    assert not out["valid"][1][3 * 6 : 3 * 12, 3 * 8 : 3 * 14].any()
    assert out["valid"][1][:, : 3 * 8 - 12].all() and out["valid"][1][:, 3 * 14 + 12 :].all()
    assert out["valid"][0].all() and out["valid"][2].all()


def test_fuse_reads_the_stacks_in_bands(tmp_path, small_bands, monkeypatch):
    monkeypatch.setattr("multisr.reconstruction.fusion.BAND_SAMPLES", 4 * BAND * 50 * 3 * (os.cpu_count() or 1))
    rng = np.random.default_rng(4)
    frames = rng.random((4, 40, 50, 3)).astype(np.float32)
    mask = rng.random((4, 40, 50)) > 0.2
    hr, valid = Stack.create(tmp_path / "hr.npy", frames.shape), Stack.create(tmp_path / "v.npy", mask.shape, bool)
    hr[:], valid[:] = frames, mask
    small_bands.clear()
    fused = _fuse(hr=hr, valid=valid, method="median")["result"]
    assert max(small_bands) <= BAND
    assert np.array_equal(fused, masked_median(frames, mask), equal_nan=True)


def test_upscale_reads_only_its_band_and_the_kernel_reach(tmp_path, monkeypatch):
    """The LR frames are in memory; the check is on what each band upscales."""
    monkeypatch.setattr("multisr.runs.stages.band_rows", lambda width, frames=1, workers=1: SCALE * BAND)
    heights = []
    monkeypatch.setattr("multisr.runs.stages.upscale", lambda image, scale, **k: heights.append(len(image)) or
                        upscale(image, scale, **k))
    _upscale(frames=np.zeros((2, 50, 20), np.float32), scale=SCALE, kernel="matlab", workspace=tmp_path)
    assert max(heights) <= BAND + 2 * UPSCALE_MARGIN and len(heights) == 2 * -(-50 // BAND)

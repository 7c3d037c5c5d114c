"""The merge pipeline (multisr.reconstruction.merge): a burst accumulated onto the HR grid in one pass."""
import numpy as np
import pytest

from conftest import shared_data
from multisr.imaging.color import luma
from multisr.reconstruction.merge import kernel_covariances, merge, KERNEL_DEFAULTS
from multisr.research.simulate import simulate_camera_burst
from multisr.runs.engine import run_frames
from multisr.runs.pipeline import load_pipeline, with_overrides
from multisr.storage.io import read_image


def band_limited(x, y):
    """A smooth scene at any point (x, y in LR pixels; periods of 5.9 to 11 LR pixels)."""
    return (0.5 + 0.2 * np.sin(2 * np.pi * x / 7.3 + 0.4) * np.cos(2 * np.pi * y / 5.9)
            + 0.1 * np.sin(2 * np.pi * (x + 2 * y) / 11.0))


@pytest.mark.parametrize("scale", [2, 3])
def test_a_band_limited_scene_sampled_at_known_shifts_is_recovered(scale):
    """Frames that point-sample a smooth scene at sub-pixel shifts that put samples on every HR pixel
    centre: with narrow kernels (0.1 LR px; exact with 0.01) the merge is the scene on the HR grid
    within 0.01 RMS (measured 0.006; the scene spans 0.2-0.8), nearest-neighbour upscaling of one
    frame at least three times further off (0.06-0.07)."""
    height, width = 40, 48
    steps = [(k - (scale - 1) / 2) / scale for k in range(scale)]  # samples on HR pixel centres (at 2x: +-1/4)
    shifts = [(dx, dy) for dy in steps for dx in steps] * 2
    frames, matrices = [], []
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for dx, dy in shifts:
        frames.append(band_limited(xs + dx, ys + dy).astype(np.float32))  # frame pixel p: the reference's p + shift
        matrices.append(np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1]], float))  # reference LR -> frame k LR
    frames = np.stack(frames)
    merged = merge(frames, np.stack(matrices), np.ones(frames.shape, np.uint8), anchor=0, scale=scale,
                   kernel={"detail": 0.1, "denoise": 1.0})
    hy, hx = np.mgrid[0 : scale * height, 0 : scale * width].astype(np.float64)
    truth = band_limited((hx - (scale - 1) / 2) / scale, (hy - (scale - 1) / 2) / scale)  # HR = s LR + (s - 1) / 2
    inner = (slice(2 * scale, -2 * scale), slice(2 * scale, -2 * scale))
    error = np.sqrt(np.mean((merged - truth)[inner] ** 2))
    nearest = np.repeat(np.repeat(frames[0], scale, axis=0), scale, axis=1)
    assert error < 0.01, error
    assert np.sqrt(np.mean((nearest - truth)[inner] ** 2)) > 3 * error


def test_kernels_are_long_along_an_edge_and_round_in_flat_areas():
    image = np.zeros((40, 40), np.float32)
    image[:, 20:] = 0.8  # a vertical edge
    inverse = kernel_covariances(image, **KERNEL_DEFAULTS)
    a, b, c = inverse[20, 20]  # on the edge: narrow across (x), long along (y)
    assert a > 10 * c and abs(b) < 1e-3 * a
    a, b, c = inverse[20, 5]  # flat: round and wide
    assert a == pytest.approx(c) and a < inverse[20, 20, 2] * 10


@pytest.fixture(scope="module")
def camera_burst():
    image, _ = read_image(shared_data("eval", "Set5", "bird_GT.bmp"))
    return simulate_camera_burst(image, n=12, seed=3)


def region_psnr(image, truth, region):
    x, y, w, h = region
    error = luma(image)[y : y + h, x : x + w] - luma(truth)[y : y + h, x : x + w]
    return 10 * np.log10(1 / np.mean(error**2))


def test_a_moving_object_is_left_out_by_the_robustness_weight(camera_burst):
    """The camera protocol's object moves in every odd frame: merged with the robustness weight its
    region is at least 3 dB closer to the truth than merged without it (ghosts of the object)."""
    robust = run_frames(load_pipeline("merge"), camera_burst.frames).image
    plain = run_frames(with_overrides(load_pipeline("merge"), ["merge.robust=0"]), camera_burst.frames).image
    region = camera_burst.object_region
    assert region_psnr(robust, camera_burst.truth, region) > region_psnr(plain, camera_burst.truth, region) + 3.0


@pytest.mark.parametrize("colour", [True, False])
def test_the_merge_pipeline_runs_on_grey_and_colour_bursts(camera_burst, colour):
    frames = camera_burst.frames if colour else camera_burst.frames.mean(axis=3)
    result = run_frames(load_pipeline("merge"), frames)
    assert result.image.shape == (3 * frames.shape[1], 3 * frames.shape[2], *frames.shape[3:])
    assert np.isfinite(result.image).all() and result.image.min() >= 0 and result.image.max() <= 1
    assert [stage["name"] for stage in result.record["stages"]][-1] in ("merge", "restore")


def test_restoration_patches_of_merges_for_training_its_network(tmp_path):
    """`multisr train --task restore --pipeline merge` learns on merges as the pipeline makes them:
    sub-images of the merge (before restore) paired with the truth, closer to it than chance."""
    from PIL import Image

    from multisr.research.train import make_restoration_patches

    Image.open(shared_data("eval", "Set5", "head_GT.bmp")).save(tmp_path / "head.png")
    inputs, labels = make_restoration_patches(tmp_path, n=6, protocols=("sr",), pipeline="merge")
    assert inputs.shape == labels.shape and inputs.shape[1:] == (33, 33) and len(inputs) > 10
    error = np.sqrt(np.mean((inputs - labels) ** 2))
    assert 0 < error < 0.05, error  # the merge is the blurred scene: near the truth, not equal to it

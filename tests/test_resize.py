import numpy as np
import pytest

from conftest import shared_data
from multisr.errors import UserError
from multisr.storage.io import read_image
from multisr.imaging.resize import downscale, resize, upscale


@pytest.mark.parametrize("index", [1, 2, 3, 4, 5])
def test_downscale_matches_matlab_imresize(index):
    folder = shared_data("eval", "Set5_x3_matlab")
    hr, _ = read_image(folder / f"img_00{index}_SRF_3_HR.png")
    lr, _ = read_image(folder / f"img_00{index}_SRF_3_LR.png")
    # MATLAB resizes uint8 input in two rounded passes: emulated, it matches exactly.
    exact = downscale(hr, 3, like_uint8=True)
    assert np.abs(np.round(exact * 255) - np.round(lr * 255)).max() == 0
    # In floating point (the library's default) it stays within a grey level for almost all pixels.
    difference = np.abs(np.round(np.clip(downscale(hr, 3), 0, 1) * 255) - np.round(lr * 255))
    assert difference.max() <= 2
    assert np.mean(difference > 1) < 1e-3


@pytest.mark.parametrize("kernel", ["matlab", "opencv"])
def test_upscale_puts_pixel_centres_at_s_x_plus_offset(kernel):
    # LR pixel centre x lands on HR pixel 3x + 1, where an interpolating kernel returns the sample.
    x = np.arange(20, dtype=np.float32)
    ramp = np.tile(x / 40, (8, 1))
    up = upscale(ramp, 3, kernel=kernel)
    assert np.allclose(up[4, 3 * x[2:-2].astype(int) + 1], ramp[0, 2:-2], atol=1e-6)
    if kernel == "matlab":  # Keys a = -0.5 reproduces a linear ramp exactly (a = -0.75 does not)
        expected = ((np.arange(60) - 1) / 3) / 40  # HR pixel X sits at LR position (X - 1) / 3
        assert np.allclose(up[4, 6:-6], expected[6:-6], atol=1e-6)


def test_downscale_of_constant_is_constant_and_shape_rounds_up():
    image = np.full((10, 13, 3), 0.25, dtype=np.float32)
    out = downscale(image, 3)
    assert out.shape == (4, 5, 3)
    assert np.allclose(out, 0.25, atol=1e-6)


def test_unknown_kernel_is_refused():
    with pytest.raises(UserError, match="kernel: expected one of matlab, opencv, got 'lanczos'"):
        resize(np.zeros((4, 4), np.float32), (8, 8), kernel="lanczos")


@pytest.mark.parametrize("shape", [(7, 5), (30, 41, 3), (1, 9), (64, 48)])
def test_fast_integer_upscale_equals_the_matrix_resize(shape):
    image = np.random.default_rng(3).random(shape).astype(np.float32)
    for scale in (2, 3, 4):
        expected = resize(image, (shape[0] * scale, shape[1] * scale))
        assert np.allclose(upscale(image, scale), expected, atol=1e-6)

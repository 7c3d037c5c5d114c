import numpy as np

from multisr.imaging.color import grey_from_luma, luma, rgb_to_ycbcr, ycbcr_to_rgb
from multisr.storage.io import to_uint
from multisr.imaging.metrics import psnr, score_luma, ssim


def test_ycbcr_matches_matlab_on_white_black_and_red():
    colours = np.array([[[1, 1, 1], [0, 0, 0], [1, 0, 0]]], dtype=np.float32)
    ycbcr = rgb_to_ycbcr(colours) * 255
    # MATLAB rgb2ycbcr of double input: white (235, 128, 128), black (16, 128, 128), red (81.481, 90.203, 240).
    assert np.allclose(ycbcr[0, 0], [235, 128, 128], atol=1e-3)
    assert np.allclose(ycbcr[0, 1], [16, 128, 128], atol=1e-3)
    assert np.allclose(ycbcr[0, 2], [81.481, 90.203, 240.0], atol=1e-3)


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    assert np.abs(ycbcr_to_rgb(rgb_to_ycbcr(rgb)) - rgb).max() < 1e-5


def test_grey_luma_is_that_of_equal_rgb_and_inverts():
    grey = np.linspace(0, 1, 50, dtype=np.float32).reshape(5, 10)
    assert np.allclose(luma(grey), luma(np.repeat(grey[..., None], 3, axis=2)), atol=1e-6)
    assert np.abs(grey_from_luma(luma(grey)) - grey).max() < 1e-6


def test_psnr_of_known_error():
    a = np.zeros((10, 10))
    b = a.copy()
    b[0, :] = 10.0  # MSE = 10 rows of 100 pixels with error 10 -> 100 * 10 / 100 = 10
    assert abs(psnr(b, a) - 10 * np.log10(255**2 / 10)) < 1e-9
    assert psnr(a, a) == float("inf")


def test_shave_crops_the_border():
    a = np.zeros((10, 10))
    b = a.copy()
    b[0, :] = 50.0  # only the border differs
    assert psnr(b, a, shave=1) == float("inf")


def test_ssim_of_flat_images_is_the_luminance_term():
    # Flat images have no variance, so SSIM reduces to (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2.
    a, b, c1 = 100.0, 120.0, (0.01 * 255) ** 2
    assert abs(ssim(np.full((32, 32), a), np.full((32, 32), b)) - (2 * a * b + c1) / (a * a + b * b + c1)) < 1e-9
    y = np.random.default_rng(1).random((32, 32))
    assert abs(ssim(y * 255, y * 255) - 1) < 1e-12


def test_score_luma_quantizes_to_8_bits():
    y = np.full((16, 16), 100 / 255)
    assert score_luma(y + 0.4 / 255, y, shave=0)["psnr"] == float("inf")  # rounds to the same level
    assert abs(score_luma(y + 1 / 255, y, shave=0)["psnr"] - 10 * np.log10(255**2)) < 1e-9


def test_to_uint_rounds_clips_and_writes_unseen_pixels_as_black():
    image = np.array([[0.5 / 255, 1.5 / 255, -0.2], [1.3, np.nan, 254.4 / 255]], dtype=np.float32)
    assert to_uint(image, 8).tolist() == [[0, 2, 0], [255, 0, 254]]  # rint: half to even
    assert to_uint(image, 16)[1].tolist() == [65535, 0, 65381]

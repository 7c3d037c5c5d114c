import numpy as np
import pytest

from multisr.imaging.geometry import (
    rms_displacement,
    scale_matrix,
    similarity_matrix,
    similarity_parameters,
    to_high_resolution,
    to_low_resolution,
    warp,
)


def test_positive_angle_turns_x_towards_y():
    matrix = similarity_matrix(angle=90)
    assert np.allclose(matrix @ [1, 0, 1], [0, 1, 1], atol=1e-12)


def test_similarity_about_a_centre_keeps_the_centre():
    matrix = similarity_matrix(scale=1.1, angle=13, center=(5, 7))
    assert np.allclose(matrix @ [5, 7, 1], [5, 7, 1])
    params = similarity_parameters(matrix)
    assert abs(params["scale"] - 1.1) < 1e-12 and abs(params["angle"] - 13) < 1e-12


def test_high_resolution_matrix_follows_the_pixel_centre_convention():
    lr = similarity_matrix(angle=1.5, shift=(0.4, -0.7), center=(10, 8))
    hr = to_high_resolution(lr, 3)
    c = scale_matrix(3)
    for p in ([0, 0, 1], [12.5, 3.25, 1]):
        assert np.allclose(hr @ (c @ p), c @ (lr @ p))
    assert np.allclose(c @ [0, 0, 1], [1, 1, 1])  # LR centre 0 -> HR 3*0 + (3-1)/2


def test_low_resolution_undoes_high_resolution():
    stack = np.stack([similarity_matrix(angle=a, shift=(a, -a), center=(5, 4)) for a in (0.3, -1.2)])
    assert np.allclose(to_low_resolution(to_high_resolution(stack, 3), 3), stack)


def test_warp_by_whole_pixel_shift_moves_content_and_marks_outside_invalid():
    image = np.random.default_rng(0).random((12, 16)).astype(np.float32)
    shifted, valid = warp(image, similarity_matrix(shift=(3, 2)), image.shape)
    assert np.allclose(shifted[:-2, :-3], image[2:, 3:], atol=1e-6)
    assert valid[:-2, :-3].all() and not valid[-2:, :].any() and not valid[:, -3:].any()


def test_warp_and_inverse_warp_round_trip():
    ys, xs = np.mgrid[0:60, 0:80].astype(np.float32)
    image = (0.5 + 0.25 * np.sin(xs / 5) * np.cos(ys / 7)).astype(np.float32)  # smooth: bicubic is near exact
    matrix = similarity_matrix(angle=2.0, shift=(1.3, -0.6), center=(40, 30))
    forward, valid = warp(image, matrix, image.shape)
    back, back_valid = warp(forward, np.linalg.inv(matrix), image.shape)
    inside = back_valid & warp(valid.astype(np.float32), np.linalg.inv(matrix), image.shape)[0].astype(bool)
    inside[:3], inside[-3:], inside[:, :3], inside[:, -3:] = False, False, False, False
    assert inside.mean() > 0.8
    assert np.abs(back - image)[inside].max() < 2e-3


def test_warp_keeps_colour_channels():
    image = np.random.default_rng(1).random((10, 12, 3)).astype(np.float32)
    out, valid = warp(image, np.eye(3), (10, 12))
    assert out.shape == (10, 12, 3) and valid.all()
    assert np.allclose(out, image, atol=1e-6)


def test_rms_displacement_of_pure_shift():
    assert rms_displacement(similarity_matrix(shift=(0.3, 0.4)), np.eye(3), (5, 7)) == pytest.approx(0.5)

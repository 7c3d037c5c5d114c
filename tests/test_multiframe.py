"""Many frames beating one: sub-pixel registration, outliers left out, reconstruction on the HR grid."""
import json

import cv2
import numpy as np

from multisr.bench import plant_outliers, registration_errors
from multisr.color import luma
from multisr.geometry import similarity_matrix
from multisr.metrics import score_image, score_luma
from multisr.pipeline import load_pipeline
from multisr.reconstruct import downscale_matrix, reconstruct
from multisr.registration import register_burst
from multisr.resize import downscale, upscale
from multisr.runner import run_pipeline
from multisr.io import read_image
from multisr.scenes import licence_plate
from multisr.simulate import save_burst

# Issue 6's registration target (RMS over frames, LR pixels); measured about 0.035 on this plate_burst.
RMS_TARGET_PX = 0.05
# Angle error of registration alone (FM + ECC) on these 80x40-pixel frames measured about 0.04 degrees;
# the solve refines it further (test_the_solve_corrects_a_misregistration).
ANGLE_TOLERANCE_DEG = 0.08
# multiframe measured 3.6 dB above presenters on this 8-frame plate_burst.
MARGIN_OVER_PRESENTERS_DB = 2.0


def test_registration_is_sub_pixel(plate_burst):
    matrices = np.stack([r.matrix for r in register_burst(plate_burst.frames)])
    errors = registration_errors(matrices[1:], plate_burst.matrices[1:], plate_burst.frames.shape[1:3])
    assert errors["rms_px"] <= RMS_TARGET_PX and errors["rms_deg"] <= ANGLE_TOLERANCE_DEG, errors


def test_another_scene_and_a_blurred_frame_are_left_out(plate_burst):
    frames = plate_burst.frames.copy()
    planted = plant_outliers(frames, 2, licence_plate("ZK 2071", width=300, height=170, seed=5))
    results = register_burst(frames)
    left_out = [k for k, r in enumerate(results) if r.excluded]
    assert left_out == planted, [(k, r.excluded) for k, r in enumerate(results)]


def test_a_mildly_blurred_frame_is_left_out_for_its_blur(plate_burst):
    frames = plate_burst.frames.copy()
    frames[3] = cv2.GaussianBlur(frames[3], (0, 0), 1.0)  # registers fine, but carries no detail
    results = register_burst(frames)
    assert results[3].excluded is not None and "blurred" in results[3].excluded, results[3]
    assert [k for k, r in enumerate(results) if r.excluded] == [3]


def test_reconstruction_with_true_motion_recovers_detail(plate_burst):
    y = np.stack([luma(frame) for frame in plate_burst.frames])
    solved, _ = reconstruct(y, plate_burst.matrices, iterations=100, motion_learning_rate=0)
    bicubic = score_luma(upscale(y[0], 3), luma(plate_burst.truth), shave=3)["psnr"]
    assert score_luma(solved, luma(plate_burst.truth), shave=3)["psnr"] > bicubic + 3.0


def test_the_solve_corrects_a_misregistration(plate_burst):
    """Every frame but the reference given a 0.1 px shift and a 0.05 degree turn of error (about
    twice what ECC leaves); the solve's motion refinement must bring it within a fifth of the
    issue's targets (measured: 0.102 px / 0.05 deg -> 0.002 px / 0.003 deg)."""
    y = np.stack([luma(frame) for frame in plate_burst.frames])
    height, width = y.shape[1:]
    rng = np.random.default_rng(4)
    wrong = plate_burst.matrices.copy()
    for k in range(1, len(wrong)):
        direction = rng.uniform(0, 2 * np.pi)
        error = similarity_matrix(angle=rng.choice([-0.05, 0.05]), shift=(0.1 * np.cos(direction), 0.1 * np.sin(direction)),
                                  center=((width - 1) / 2, (height - 1) / 2))
        wrong[k] = wrong[k] @ error
    before = registration_errors(wrong[1:], plate_burst.matrices[1:], (height, width))
    _, refined = reconstruct(y, wrong)
    after = registration_errors(refined[1:], plate_burst.matrices[1:], (height, width))
    assert np.allclose(refined[0], plate_burst.matrices[0])  # the reference frame fixes the coordinates
    assert after["rms_px"] <= RMS_TARGET_PX / 5 and after["rms_deg"] <= 0.02 / 5, (before, after)


def test_multiframe_beats_presenters(plate_burst, tmp_path):
    save_burst(plate_burst, tmp_path / "plate_burst")
    scores = {}
    for name in ("presenters", "multiframe"):
        run_pipeline(load_pipeline(name), tmp_path / "plate_burst", out_dir=tmp_path / name, n=8, use_cache=False)
        scores[name] = score_image(read_image(tmp_path / name / "result.png")[0], plate_burst.truth, shave=3)["psnr"]
    assert scores["multiframe"] >= scores["presenters"] + MARGIN_OVER_PRESENTERS_DB, scores
    # the matrices multiframe reports (refined in the solve) meet both of the targets
    # (measured 0.002 px / 0.002 deg here; the register stage alone: 0.034 px / 0.042 deg)
    matrices = np.array(json.loads((tmp_path / "multiframe" / "transforms.json").read_text())["matrices"])
    errors = registration_errors(matrices[1:], plate_burst.matrices[1:], plate_burst.frames.shape[1:3])
    assert errors["rms_px"] <= RMS_TARGET_PX and errors["rms_deg"] <= 0.02, errors


def test_downscale_matrices_match_the_resize_and_the_box_average():
    image = np.random.default_rng(2).random((30, 12)).astype(np.float32)
    matlab = downscale_matrix(30, 3) @ image @ downscale_matrix(12, 3).T
    assert np.allclose(matlab, downscale(image, 3), atol=1e-5)
    box = downscale_matrix(30, 3, "box") @ image @ downscale_matrix(12, 3, "box").T
    assert np.allclose(box, image.reshape(10, 3, 4, 3).mean(axis=(1, 3)), atol=1e-6)

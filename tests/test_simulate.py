"""The camera protocol's simulator writes what truth.json says."""
import json

import cv2
import numpy as np

from multisr.imaging.color import luma
from multisr.imaging.geometry import to_high_resolution, warp
from multisr.storage.io import read_image
from multisr.research.scenes import licence_plate
from multisr.research.simulate import save_burst, simulate_camera_burst


def test_camera_truth_json_describes_the_frames(tmp_path):
    scene = licence_plate(width=360, height=210)
    burst = simulate_camera_burst(scene, n=6, seed=3, blur=(0.3, 0.3), jpeg_quality=100)
    names = save_burst(burst, tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["protocol"] == "camera" and truth["frames"] == names
    assert np.allclose(np.array(truth["matrices"]), burst.matrices)
    assert np.allclose(truth["matrices"][0], np.eye(3))
    drawn = truth["settings"]["drawn"]
    assert drawn["blur_sigma_lr"] == 0.3 and abs(drawn["zoom_drift"]) <= 0.03
    assert truth["object_region"] == list(burst.object_region)
    x, y, w, h = drawn["object_rect"]
    rx, ry, rw, rh = truth["object_region"]
    assert rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh  # the region holds frame 0's object
    high, _ = read_image(tmp_path / "truth.png")
    height, width = burst.frames.shape[1:3]
    assert high.shape[:2] == (3 * height, 3 * width)

    def predicted(k):
        """Frame k as the protocol says: the truth moved by its matrix, blurred, 3x3-averaged (no noise)."""
        moved, valid = warp(luma(high), np.linalg.inv(to_high_resolution(burst.matrices[k], 3)), high.shape[:2])
        blurred = cv2.GaussianBlur(moved, (0, 0), 0.9, borderType=cv2.BORDER_REPLICATE)
        return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_AREA), valid[1::3, 1::3]

    # frame 0 (and every even frame, where the object stays) match within noise outside a 3-pixel border;
    # the object's frames differ inside its region only
    for k in (0, 2, 1):
        frame, valid = luma(read_image(tmp_path / names[k])[0]), None
        expected, valid = predicted(k)
        inner = np.zeros_like(valid)
        inner[3:-3, 3:-3] = True
        outside_object = np.ones_like(valid)
        outside_object[(ry - 9) // 3 : (ry + rh + 9) // 3 + 1, (rx - 9) // 3 : (rx + rw + 9) // 3 + 1] = False
        error = np.abs(frame - expected)[valid & inner & outside_object]
        assert np.sqrt(np.mean(error**2)) < 6 / 255, k
        if k % 2:
            inside = np.abs(frame - expected)[valid & inner & ~outside_object]
            assert np.sqrt(np.mean(inside**2)) > 10 / 255  # the object moved away from where frame 0 has it


def test_a_mosaic_burst_is_written_as_dng_files_libraw_reads_back(tmp_path):
    """``multisr simulate --protocol camera --mosaic bggr``: DNG frames whose mosaic, developed
    without noise or blur as multisr develops, is the truth's colours at the frame's pixels."""
    from conftest import assert_one_line_error, invoke
    from multisr.imaging.develop import srgb_decode
    from multisr.research.camera import RAW_CAMERA, camera_from_srgb
    from multisr.storage.raw import read_raw

    scene = licence_plate(width=360, height=210)
    cv2.imwrite(str(tmp_path / "scene.png"), np.round(scene[..., ::-1] * 255).astype(np.uint8))
    result = invoke("simulate", tmp_path / "scene.png", "--protocol", "camera", "--mosaic", "bggr", "--n", 3,
                    "--out", tmp_path / "burst")
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "burst" / "truth.json").read_text())
    assert truth["frames"] == ["frame_000.dng", "frame_001.dng", "frame_002.dng"]
    assert truth["settings"]["mosaic"]["pattern"] == "bggr" and truth["settings"]["jpeg_quality"] is None
    frame = read_raw(tmp_path / "burst" / "frame_000.dng")
    assert frame.info["pattern"] == "BGGR" and frame.info["white_level"] == RAW_CAMERA["white"]
    high, _ = read_image(tmp_path / "burst" / "truth.png")
    assert high.shape[:2] == (3 * frame.mosaic.shape[0], 3 * frame.mosaic.shape[1])
    # the mosaic of frame 0 (no motion) against the truth 3x3-averaged in the camera's linear RGB:
    # they differ by the optical blur and the noise only (a few percent), not by colour or level
    linear = srgb_decode(high) @ camera_from_srgb(RAW_CAMERA["xyz_to_camera"]).T
    sampled = cv2.resize(linear.astype(np.float32), frame.mosaic.shape[::-1], interpolation=cv2.INTER_AREA)
    expected = np.take_along_axis(sampled, frame.colours[..., None].astype(int), axis=2)[..., 0]
    assert abs(float(np.median(frame.mosaic - expected))) < 0.01
    assert float(np.median(np.abs(frame.mosaic - expected))) < 0.05
    assert_one_line_error(invoke("simulate", tmp_path / "scene.png", "--mosaic", "rggb", "--out", tmp_path / "sr"),
                          "mosaic", "--protocol camera")

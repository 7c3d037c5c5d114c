"""``multisr bench quality --protocol target``: every pipeline on bursts of a target crossing the
picture (:func:`multisr.research.moving_target.simulate_target_burst`), without a box and with the
target's box (``--roi``), scored inside the target and on the background.
"""
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging.color import luma
from ..imaging.geometry import rms_displacement, similarity_matrix
from ..params import SCALE
from ..progress import progress_bar
from ..runs.engine import run_frames
from ..runs.pipeline import load_pipeline
from ..storage.folders import list_images
from ..storage.io import read_image, to_uint
from .moving_target import simulate_target_burst

__all__ = ["ONE_FRAME", "psnr_where", "target_benchmark"]

ONE_FRAME = ("bicubic", "single")  # pipelines whose result with a box is the crop of their result without
SHAVE = 3  # HR pixels off the frame's border, as the other protocols score


def _y8(image: np.ndarray) -> np.ndarray:
    return to_uint(luma(np.clip(image, 0, 1)), 8).astype(np.float64)


def psnr_where(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of the 8-bit Y of ``result`` against ``truth``'s over ``mask``'s pixels."""
    error = np.mean((_y8(result)[mask] - _y8(truth)[mask]) ** 2)
    return float(10 * np.log10(255.0**2 / max(error, 1e-10)))


def target_registration_error(estimated: np.ndarray, truth: np.ndarray, box) -> float:
    """RMS over frames of the RMS displacement error over the box's pixels (LR pixels) of the
    target's matrices (reference pixels -> frame k's)."""
    x, y, w, h = box
    to_box = similarity_matrix(shift=(x, y))
    errors = [rms_displacement(e @ to_box, t @ to_box, (h, w)) for e, t in zip(estimated, truth)]
    return float(np.sqrt(np.mean(np.square(errors))))


def target_benchmark(data_dir: Path, *, pipelines: list[str], n: int, seed: int, device: str = "auto",
                     scale: int = SCALE) -> dict:
    """A target burst per image of ``data_dir`` (the target; the folder's next image is the
    background; seed ``seed + index``) through every pipeline, with reference frame 0: without a
    box, scored inside the target's box (``target_psnr``) and on the rest of the frame
    (``background_psnr``); with the box (``"<name>+roi"``, for the pipelines that register),
    ``target_psnr`` and the target's registration error (``registration_px``, RMS over the box's
    pixels and the frames kept). PSNR of the 8-bit Y against frame 0's truth, in dB; bursts and
    pipelines at ``scale``."""
    loaded = [load_pipeline(name) for name in pipelines]
    files = list_images(Path(data_dir))
    if len(files) < 2:
        raise UserError(f"{data_dir}: expected at least 2 images (targets, and backgrounds for each other), "
                        f"found {len(files)}")
    rows = {}
    for index, path in enumerate(progress_bar(files, desc="bench target", unit="image", leave=False)):
        burst = simulate_target_burst(read_image(path)[0], read_image(files[(index + 1) % len(files)])[0], n=n,
                                      seed=seed + index, scale=scale)
        box = tuple(burst.settings["target_box"])
        x, y, w, h = box
        inside = (slice(scale * y, scale * (y + h)), slice(scale * x, scale * (x + w)))
        background = np.zeros(burst.truth.shape[:2], bool)
        background[SHAVE:-SHAVE, SHAVE:-SHAVE] = True
        background[inside] = False
        true_matrices = np.array(burst.settings["target_matrices"])
        frames = to_uint(burst.frames, 8).astype(np.float32) / 255.0
        names = [f"frame_{k:03d}" for k in range(n)]
        subsampling = burst.settings["chroma_subsampling"]  # the protocol's JPEG chroma
        row = {"target_box": list(box)}
        for pipeline in loaded:
            try:
                whole = run_frames(pipeline, frames, names=names, reference=0, device=device,
                                   chroma_subsampling=subsampling, scale=scale).image
                row[pipeline.name] = {"target_psnr": psnr_where(whole[inside], burst.truth[inside],
                                                                 np.ones((scale * h, scale * w), bool)),
                                      "background_psnr": psnr_where(whole, burst.truth, background)}
                if pipeline.name in ONE_FRAME:
                    continue
                boxed = run_frames(pipeline, frames, names=names, reference=0, device=device, roi=",".join(map(str, box)),
                                   chroma_subsampling=subsampling, scale=scale)
                kept = [names.index(name) for name in boxed.record["target"]["frames"]]
                row[f"{pipeline.name}+roi"] = {
                    "target_psnr": psnr_where(boxed.image, burst.truth[inside], np.ones((scale * h, scale * w), bool)),
                    "registration_px": target_registration_error(boxed.matrices, true_matrices[kept], box),
                    "left_out": [e["frame"] for e in boxed.record["excluded"]]}
            except UserError as error:
                row[pipeline.name] = {"error": str(error)}
        rows[path.stem] = row
    columns = [c for c in dict.fromkeys(k for r in rows.values() for k in r if k != "target_box")]
    scored = [r for r in rows.values() if all(c in r and "error" not in r[c] for c in columns)]
    if not scored:
        raise UserError(f"{data_dir}: no image gave a result with every pipeline; see the errors with --json")
    mean = {c: {key: float(np.mean([r[c][key] for r in scored])) for key in scored[0][c] if key != "left_out"}
            for c in columns}
    return {"images": rows, "mean": mean, "images_in_mean": len(scored),
            "settings": {"protocol": "target", "n": n, "seed": seed, "scale": scale}}

"""Benchmarks: pipelines scored against a known truth on simulated bursts."""
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .geometry import rms_displacement, similarity_parameters
from .io import list_images, read_image
from .metrics import score_image
from .pipeline import load_pipeline
from .resize import resize
from .runner import run_pipeline
from .simulate import save_burst, simulate_burst

__all__ = ["quality_benchmark", "registration_errors", "plant_outliers"]


def registration_errors(estimated: np.ndarray, truth: np.ndarray, shape: tuple[int, int]) -> dict:
    """RMS over frames of the displacement error (LR pixels) and of the angle error (degrees)."""
    displacement = [rms_displacement(e, t, shape) for e, t in zip(estimated, truth)]
    angle = [similarity_parameters(e)["angle"] - similarity_parameters(t)["angle"] for e, t in zip(estimated, truth)]
    return {"rms_px": float(np.sqrt(np.mean(np.square(displacement)))),
            "rms_deg": float(np.sqrt(np.mean(np.square(angle))))}


def plant_outliers(frames: np.ndarray, count: int, unrelated: np.ndarray) -> list[int]:
    """Replace ``count`` evenly spaced frames (never frame 0), in place, alternately by
    ``unrelated`` (another scene, resized to the frame) and by the frame blurred with a Gaussian
    of sigma 2 LR pixels. Returns the indices replaced."""
    indices = [int(i) for i in np.linspace(0, len(frames), count + 2)[1:-1].round()]
    for number, k in enumerate(indices):
        if number % 2 == 0:
            other = resize(unrelated, frames.shape[1:3])
            frames[k] = other if frames.ndim == unrelated.ndim + 1 else np.repeat(other[..., None], 3, axis=2)
        else:
            frames[k] = cv2.GaussianBlur(frames[k], (0, 0), 2.0)
        frames[k] = np.round(np.clip(frames[k], 0, 1) * 255) / 255
    return indices


def quality_benchmark(data_dir: Path, *, pipelines: list[str], n: int = 20, seed: int = 0, noise: float = 2 / 255,
                      outliers: int = 0, device: str = "auto", workdir: Path | None = None) -> dict:
    """Simulate one burst per image of ``data_dir`` (seed ``seed + index``) and score every pipeline.

    With ``outliers``, that many frames of each burst are replaced (:func:`plant_outliers`; the
    unrelated scene is the folder's next image) and each row records ``planted`` and, per
    registering pipeline, the frames ``left_out``.

    Returns ``{"images": {name: {pipeline: {"psnr", "ssim"[, "registration", "left_out"]}}},
    "mean": {...}}``; PSNR/SSIM by the DESIGN.md protocol (Y, 8-bit, 3-pixel border) against
    frame 0's truth.
    """
    loaded = [load_pipeline(name) for name in pipelines]
    rows = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        files = list_images(Path(data_dir))
        for index, path in enumerate(tqdm(files, desc="bench quality", unit="image", leave=False)):
            image, _ = read_image(path)
            burst = simulate_burst(image, n=n, seed=seed + index, noise=noise)
            row = {}
            if outliers:
                unrelated, _ = read_image(files[(index + 1) % len(files)])
                row["planted"] = plant_outliers(burst.frames, outliers, unrelated)
            burst_dir = Path(tmp) / path.stem
            save_burst(burst, burst_dir)
            for pipeline in loaded:
                out = Path(tmp) / f"{path.stem}-{pipeline.name}"
                run_pipeline(pipeline, burst_dir, out_dir=out, n=n, use_cache=False, device=device)
                result, _ = read_image(out / "result.png")
                row[pipeline.name] = score_image(result, burst.truth, shave=burst.scale)
                if (out / "transforms.json").exists():
                    record = json.loads((out / "run.json").read_text())
                    left_out = [int(e["frame"][6:9]) for e in record["excluded"]]
                    kept = [k for k in range(1, n) if k not in left_out]
                    estimated = np.array(json.loads((out / "transforms.json").read_text())["matrices"])
                    row[pipeline.name]["registration"] = registration_errors(estimated[kept], burst.matrices[kept],
                                                                             burst.frames.shape[1:3])
                    row[pipeline.name]["left_out"] = left_out
            rows[path.stem] = row
    mean = {p.name: {k: float(np.mean([r[p.name][k] for r in rows.values()])) for k in ("psnr", "ssim")}
            for p in loaded}
    return {"images": rows, "mean": mean,
            "settings": {"n": n, "seed": seed, "noise": noise, "outliers": outliers, "scale": 3}}

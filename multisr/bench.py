"""Benchmarks: pipelines scored against a known truth on simulated bursts."""
import json
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .geometry import rms_displacement, similarity_parameters
from .io import list_images, read_image
from .metrics import score_image
from .pipeline import load_pipeline
from .runner import run_pipeline
from .simulate import save_burst, simulate_burst

__all__ = ["quality_benchmark", "registration_errors"]


def registration_errors(estimated: np.ndarray, truth: np.ndarray, shape: tuple[int, int]) -> dict:
    """RMS over frames of the displacement error (LR pixels) and of the angle error (degrees)."""
    displacement = [rms_displacement(e, t, shape) for e, t in zip(estimated, truth)]
    angle = [similarity_parameters(e)["angle"] - similarity_parameters(t)["angle"] for e, t in zip(estimated, truth)]
    return {"rms_px": float(np.sqrt(np.mean(np.square(displacement)))),
            "rms_deg": float(np.sqrt(np.mean(np.square(angle))))}


def quality_benchmark(data_dir: Path, *, pipelines: list[str], n: int = 20, seed: int = 0, noise: float = 2 / 255,
                      device: str = "auto", workdir: Path | None = None) -> dict:
    """Simulate one burst per image of ``data_dir`` (seed ``seed + index``) and score every pipeline.

    Returns ``{"images": {name: {pipeline: {"psnr", "ssim"[, "registration"]}}}, "mean": {...}}``;
    PSNR/SSIM by the DESIGN.md protocol (Y, 8-bit, 3-pixel border) against frame 0's truth.
    """
    loaded = [load_pipeline(name) for name in pipelines]
    rows = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        files = list_images(Path(data_dir))
        for index, path in enumerate(tqdm(files, desc="bench quality", unit="image", leave=False)):
            image, _ = read_image(path)
            burst = simulate_burst(image, n=n, seed=seed + index, noise=noise)
            burst_dir = Path(tmp) / path.stem
            save_burst(burst, burst_dir)
            row = {}
            for pipeline in loaded:
                out = Path(tmp) / f"{path.stem}-{pipeline.name}"
                run_pipeline(pipeline, burst_dir, out_dir=out, n=n, use_cache=False, device=device)
                result, _ = read_image(out / "result.png")
                row[pipeline.name] = score_image(result, burst.truth, shave=burst.scale)
                if (out / "transforms.json").exists():
                    estimated = np.array(json.loads((out / "transforms.json").read_text())["matrices"])
                    row[pipeline.name]["registration"] = registration_errors(estimated[1:], burst.matrices[1:],
                                                                             burst.frames.shape[1:3])
            rows[path.stem] = row
    mean = {p.name: {k: float(np.mean([r[p.name][k] for r in rows.values()])) for k in ("psnr", "ssim")}
            for p in loaded}
    return {"images": rows, "mean": mean, "settings": {"n": n, "seed": seed, "noise": noise, "scale": 3}}

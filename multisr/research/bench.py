"""Benchmarks on simulated bursts: quality against a known truth, and speed and memory."""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..imaging.color import luma
from ..imaging.geometry import rms_displacement, similarity_parameters
from ..imaging.metrics import score_image, score_luma
from ..imaging.resize import resize
from ..params import ALL_FRAMES, DEFAULT_FRAMES, SCALE
from ..progress import progress_bar
from ..runs.engine import Result, run_frames
from ..runs.pipeline import load_pipeline
from ..runs.runner import run_pipeline
from ..storage.folders import list_images
from ..storage.io import read_image, to_uint
from .scenes import licence_plate
from .simulate import save_burst, simulate, simulate_burst

__all__ = ["quality_benchmark", "registration_errors", "plant_outliers", "matmul_flop_rate", "network_flop_rate",
           "speed_benchmark"]


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


def _region_psnr(result: np.ndarray, truth: np.ndarray, region) -> float:
    """PSNR (dB) of the 8-bit Y of ``result`` against ``truth`` inside ``region = (x, y, width, height)``."""
    x, y, width, height = region
    inside = (slice(y, y + height), slice(x, x + width))
    return score_luma(luma(result)[inside], luma(truth)[inside], shave=0)["psnr"]


def _as_8_bit(images: np.ndarray) -> np.ndarray:
    """``images`` rounded to 8 bits (float32 in [0, 1]), as writing and reading a PNG leaves them."""
    return to_uint(images, 8).astype(np.float32) / 255.0


def quality_benchmark(data_dir: Path, *, pipelines: list[str], n: int = DEFAULT_FRAMES, seed: int = 0, noise: float = 2 / 255,
                      outliers: int = 0, protocol: str = "sr", mosaic: str | None = None, subsampling: str = "4:2:0",
                      file_format: str = "jpg", device: str = "auto", scale: int = SCALE) -> dict:
    """Simulate one burst per image of ``data_dir`` (seed ``seed + index``, ``protocol`` ``"sr"`` with
    Gaussian ``noise`` or ``"camera"``) and score every pipeline; ``"target"`` is
    :func:`multisr.research.bench_target.target_benchmark`'s. Bursts and pipelines at ``scale``.

    With ``mosaic`` (a Bayer pattern; the camera protocol, colour images), each burst is a RAW
    camera's, written as DNG files to a temporary folder and run from there as ``multisr run``
    runs a folder: LibRaw develops the frames, and the pipelines that reconstruct may demosaic
    from the mosaics (``reconstruct.demosaic``).

    The camera protocol's frames are JPEG-coded with chroma stored ``subsampling``; with
    ``file_format="jpg"`` the pipelines are told it, as a JPEG file's header tells them, with
    ``"png"`` not (frames exported as PNG files: the pixels must tell).

    With ``outliers``, that many frames of each burst are replaced (:func:`plant_outliers`; the
    unrelated scene is the folder's next image) and each row records ``planted`` and, per
    registering pipeline, the frames ``left_out``.

    Returns ``{"images": {name: {pipeline: {"psnr", "ssim"[, "registration", "left_out"]}}},
    "mean": {...}}``; PSNR/SSIM by the DESIGN.md protocol (Y, 8-bit, 3-pixel border) against
    frame 0's truth; on camera bursts also ``"object_psnr"``, inside the moving object's region.
    A pipeline that fails on an image (say, no frame registers) gets
    ``{"error": message}`` there, and the means cover only the images every pipeline scored.
    """
    if protocol == "target":
        from .bench_target import target_benchmark

        return target_benchmark(data_dir, pipelines=pipelines, n=n, seed=seed, device=device, scale=scale)
    if mosaic and (protocol != "camera" or outliers):
        raise UserError(f"mosaic: expected the camera protocol without outliers, got protocol {protocol!r} and "
                        f"{outliers} outliers")
    loaded = [load_pipeline(name) for name in pipelines]
    rows = {}
    files = list_images(Path(data_dir))
    for index, path in enumerate(progress_bar(files, desc="bench quality", unit="image", leave=False)):
        image, _ = read_image(path)
        options = ({"noise": noise} if protocol == "sr" else {"mosaic": mosaic} if mosaic else
                   {"subsampling": subsampling})
        burst = simulate(image, protocol=protocol, n=n, seed=seed + index, scale=scale, **options)
        row = {}
        if outliers:
            unrelated, _ = read_image(files[(index + 1) % len(files)])
            row["planted"] = plant_outliers(burst.frames, outliers, unrelated)
        names = [f"frame_{k:03d}" for k in range(n)]
        with tempfile.TemporaryDirectory(prefix="multisr-bench-") as scratch:  # a mosaic burst's files and runs
            run_one = (_folder_runner(burst, Path(scratch), device) if mosaic else
                       _memory_runner(burst, names, device, told=file_format == "jpg"))
            for pipeline in loaded:
                _score(pipeline, run_one, burst, names, row)
        rows[path.stem] = row
    scored = [r for r in rows.values() if all("error" not in r[p.name] for p in loaded)]
    if not scored:
        raise UserError(f"{data_dir}: no image gave a result with every pipeline; see the errors with --json")
    keys = ("psnr", "ssim", "object_psnr", "rgb_psnr", "ciede2000")  # those every scored image has
    mean = {p.name: {k: float(np.mean([r[p.name][k] for r in scored])) for k in keys
                     if all(k in r[p.name] for r in scored)} for p in loaded}
    return {"images": rows, "mean": mean, "images_in_mean": len(scored),
            "settings": {"protocol": protocol, "n": n, "seed": seed, "noise": noise if protocol == "sr" else None,
                         "outliers": outliers, "mosaic": mosaic, "scale": scale,
                         **({"subsampling": subsampling, "format": file_format}
                            if protocol == "camera" and not mosaic else {})}}


def _score(pipeline, run_one, burst, names: list[str], row: dict) -> None:
    """``row[pipeline.name]``: the pipeline's scores on ``burst`` (run by ``run_one``) against frame
    0's truth, its registration errors and the frames it left out; or the one-line error of a run
    that failed (say, no frame registers on a tiny image): recorded, and the benchmark goes on."""
    try:
        run = run_one(pipeline)
    except UserError as error:
        row[pipeline.name] = {"error": str(error)}
        return
    result = _as_8_bit(run.image)  # as result.png holds it
    row[pipeline.name] = score_image(result, burst.truth, shave=burst.scale)
    if burst.object_region is not None:
        row[pipeline.name]["object_psnr"] = _region_psnr(result, burst.truth, burst.object_region)
    if run.matrices is not None:
        left_out = [names.index(Path(e["frame"]).stem) for e in run.record["excluded"]]  # a file's name: its stem
        kept = [k for k in range(1, len(names)) if k not in left_out]
        row[pipeline.name]["registration"] = registration_errors(run.matrices[kept], burst.matrices[kept],
                                                                 burst.frames.shape[1:3])
        row[pipeline.name]["left_out"] = left_out


def _memory_runner(burst, names: list[str], device: str, *, told: bool = True):
    """A pipeline -> its :class:`multisr.runs.engine.Result` on ``burst``'s frames, in memory, 8-bit as
    a camera (and ``multisr simulate``) writes them, with their JPEG's chroma subsampling where
    ``told`` (as a JPEG file's header tells it; not as a PNG export)."""
    frames = _as_8_bit(burst.frames)
    subsampling = burst.settings.get("chroma_subsampling") if told else None  # the camera protocol's JPEG chroma
    return lambda pipeline: run_frames(pipeline, frames, names=names, reference=0, device=device,
                                       chroma_subsampling=subsampling, scale=burst.scale)


def _folder_runner(burst, scratch: Path, device: str):
    """A pipeline -> its :class:`multisr.runs.engine.Result` on ``burst`` written into ``scratch``
    (:func:`multisr.research.simulate.save_burst`: a mosaic burst's DNG files) and run from there
    as ``multisr run`` runs a folder (its stages cached in ``scratch`` for the pipelines that follow)."""
    save_burst(burst, scratch / "burst")

    def run(pipeline) -> Result:
        out = scratch / pipeline.name
        record = run_pipeline(pipeline, scratch / "burst", out_dir=out, n=ALL_FRAMES, reference=0,
                              cache_dir=scratch / "cache", device=device, scale=burst.scale)
        transforms = out / "transforms.json"  # written by the pipelines that register
        matrices = np.asarray(json.loads(transforms.read_text())["matrices"]) if transforms.exists() else None
        return Result(read_image(out / "result.png")[0], record, matrices)

    return run


def _network_flops_per_pixel(model) -> int:
    """Floating-point operations (2 per multiply-add) of one output pixel of an SRCNN."""
    config = model.config
    macs = config["f1"] ** 2 * config["n1"] + config["f2"] ** 2 * config["n1"] * config["n2"] + config["f3"] ** 2 * config["n2"]
    return 2 * macs


def matmul_flop_rate(device: str = "cpu", repeats: int = 5) -> float:
    """Dense matrix-multiply rate of ``device`` in FLOP/s (best of ``repeats``), in the precision
    the SR network runs in there: float32 2048x2048 on the CPU, float16 8192x8192 on CUDA."""
    import torch

    size, dtype = (8192, torch.float16) if device == "cuda" else (2048, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        tick = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - tick)
    return 2 * size**3 / best


def network_flop_rate(device: str = "cpu", *, size: tuple[int, int] = (1440, 1920), repeats: int = 3) -> float:
    """The shipped SRCNN's own rate in FLOP/s on one ``size`` Y frame (best of ``repeats`` after a
    warm-up), through :func:`super_resolve_luma` as the srcnn stage calls it: the network's
    efficiency without the stage's model loading, device start-up and colour conversion."""
    import torch

    from ..sr.inference import super_resolve_luma
    from ..sr.weights import load_model

    model = load_model(device=device)
    y = np.random.default_rng(0).random(size).astype(np.float32)
    best = float("inf")
    for _ in range(repeats + 1):
        tick = time.perf_counter()
        super_resolve_luma(y, model)  # returns numpy: the device has finished
        best = min(best, time.perf_counter() - tick)
    if device == "cuda":
        torch.cuda.empty_cache()
    return _network_flops_per_pixel(model) * size[0] * size[1] / best


def _speed_burst(width: int, height: int, n: int, folder: Path, scale: int = SCALE) -> None:
    """A burst of ``n`` frames of exactly ``width`` x ``height`` (LR) of the licence-plate scene, at ``scale``."""
    scene = licence_plate(width=scale * width + 80, height=scale * height + 80)
    burst = simulate_burst(scene, n=n, seed=0, scale=scale)
    burst.frames = burst.frames[:, :height, :width]
    burst.truth = burst.truth[: scale * height, : scale * width]
    save_burst(burst, folder)


def speed_benchmark(*, sizes: list[tuple[int, int]], pipelines: list[str], n: int = DEFAULT_FRAMES, device: str = "auto",
                    workdir: Path | None = None, scale: int = SCALE) -> dict:
    """Time every pipeline on simulated ``n``-frame bursts of each LR ``(width, height)`` at ``scale``.

    Each run is a separate process (``multisr run --no-cache``), so its peak resident memory is
    its own (at least this process's size when it started it, about 0.4 GB: Linux counts the
    parent's pages at fork; the bursts are simulated in another child for that reason). Returns, per size and pipeline, the per-stage wall times (s), the total, the peak
    memory (MiB) and, for the SRCNN stage, its effective FLOP rate (network FLOPs over the
    stage's wall time); a run that fails (out of memory, say) gets ``error`` and its peak
    instead. Plus, measured in this process, the device's dense matmul FLOP rate and the
    network's own rate (:func:`network_flop_rate`) on one HR frame of the largest size (at most
    1920x1440).
    """
    from ..sr.device import resolve_device
    from ..sr.weights import load_model

    torch_device = str(resolve_device(device))
    flops_per_pixel = _network_flops_per_pixel(load_model(scale=scale))
    rows = []
    with (tempfile.TemporaryDirectory(dir=workdir) as tmp,
          progress_bar(total=len(sizes) * len(pipelines), desc="bench speed", unit="run", leave=False) as bar):
        for width, height in sizes:
            burst_dir = Path(tmp) / f"burst-{width}x{height}"
            bar.set_postfix_str(f"{width}x{height}: simulating the burst")
            # simulated in a child: a run's peak (ru_maxrss) counts what its parent held when it
            # forked, and simulating a large burst leaves this process large
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from multisr.research.bench import "
                            "_speed_burst; _speed_burst(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), "
                            "Path(sys.argv[4]), int(sys.argv[5]))", str(width), str(height), str(n), str(burst_dir),
                            str(scale)], check=True)
            for name in pipelines:
                bar.set_postfix_str(f"{width}x{height}: {name}")
                out = Path(tmp) / f"{width}x{height}-{name}"
                command = [sys.executable, "-c", "from multisr.cli import cli; cli()", "run", str(burst_dir), "--n",
                           str(n), "--out", str(out), "--pipeline", name, "--device", torch_device, "--no-cache",
                           "--scale", str(scale)]
                # the run's messages go to a file: a pipe that nobody reads until the end would fill
                with open(Path(tmp) / f"{width}x{height}-{name}.log", "w+") as log:
                    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
                    _, status, usage = os.wait4(process.pid, 0)
                    log.seek(0)
                    stderr = log.read()
                process.returncode = os.waitstatus_to_exitcode(status)
                bar.update()
                if process.returncode != 0:  # say so and go on: the other pipelines and sizes still count
                    last = stderr.strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
                    rows.append({"size": f"{width}x{height}", "pipeline": name, "error": last[0],
                                 "peak_mib": usage.ru_maxrss / 1024})
                    continue
                record = json.loads((out / "run.json").read_text())
                stages = {s["name"]: s["seconds"] for s in record["stages"]}
                row = {"size": f"{width}x{height}", "pipeline": name, "stages": stages,
                       "seconds": record["seconds"], "peak_mib": usage.ru_maxrss / 1024}
                if "srcnn" in stages:
                    frames = 1 if "select_reference" in stages else n
                    flops = flops_per_pixel * frames * scale**2 * width * height
                    row["srcnn_gflops"] = flops / stages["srcnn"] / 1e9
                rows.append(row)
    # the network's own rate on one HR frame of the largest size, at most 1920x1440 (the rate is
    # flat beyond; a phone frame's 12000x9000 would take minutes)
    network_size = (min(1440, scale * max(h for _, h in sizes)), min(1920, scale * max(w for w, _ in sizes)))
    return {"device": torch_device, "scale": scale, "matmul_gflops": matmul_flop_rate(torch_device) / 1e9,
            "network_gflops": network_flop_rate(torch_device, size=network_size) / 1e9, "n": n, "rows": rows}

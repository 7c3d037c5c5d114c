"""``multisr compare``: several pipelines on one burst, written up as a self-contained HTML report.

The report folder holds ``index.html``, the pictures it shows (``images/``), ``metrics.json`` and
the runs' folders (``runs/<pipeline>/``: result, record, and links into the stage cache). The
runs take every stage that an earlier run of any pipeline on the same burst computed from the
stage cache (:mod:`multisr.storage.cache`), so a report after ``multisr run`` recomputes nothing of that
pipeline, and the pipelines of one report share their load and register stages. Nothing on the
page is fetched from the network: the folder can be zipped and mailed.
"""
import json
import shutil
from pathlib import Path

import jinja2
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy.ndimage import sobel, uniform_filter

from ..errors import UserError
from ..imaging.color import luma
from ..imaging.geometry import in_box, similarity_parameters
from ..imaging.metrics import score_image
from ..imaging.ocr import OCR_INSTALL, ocr_available
from ..params import DEFAULT_FRAMES, DEFAULT_REFERENCE, SCALE, parse_integer
from ..registration.tracking import check_roi, parse_roi
from ..runs.engine import target_steps
from ..runs.loading import read_frame
from ..runs.pipeline import load_pipeline
from ..runs.runner import run_pipeline
from ..runs.stages import STAGES
from ..storage.cachedir import cache_root, check_cache_folder
from ..storage.files import write_json
from ..storage.folders import list_images
from ..storage.io import read_image, write_image
from ..storage.rundir import open_run
from ..storage.video import is_video, read_video

__all__ = ["compare", "parse_crop", "detail_crop"]

DEFAULT_PIPELINES = ("bicubic", "single", "presenters", "multiframe", "merge")
ERROR_RANGE = 32  # error maps saturate at this many 8-bit levels of |Y - Y_truth|


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` (high-resolution pixels) -> a tuple of four ints."""
    try:
        x, y, w, h = (parse_integer(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"crop: expected X,Y,W,H as four integers written with the digits 0-9, got {text!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise UserError(f"crop: expected a non-negative corner and a positive size, got {text!r}")
    return x, y, w, h


def detail_crop(image: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The ``(x, y, w, h)`` window of ``size = (w, h)`` with the most gradient energy in ``image``'s Y."""
    w, h = size
    y = luma(image).astype(np.float64)
    energy = uniform_filter(np.hypot(sobel(y, 0), sobel(y, 1)), size=(h, w), mode="constant")
    energy[: h // 2] = energy[energy.shape[0] - (h - h // 2) + 1 :] = 0  # windows must fit
    energy[:, : w // 2] = energy[:, energy.shape[1] - (w - w // 2) + 1 :] = 0
    cy, cx = np.unravel_index(np.argmax(energy), energy.shape)
    return int(cx - w // 2), int(cy - h // 2), w, h


def _magnify(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _error_map(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    error = np.abs(luma(np.clip(image, 0, 1)) - luma(truth)) * 255 / ERROR_RANGE
    return matplotlib.colormaps["inferno"](np.clip(error, 0, 1))[..., :3].astype(np.float32)


def _registration_plot(registration: list, truth_matrices: np.ndarray | None, path: Path) -> None:
    frames = np.arange(len(registration))
    fig = Figure(figsize=(17, 2.8), constrained_layout=True)  # no pyplot: no GUI backend, no global state
    axes = fig.subplots(1, 5)
    true_params = [similarity_parameters(m) for m in truth_matrices] if truth_matrices is not None else None
    for ax, key, label in zip(axes, ("tx", "ty", "angle", "scale", "success"),
                              ("shift x (LR px)", "shift y (LR px)", "angle (deg)", "scale", "success score")):
        estimated = [getattr(r, key) for r in registration]
        if true_params is not None and key != "success":
            ax.plot(frames, [p[key] for p in true_params], "o", mfc="none", color="0.5", label="true")
        ax.plot(frames, estimated, "x", color="tab:blue", label="estimated")
        left_out = [k for k, r in enumerate(registration) if r.excluded]
        if left_out:
            ax.plot(left_out, [estimated[k] for k in left_out], "s", mfc="none", color="tab:red", ms=9, label="left out")
        ax.set_title(label, fontsize=10)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel("frame")
    axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=80)


def _stage_seconds(stage: dict) -> float:
    return stage.get("computed_seconds", stage["seconds"])


def compare(frames_dir: Path, *, out_dir: Path, n: int = DEFAULT_FRAMES, start: int = 0, reference: int | str | None = None,
            pipelines: tuple[str, ...] = DEFAULT_PIPELINES, truth_path: Path | None = None,
            crop: tuple[int, int, int, int] | None = None, cache_dir: Path | None = None,
            device: str = "auto", roi: str | None = None, scale: int = SCALE) -> dict:
    """Run ``pipelines`` on the burst (``n`` frames of a folder of images or a video, from frame
    ``start`` on) and write the report into ``out_dir``; returns ``metrics.json``'s content.

    ``reference``: a frame index or ``"sharpest"`` (see :func:`multisr.runs.runner.run_pipeline`);
    ``None`` means ``"sharpest"``, or with ``truth_path`` the frame the truth is of: the
    ``reference`` of the ``truth.json`` beside it (as ``multisr simulate`` writes), else 0; with a
    box (``roi``, :func:`multisr.runs.runner.run_pipeline`) the first frame. Every pipeline runs at
    ``scale`` (2, 3 or 4). With a box every image,
    score and crop of the report is of the box at ``scale`` x (the truth cut to it), and, where the optional
    OCR is installed, the report says what each result's box reads and what the vote over the
    frames' own SR reads (:func:`multisr.runs.reading.read_target`).
    """
    loaded = [load_pipeline(name) for name in pipelines]
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out_dir {out_dir}: expected a folder for the report, but it is a file")
    if reference is None and truth_path is None:
        reference = DEFAULT_REFERENCE if roi is None else 0
    elif reference is None:  # the frame the truth is of
        truth_json = Path(truth_path).with_suffix(".json")
        reference = _read_truth_json(truth_json)[0] if truth_json.is_file() else 0
    STAGES["load"].params["reference"].check("reference", reference)
    n = STAGES["load"].params["n"].check("n", n)
    scale = STAGES["load"].params["scale"].check("scale", scale)
    if isinstance(reference, int) and isinstance(n, int) and not 0 <= reference < n:
        raise UserError(f"reference: expected a frame index from 0 to {n - 1}, got {reference}")
    target_steps(roi, reference)  # the box's form, before any run
    frame = _frame(Path(frames_dir), start)  # every frame has its shape (the runs check)
    hr_shape = (scale * frame.shape[0], scale * frame.shape[1])
    box = None if roi is None else check_roi(parse_roi(roi), frame.shape[:2])
    truth = None
    if truth_path is not None:
        truth, _ = read_image(truth_path)
        if truth.shape[:2] != hr_shape:
            raise UserError(f"{truth_path}: expected a truth of {hr_shape[1]}x{hr_shape[0]} ({scale}x the reference "
                            f"frame), found {truth.shape[1]}x{truth.shape[0]}")
        truth = truth if box is None else in_box(truth, box, scale)
    if box is not None:
        hr_shape = (scale * box[3], scale * box[2])
    if crop is not None and (crop[0] + crop[2] > hr_shape[1] or crop[1] + crop[3] > hr_shape[0]):
        raise UserError(f"crop: expected a region inside the {hr_shape[1]}x{hr_shape[0]} result, got "
                        f"{','.join(map(str, crop))}")
    check_cache_folder(cache_root(cache_dir))
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    read = box is not None and ocr_available()  # what the plate says, where the OCR is installed
    runs = {p.name: open_run(_run(p, frames_dir, out_dir, n, start, reference, cache_dir, device, roi, read, scale))
            for p in loaded}
    reference = next(iter(runs.values())).record["reference_index"]  # the same in every run
    reference_frame = _frame(Path(frames_dir), start + reference)
    if box is not None:
        reference_frame = reference_frame[box[1] : box[1] + box[3], box[0] : box[0] + box[2]]
    results = {name: run.result for name, run in runs.items()}
    if crop is None:
        size = (max(8, min(96, hr_shape[1] // 3)), max(8, min(64, hr_shape[0] // 3)))
        crop = detail_crop(truth if truth is not None else results[loaded[-1].name], size)
    x, y, w, h = crop
    factor = max(1, 288 // w)
    write_image(images / "reference.png", _magnify(reference_frame, scale))
    methods = []
    for name, run in runs.items():
        shutil.copyfile(run.out_dir / "result.png", images / f"{name}.png")
        write_image(images / f"crop_{name}.png", _magnify(results[name][y : y + h, x : x + w], factor))
        entry = {"name": name, "description": run.record["description"], "image": f"images/{name}.png",
                 "crop": f"images/crop_{name}.png", "device": run.record["device"],
                 "seconds": round(sum(_stage_seconds(s) for s in run.record["stages"]), 3),
                 "stages": {s["name"]: round(_stage_seconds(s), 4) for s in run.record["stages"]}}
        if read:
            entry["reading"] = run.record["reading"]["result"]
        if truth is not None:
            entry.update(score_image(results[name], truth, shave=scale))
            write_image(images / f"error_{name}.png", _error_map(results[name], truth))
            entry["error_map"] = f"images/error_{name}.png"
        methods.append(entry)
    if truth is not None:
        write_image(images / "truth.png", truth)
        write_image(images / "crop_truth.png", _magnify(truth[y : y + h, x : x + w], factor))
    # the truth's matrices are the background's: a box's target moves otherwise
    registration, excluded = _registration(runs, truth_path if box is None else None, reference, images)
    source = next(iter(runs.values())).record["source"]
    metrics = {"frames": str(Path(frames_dir).resolve()), "n": n, "start": start, "reference": reference, "scale": scale,
               "truth": str(truth_path) if truth_path else None, "crop": list(crop), "methods": methods,
               "registration": registration, "excluded": excluded, "source": source,
               "roi": None if box is None else list(box), "reading": _plate_reading(runs, box, read)}
    write_json(out_dir / "metrics.json", metrics)
    template = jinja2.Environment(loader=jinja2.PackageLoader("multisr", "templates"), autoescape=True,
                                  undefined=jinja2.StrictUndefined).get_template("report.html")
    stage_names = list(dict.fromkeys(stage for m in methods for stage in m["stages"]))  # first-seen order
    html = template.render(metrics=metrics, methods=methods, stage_names=stage_names, has_truth=truth is not None,
                           has_registration=bool(registration), error_range=ERROR_RANGE, factor=factor,
                           frame_shape=reference_frame.shape[:2])
    (out_dir / "index.html").write_text(html)
    return metrics


def _frame(frames_dir: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based, in the burst's order) of a folder of images or of a video."""
    if is_video(frames_dir):
        return read_video(frames_dir, start=index, count=1)[0][0]
    files = list_images(frames_dir)
    if index >= len(files):
        raise UserError(f"{frames_dir}: expected at least {index + 1} frames, found {len(files)}")
    return read_frame(files[index])[0].image  # a RAW file's as LibRaw develops it


def _run(pipeline, frames_dir, out_dir, n, start, reference, cache_dir, device, roi, read, scale) -> Path:
    run_dir = out_dir / "runs" / pipeline.name
    run_pipeline(pipeline, frames_dir, out_dir=run_dir, n=n, start=start, reference=reference, cache_dir=cache_dir,
                 device=device, roi=roi, read=read, scale=scale)
    return run_dir


def _plate_reading(runs: dict, box, read: bool) -> dict | None:
    """``metrics.json``'s ``reading`` with a box: ``{"ocr": True, "vote", "frames"}`` (the vote over
    the frames of the run that kept the most: a one-frame pipeline votes over its reference
    alone), or ``{"ocr": False, "install"}`` without the OCR; ``None`` without a box."""
    if box is None:
        return None
    if not read:
        return {"ocr": False, "install": OCR_INSTALL}
    widest = max((run.record["reading"] for run in runs.values()), key=lambda reading: len(reading["frames"]))
    return {"ocr": True, "vote": widest["vote"], "frames": widest["frames"]}


def _read_truth_json(path: Path) -> tuple[int, np.ndarray]:
    """The reference frame index and the ``(N, 3, 3)`` matrices of a ``truth.json`` (``multisr
    simulate``'s), or :class:`UserError`."""
    try:
        truth = json.loads(path.read_text())
        reference, matrices = truth["reference"], np.array(truth["matrices"], dtype=np.float64)
    except (ValueError, TypeError, KeyError) as error:
        raise UserError(f"{path}: expected the truth.json multisr simulate writes, but it is damaged "
                        f"({type(error).__name__})") from None
    if matrices.ndim != 3 or matrices.shape[1:] != (3, 3) or not np.isfinite(matrices).all():
        raise UserError(f"{path}: expected finite 3x3 matrices, found shape {matrices.shape}")
    if not isinstance(reference, int) or isinstance(reference, bool) or not 0 <= reference < len(matrices):
        raise UserError(f"{path}: expected the index of one of its {len(matrices)} frames as its reference, "
                        f"found {reference!r}")
    return reference, matrices


def _registration(runs: dict, truth_path: Path | None, reference: int, images: Path) -> tuple[list, list]:
    """The registration of the first run that registers: per-frame table, plot, frames left out.

    With a ``truth.json`` beside the truth image (as ``multisr simulate`` writes), the plot shows
    the true motion too, re-expressed against ``reference``.
    """
    for run in runs.values():
        if "register" in run.stages:
            registration = run["register"]["registration"]
            truth_json = Path(truth_path).with_suffix(".json") if truth_path else None
            truth_matrices = None
            if truth_json is not None and truth_json.is_file():
                _, truth_matrices = _read_truth_json(truth_json)
                if len(truth_matrices) < len(registration):
                    truth_matrices = None
                else:
                    truth_matrices = truth_matrices[: len(registration)] @ np.linalg.inv(truth_matrices[reference])
            _registration_plot(registration, truth_matrices, images / "registration.png")
            rows = [{key: getattr(r, key) for key in ("frame", "tx", "ty", "angle", "scale", "success", "excluded")}
                    for r in registration]
            return rows, run.record["excluded"]
    return [], []

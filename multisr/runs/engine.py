"""The run engine: a pipeline's stages in order over a store of artifacts, each stage taken from the
stage cache (:mod:`multisr.storage.cache`) or computed, in memory first. :func:`run_frames` runs a burst
held in memory; :func:`multisr.runs.runner.run_pipeline` runs one read from files into a run folder.
"""
import hashlib
import platform
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging.geometry import in_box, similarity_matrix
from ..params import DEFAULT_REFERENCE, SCALE
from ..sr.device import resolve_device
from ..sr.weights import weights_path
from ..storage.cache import Artifact, cached_outputs, link_stage, new_entry, save_stage, stage_key
from ..storage.cachedir import cache_root, using
from ..storage.stacks import Stack
from .diskspace import bytes_to_write, check_disk
from .loading import burst_artifacts
from .pipeline import Pipeline
from .stages import NETWORK_STAGES, STAGES, Stage

__all__ = ["Result", "run_frames", "check_weights", "run_steps", "target_steps", "result_of", "record_of",
           "full_frame_matrices", "box_in_window"]


@dataclass
class Result:
    """What a pipeline made of a burst in memory (:func:`run_frames`).

    Attributes:
        image: ``(sh, sw[, 3])`` float32 (``s`` the scale), the pipeline's output as its last stage made it (not
            clipped; ``multisr.storage.io.to_uint`` gives what ``result.png`` would hold).
        record: the run record, as ``run.json`` holds it (without the result's digest).
        matrices: ``(N, 3, 3)`` registration of the frames (as ``transforms.json``), or ``None``
            for pipelines that do not register; with a ``roi``, the target's motion in the
            frames' own pixels, for the frames it was found in (``record["target"]["frames"]``).
    """

    image: np.ndarray
    record: dict
    matrices: np.ndarray | None


def run_frames(pipeline: Pipeline, frames: np.ndarray, *, names: list[str] | None = None, bit_depth: int = 8,
               reference: int | str = DEFAULT_REFERENCE, known: np.ndarray | None = None, use_cache: bool = False,
               cache_dir: Path | None = None, device: str = "auto", roi: str | None = None,
               chroma_subsampling: str | None = None, scale: int = SCALE) -> Result:
    """Run ``pipeline`` on a burst in memory, ``frames`` ``(N, h, w[, 3])`` float in [0, 1] (named
    ``names``, by default ``frame_000`` ...), with no run folder: the same stages, in the same
    order, as :func:`multisr.runs.runner.run_pipeline` on those frames read from files. With
    ``use_cache``, stages are taken from and kept in the stage cache (keyed by the frames'
    contents); without it, the stacks of high-resolution frames go to a temporary folder that is
    removed before returning. ``known``: registration matrices already known for some frames
    (:func:`multisr.registration.burst.register_burst`). ``roi``: ``"X,Y,W,H"``, a box in the
    reference frame's pixels (then ``reference`` must be an index): the target in it is tracked
    through the burst and the result is the box at ``scale`` x (:mod:`multisr.registration.tracking`).
    ``chroma_subsampling``: how the frames' chroma was stored, where known (``"4:2:0"`` for
    frames decoded from JPEG files or most videos), as ``run.json``'s ``source`` records it for
    files (``multiframe`` models 4:2:0 chroma).
    """
    started = time.perf_counter()
    reference = STAGES["load"].params["reference"].check("reference", reference)
    scale = STAGES["load"].params["scale"].check("scale", scale)
    check_weights(pipeline, scale)
    torch_device = resolve_device(device)
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    names = list(names) if names is not None else [f"frame_{k:03d}" for k in range(len(frames))]
    if len(names) != len(frames) or len(frames) < 2:
        raise UserError(f"frames: expected at least 2 frames and a name for each, got {len(frames)} frames and "
                        f"{len(names)} names")
    known = None if known is None else np.asarray(known, dtype=np.float64)
    hasher = hashlib.sha256(memoryview(frames).cast("B"))  # the frames' bytes, not a copy of them
    hasher.update(repr((frames.shape, names, bit_depth, chroma_subsampling)).encode()
                  + (b"" if known is None else known.tobytes()))
    digest = hasher.hexdigest()
    source = Stage("memory", "1", (), STAGES["load"].writes,
                   lambda *, reference, scale: {**burst_artifacts(frames, names, bit_depth=bit_depth, reference=reference),
                                                "source": {"in_memory": True, "sha256": digest,
                                                           "chroma_subsampling": chroma_subsampling}, "known": known,
                                                "alpha": None, "mosaic": None, "colours": None, "target": None,
                                                "scale": scale},
                   {name: STAGES["load"].params[name] for name in ("reference", "scale")}, lambda params, scale: digest)
    steps = [(source, {"reference": reference, "scale": scale}), *target_steps(roi, reference), *pipeline.steps]
    with tempfile.TemporaryDirectory(prefix="multisr-") as scratch, \
            (using(cache_root(cache_dir)) if use_cache else nullcontext()) as cache:
        store, records = run_steps(steps, None, cache=cache, scratch=None if use_cache else Path(scratch) / "stacks",
                                    torch_device=torch_device)
        image = np.array(result_of(pipeline, store))  # a copy: the stacks go with the scratch folder
        matrices = full_frame_matrices(store) if "matrices" in store else None
        return Result(image, record_of(pipeline, store, records, torch_device, started), matrices)


def check_weights(pipeline: Pipeline, scale: int) -> None:
    """:class:`UserError` naming what is shipped when a network stage's model has no weights for ``scale``."""
    for stage, params in pipeline.steps:
        if stage.name in NETWORK_STAGES:
            weights_path(params["model"], scale)


def run_steps(steps: list, out_dir: Path | None, *, cache: Path | None, scratch: Path | None, torch_device,
               max_disk_bytes: int | None = None) -> tuple[dict, list]:
    """Run each ``(stage, params)``, or take it from the ``cache`` folder (and link it into
    ``out_dir/stages`` when there is a run folder), or (``cache`` ``None``) write its stacks under
    ``scratch``; returns the artifacts by name and the stages' records."""
    use_cache = cache is not None
    store: dict[str, Artifact] = {}
    records = []
    for index, (stage, params) in enumerate(steps):  # load_pipeline has checked that every read is written before
        if index == 1:  # the frames are loaded: check the disk has room for what the run will write
            needed = bytes_to_write(steps, store["frames"].get().shape, scale=store["scale"].get(),
                                    use_cache=use_cache)
            check_disk(cache if use_cache else scratch.parent, needed, use_cache=use_cache, limit=max_disk_bytes,
                        own_entries=[cache / steps[0][0].name / records[0]["key"]] if use_cache else [])
            store["disk_bytes"] = Artifact("disk_bytes", needed)
            # the burst as loaded, for the record (select_reference keeps one frame, renumbered 0)
            store["burst"] = Artifact("burst", {"frames": len(store["names"].get()), "reference": store["reference"].get()})
        inputs = {name: store[name].key for name in stage.reads}
        scale = store["scale"].get() if "scale" in store else params["scale"]  # the source stage's own parameter
        fingerprint = stage.fingerprint(params, scale) if stage.fingerprint else ""
        key = stage_key(stage.name, stage.version, params, inputs, fingerprint)
        stage_dir = cache / stage.name / key if use_cache else None
        cached = cached_outputs(stage_dir, key) if use_cache else None
        if cached is not None:
            meta, artifacts = cached
            if out_dir is not None:
                link_stage(out_dir / "stages" / stage.name, stage_dir)
            store.update(artifacts)
            record = meta["record"]
            records.append({**record, "cached": True, "computed_seconds": record["seconds"], "seconds": 0.0})
            continue
        kwargs = {name: store[name].get() for name in stage.reads}
        if stage.uses_device:
            kwargs["device"] = torch_device
        workspace = new_entry(stage_dir) if use_cache else scratch / stage.name
        if stage.uses_workspace:
            workspace.mkdir(parents=True, exist_ok=True)
            kwargs["workspace"] = workspace
        tick = time.perf_counter()
        try:
            outputs = stage.run(**kwargs, **params)
        except BaseException:
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        seconds = time.perf_counter() - tick
        record = {"name": stage.name, "version": stage.version, "key": key, "params": params, "inputs": inputs,
                  "outputs": {name: _shape_of(value) for name, value in outputs.items()},
                  "device": str(torch_device) if stage.uses_device else "cpu", "seconds": round(seconds, 4)}
        if use_cache:
            outputs = save_stage(stage_dir, {"key": key, "record": record}, outputs, workspace)
            if out_dir is not None:
                link_stage(out_dir / "stages" / stage.name, stage_dir)
        for name, value in outputs.items():
            replaced = store[name].value if name in store else None
            if not use_cache and isinstance(replaced, Stack):  # nothing reads a replaced artifact again
                replaced.path.unlink()
            store[name] = Artifact(f"{key}:{name}", value)
        records.append({**record, "cached": False})
    return store, records


def target_steps(roi: str | None, reference: int | str) -> list:
    """The ``target`` step a run with a box starts with (none without one), its box checked."""
    if roi is None:
        return []
    roi = STAGES["target"].params["roi"].check("roi", roi)
    if not isinstance(reference, int):
        raise UserError(f"reference: expected a frame index with a box (the frame the box is drawn on), got "
                        f"{reference!r}")
    return [(STAGES["target"], {"roi": roi})]


def full_frame_matrices(store: dict) -> np.ndarray:
    """The run's ``matrices`` (reference pixels -> frame k's): with a box, taken from the
    windows' pixels back to the frames' own (:func:`multisr.registration.tracking.cut_to_target`)."""
    matrices = store["matrices"].get().copy()
    info = store["target"].get()
    if info is None:
        return matrices
    offsets = info["offsets"]
    ox, oy = offsets[store["reference"].get()]
    origin = similarity_matrix(shift=(-ox, -oy))
    full = np.stack([similarity_matrix(shift=offset) @ matrix @ origin for matrix, offset in zip(matrices, offsets)])
    return full / full[:, 2:, 2:]


def result_of(pipeline: Pipeline, store: dict) -> np.ndarray:
    """The pipeline's output: the ``result`` artifact, or the one high-resolution frame left; with
    a box, its part of it (the box at the run's scale)."""
    if "result" in store:
        result = store["result"].get()
    elif "hr" in store and len(store["hr"].get()) == 1:
        result = store["hr"].get()[0]  # read from its stack
    else:
        raise UserError(f"pipeline {pipeline.name!r}: expected its last stage to make a result "
                        "(fuse, or a single high-resolution frame)")
    if store["target"].get() is None:
        return result
    return in_box(result, box_in_window(store), store["scale"].get())


def box_in_window(store: dict) -> tuple[int, int, int, int]:
    """A run with a box: the box ``(x, y, w, h)`` in the pixels of the reference frame's window
    (:func:`multisr.registration.tracking.cut_to_target`), where the stages after the tracker
    work."""
    info = store["target"].get()
    x, y, w, h = info["roi"]
    ox, oy = info["offsets"][info["frames"].index(store["names"].get()[store["reference"].get()])]
    return x - ox, y - oy, w, h


def record_of(pipeline: Pipeline, store: dict, records: list, torch_device, started: float) -> dict:
    """The run record (``run.json`` but the result's digest): parameters, the reference frame,
    versions, device, the stages' records, the frames left out, and what the solve chose."""
    names, reference, burst = store["names"].get(), store["reference"].get(), store["burst"].get()
    registration = store["registration"].get() if "registration" in store else []
    target = store["target"].get()
    source = records[0]["params"]
    run = {
        "pipeline": pipeline.name,
        "description": pipeline.description,
        "reference_frame": names[reference],
        "reference_index": burst["reference"],
        "source": store["source"].get(),
        "parameters": {"frames": source.get("folder", "in memory"), "n": burst["frames"], "reference": source["reference"],
                       "scale": store["scale"].get(), "stages": {r["name"]: r["params"] for r in records}},
        "device": str(torch_device),
        "versions": _versions(),
        "stages": records,
        "excluded": [*(target["left_out"] if target is not None else []),
                     *({"frame": r.frame, "reason": r.excluded} for r in registration if r.excluded)],
        "disk_bytes": store["disk_bytes"].get() if "disk_bytes" in store else 0,
        "seconds": round(time.perf_counter() - started, 4),
    }
    if target is not None:  # the box, its windows and the target's correlation with it in each frame
        run["target"] = target
    else:  # something moves on its own: where, in the reference frame, for --roi
        moving = store["moving"].get() if "moving" in store else (store["solve"].get().get("moving_region")
                                                                   if "solve" in store else None)
        if moving is not None:
            run["moving_target"] = {"roi": moving, "reference_index": burst["reference"]}
    if "solve" in store:  # what the multi-frame solve chose from the burst (its PSF, prior weight, ...)
        run["solve"] = store["solve"].get()
    return run


def _shape_of(value) -> list | str | None:
    """An output as the record names it: an array's shape, else its type's name; ``None`` (an
    artifact a burst does not have: no known matrices, no alpha) stays ``None``."""
    if value is None:
        return None
    return list(value.shape) if isinstance(value, (np.ndarray, Stack)) else type(value).__name__


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in ("multisr", "torch", "numpy", "scipy", "opencv-python-headless", "imreg-dft", "scikit-image"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions

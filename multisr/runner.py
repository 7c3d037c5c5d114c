"""Running a pipeline into a run directory, with a cache of every stage's output.

Layout of ``OUT_DIR``::

    result.png          the pipeline's output, 3x the reference frame, its channels and bit depth
    transforms.json     {"reference", "scale", "frames", "matrices"} (pipelines that register)
    run.json            parameters, versions, device, per-stage wall time and cache use
    stages/<name>/      meta.json, <artifact>.npy, <artifact>.png previews (when caching; stacks
                        as a contact sheet of frames at most 320 pixels wide)
    .lock               held (``flock``) by the run writing the folder: a second run is refused

``run.json`` is written last and records ``result_sha256``: a folder with a ``run.json``
describes the ``result.png`` beside it.

A stage's cache key hashes its name, version, canonical parameters, any outside data it
depends on (frame files, weights file) and the keys of the artifacts it reads. A stage whose
directory holds that key, with every ``.npy`` matching its recorded SHA-256 and ``meta.json``
matching its own (every field: the record, the small values, which arrays are stacks), is
reused without running; anything else is recomputed. A stage directory is written under a
temporary name and renamed into place when complete, so a killed run never leaves one that
looks finished.
"""
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .files import atomic_output, file_digest
from .io import write_image
from .models import resolve_device, warm_up
from .pipeline import Pipeline
from .stacks import Stack
from .stages import SCALE, STAGES

__all__ = ["run_pipeline", "write_json"]

_PREVIEWED = {"frames": "sheet", "hr": "sheet", "valid": "sheet", "result": "image"}


def write_json(path: Path, data) -> None:
    """Write JSON to ``path`` atomically (temporary file + rename)."""
    with atomic_output(path) as tmp, open(tmp, "w") as out:
        json.dump(data, out, indent=1)


@dataclass
class _Artifact:
    key: str
    value: object = None
    path: Path | None = None  # .npy to read on first use

    def get(self):
        if self.value is None and self.path is not None:
            self.value = np.load(self.path)
        return self.value


def _stage_key(name: str, version: str, params: dict, inputs: dict, fingerprint: str) -> str:
    canonical = json.dumps({"stage": name, "version": version, "params": params, "inputs": inputs,
                            "fingerprint": fingerprint}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _contact_sheet(stack, columns: int = 5, side: int = 320) -> np.ndarray:
    """The frames of ``stack`` (an array or a :class:`Stack`) side by side, each shrunk to at most
    ``side`` pixels (a preview)."""
    count = len(stack)
    rows = -(-count // columns)
    columns = min(columns, count)
    factor = min(1.0, side / max(stack.shape[1:3]))
    height, width = max(1, round(stack.shape[1] * factor)), max(1, round(stack.shape[2] * factor))
    sheet = np.ones((rows * (height + 2), columns * (width + 2), *stack.shape[3:]), dtype=np.float32)
    stride = max(1, int(1 / (2 * factor)))  # read every stride-th row and column: twice the preview's size
    for k in range(count):
        frame = stack[k, ::stride, ::stride]
        top, left = (k // columns) * (height + 2), (k % columns) * (width + 2)
        sheet[top : top + height, left : left + width] = cv2.resize(frame.astype(np.float32), (width, height),
                                                                    interpolation=cv2.INTER_AREA)
    return sheet


def _cached_outputs(stage_dir: Path, key: str) -> tuple[dict, dict] | None:
    """``(meta, artifacts)`` of a stage whose directory holds ``key`` intact, else ``None``.

    Arrays are not loaded here: each artifact reads its ``.npy`` when a later stage needs it.
    """
    try:
        meta = json.loads((stage_dir / "meta.json").read_text())
        entry = {name: meta[name] for name in ("key", "record", "values", "digests", "stacks")}
    except (OSError, ValueError, TypeError, KeyError):  # missing, damaged, or not an entry's meta.json
        return None
    if meta["key"] != key or meta.get("sha256") != _entry_digest(entry):  # every field, not only the arrays
        return None
    artifacts = {name: _Artifact(f"{key}:{name}", value) for name, value in meta.get("values", {}).items()}
    for name, digest in meta.get("digests", {}).items():
        path = stage_dir / f"{name}.npy"
        if not path.is_file() or file_digest(path) != digest:
            return None
        stacked = name in meta.get("stacks", [])
        artifacts[name] = _Artifact(f"{key}:{name}", Stack(path)) if stacked else _Artifact(f"{key}:{name}", path=path)
    return meta, artifacts


def _new_entry(stage_dir: Path) -> Path:
    """A new, empty temporary sibling of ``stage_dir`` to write the stage's entry into."""
    stage_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage_dir.parent / f".tmp-{stage_dir.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def _entry_digest(entry: dict) -> str:
    """SHA-256 of a stage entry's meta fields (canonical JSON): the key, the record, the small
    values, the arrays' digests and which arrays are stacks."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def _save_stage(stage_dir: Path, meta: dict, outputs: dict, tmp: Path) -> dict:
    """Write a stage directory whole: into ``tmp`` (from :func:`_new_entry`, where the stage wrote
    its stacks), then renamed into place. Returns ``outputs`` with each stack at its final path."""
    values, digests, stacks = {}, {}, []
    for name, value in outputs.items():
        if isinstance(value, Stack):
            if value.path != tmp / f"{name}.npy":
                raise RuntimeError(f"stage wrote its stack {name!r} at {value.path}, not in its workspace")
            stacks.append(name)
        elif isinstance(value, np.ndarray):
            np.save(tmp / f"{name}.npy", value)
        else:
            values[name] = value
            continue
        digests[name] = file_digest(tmp / f"{name}.npy")
        kind = _PREVIEWED.get(name)
        if kind:  # bool masks too
            write_image(tmp / f"{name}.png", _contact_sheet(value) if kind == "sheet" else value.astype(np.float32))
    entry = {**meta, "values": values, "digests": digests, "stacks": stacks}
    write_json(tmp / "meta.json", {**entry, "sha256": _entry_digest(entry)})
    if stage_dir.exists() or stage_dir.is_symlink():
        trash = stage_dir.parent / f".old-{stage_dir.name}-{uuid.uuid4().hex[:8]}"
        os.replace(stage_dir, trash)
        _remove(trash)
    os.replace(tmp, stage_dir)
    return {name: Stack(stage_dir / f"{name}.npy") if name in stacks else value for name, value in outputs.items()}


def _clean_leftovers(out_dir: Path) -> None:
    """Remove what a killed run left: temporary stage directories, scratch folders, and the
    hidden temporary files of the run's own files (``.result.*.png``, ...)."""
    partial = tuple(f".{Path(name).stem}." for name in _RUN_FILES)
    for folder, prefixes in ((out_dir / "stages", (".tmp-", ".old-")), (out_dir, (".scratch-", *partial))):
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.startswith(prefixes):
                    _remove(entry)


def _remove(path: Path) -> None:
    """Delete a file or a folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _shape_of(value) -> list | str:
    return list(value.shape) if isinstance(value, (np.ndarray, Stack)) else type(value).__name__


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in ("multisr", "torch", "numpy", "scipy", "opencv-python-headless", "imreg-dft", "scikit-image"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def run_pipeline(
    pipeline: Pipeline,
    frames_dir: Path,
    *,
    out_dir: Path,
    n: int = 20,
    reference: int | str = "sharpest",
    use_cache: bool = True,
    device: str = "auto",
    max_disk_bytes: int | None = None,
) -> dict:
    """Run ``pipeline`` on the first ``n`` frames of ``frames_dir``; write the run into ``out_dir``.

    Returns the run record that is also written to ``out_dir/run.json``: parameters,
    versions, device, and per stage its key, whether it came from the cache, its wall time in
    seconds and its output shapes; ``excluded`` lists frames left out of the fusion; and
    ``disk_bytes``, about how much the run wrote under ``out_dir`` at most. A run that would
    write more than the disk has free, or than ``max_disk_bytes``, is refused before it writes.
    ``reference`` is the frame to super-resolve: its index, or ``"sharpest"``
    (:func:`multisr.registration.sharpest_frame`); ``run.json``'s ``reference_frame`` names it.
    """
    started = time.perf_counter()
    reference = STAGES["load"].params["reference"].check("--reference", reference)
    torch_device = resolve_device(device)
    out_dir = Path(out_dir)
    stages_dir = out_dir / "stages"
    steps = [(STAGES["load"], {"folder": str(Path(frames_dir).resolve()), "n": n, "reference": reference})]
    steps += pipeline.steps
    _check_out_dir(out_dir, Path(frames_dir))
    with _locked(out_dir):
        _clean_leftovers(out_dir)
        # without the cache, stacks go to a scratch folder that the run removes when it ends
        scratch = None if use_cache else out_dir / f".scratch-{uuid.uuid4().hex[:8]}"
        # the GPU's start-up overlaps the CPU stages before the first network stage
        warming = warm_up(torch_device) if any(stage.uses_device for stage, _ in steps) else None
        try:
            store, records = _run_steps(steps, stages_dir, scratch=scratch, torch_device=torch_device,
                                        max_disk_bytes=max_disk_bytes)
            return _finish(pipeline, store, records, out_dir, torch_device, started, use_cache=use_cache)
        finally:
            if warming is not None:
                warming.join()
            if scratch is not None:
                _remove(scratch)


_RUN_FILES = ("result.png", "transforms.json", "run.json")


def _check_out_dir(out_dir: Path, frames_dir: Path) -> None:
    """:class:`UserError` for an ``--out`` that cannot hold a run; creates it when missing."""
    if out_dir.resolve() == frames_dir.resolve():
        raise UserError(f"--out {out_dir}: expected a folder other than the frames folder (the result would "
                        "join the frames)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"--out {out_dir}: expected a folder for the run, but it or a folder above it is a file") from None
    for name in _RUN_FILES:
        if (out_dir / name).is_dir():
            raise UserError(f"{out_dir / name}: expected a file (or nothing), found a folder; move it away")


@contextmanager
def _locked(out_dir: Path):
    """Hold ``out_dir``'s lock (``.lock``, an advisory ``flock``) for a run; another run on the same
    folder is refused with :class:`UserError` at once rather than mixing its files with this one's.
    The operating system releases the lock when the process ends, however it ends."""
    with open(out_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"--out {out_dir}: another multisr run is writing to this folder; wait for it to "
                            "finish or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_steps(steps: list, stages_dir: Path, *, scratch: Path | None, torch_device,
               max_disk_bytes: int | None = None) -> tuple[dict, list]:
    """Run each ``(stage, params)``, or take it from the cache in ``stages_dir`` (``scratch``
    ``None``), or write its stacks under ``scratch`` (no cache); returns the artifacts by name
    and the stages' records."""
    use_cache = scratch is None
    store: dict[str, _Artifact] = {}
    records = []
    for index, (stage, params) in enumerate(steps):  # load_pipeline has checked that every read is written before
        if index == 1:  # the frames are loaded: check the disk has room for what the run will write
            needed = _bytes_to_write(steps, store["frames"].get().shape, use_cache=use_cache)
            _check_disk(stages_dir.parent, needed, use_cache=use_cache, limit=max_disk_bytes)
            store["disk_bytes"] = _Artifact("disk_bytes", needed)
        inputs = {name: store[name].key for name in stage.reads}
        fingerprint = stage.fingerprint(params) if stage.fingerprint else ""
        key = _stage_key(stage.name, stage.version, params, inputs, fingerprint)
        stage_dir = stages_dir / stage.name
        cached = _cached_outputs(stage_dir, key) if use_cache else None
        if cached is not None:
            meta, artifacts = cached
            store.update(artifacts)
            record = meta["record"]
            records.append({**record, "cached": True, "computed_seconds": record["seconds"], "seconds": 0.0})
            continue
        kwargs = {name: store[name].get() for name in stage.reads}
        if stage.uses_device:
            kwargs["device"] = torch_device
        workspace = _new_entry(stage_dir) if use_cache else scratch / stage.name
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
            outputs = _save_stage(stage_dir, {"key": key, "record": record}, outputs, workspace)
        for name, value in outputs.items():
            replaced = store[name].value if name in store else None
            if not use_cache and isinstance(replaced, Stack):  # nothing reads a replaced artifact again
                replaced.path.unlink()
            store[name] = _Artifact(f"{key}:{name}", value)
        records.append({**record, "cached": False})
    return store, records


def _bytes_to_write(steps: list, frames_shape: tuple, *, use_cache: bool) -> int:
    """About how many bytes a run on frames of ``frames_shape`` writes under its folder at most:
    with the cache, every stage entry (the frames, each stack of high-resolution frames, the
    result); without it, the two stacks and the mask that the scratch folder holds at once."""
    count, height, width = frames_shape[:3]
    channels = frames_shape[3] if len(frames_shape) == 4 else 1
    frame_bytes = height * width * channels * 4
    total, stacks, masks = (count * frame_bytes if use_cache else 0), [], 0
    for stage, _ in steps[1:]:
        if stage.name == "select_reference":
            count = 1
        if stage.uses_workspace:
            stacks.append(count * SCALE**2 * frame_bytes)
            masks += count * SCALE**2 * height * width if "valid" in stage.writes else 0
        elif "result" in stage.writes and use_cache:
            total += SCALE**2 * frame_bytes
    if use_cache:
        return total + sum(stacks) + masks
    return sum(sorted(stacks)[-2:]) + masks  # a stage's input stack and its output


def _check_disk(out_dir: Path, needed: int, *, use_cache: bool, limit: int | None) -> None:
    """:class:`UserError` before a run would write ``needed`` bytes under ``out_dir`` when the disk
    has less free, or when that is over ``limit``."""
    free = shutil.disk_usage(out_dir).free
    hint = "; --no-cache writes less (the stacks of one or two stages at a time)" if use_cache else ""
    if needed > free:
        raise UserError(f"--out {out_dir}: the run would write about {needed / 1e9:.1f} GB there, but "
                        f"{free / 1e9:.1f} GB are free{hint}")
    if limit is not None and needed > limit:
        raise UserError(f"--max-disk: expected the run to write at most {limit / 1e9:.1f} GB, but it would "
                        f"write about {needed / 1e9:.1f} GB under {out_dir}{hint}")


def _finish(pipeline: Pipeline, store: dict, records: list, out_dir: Path, torch_device, started: float, *,
            use_cache: bool) -> dict:
    """Write ``result.png``, ``transforms.json`` and ``run.json``; return the run record.

    The run folder never describes a result it does not hold: the previous ``run.json`` goes
    first, then the result and the transforms are written (each atomically; a pipeline without
    transforms removes an old ``transforms.json``), and ``run.json`` comes last, with the
    result's SHA-256. A run killed on the way leaves no ``run.json``. Without the cache, the
    stage entries of an earlier run go too, so that nothing opens them as this run's."""
    if "result" in store:
        result = store["result"].get()
    elif "hr" in store and len(store["hr"].get()) == 1:
        result = store["hr"].get()[0]  # read from its stack
    else:
        raise UserError(f"pipeline {pipeline.name!r}: expected its last stage to make a result "
                        "(fuse, or a single high-resolution frame)")
    names, reference = store["names"].get(), store["reference"].get()
    registration = store["registration"].get() if "registration" in store else []
    excluded = [{"frame": r["frame"], "reason": r["excluded"]} for r in registration if r["excluded"]]
    transforms = ({"reference": reference, "scale": SCALE, "frames": names, "matrices": store["matrices"].get().tolist()}
                  if "matrices" in store else None)
    load = records[0]
    run = {
        "pipeline": pipeline.name,
        "description": pipeline.description,
        "reference_frame": names[reference],
        "parameters": {"frames": load["params"]["folder"], "n": load["params"]["n"],
                       "reference": load["params"]["reference"],
                       "scale": SCALE, "stages": {r["name"]: r["params"] for r in records}},
        "device": str(torch_device),
        "versions": _versions(),
        "stages": records,
        "excluded": excluded,
        "disk_bytes": store["disk_bytes"].get() if "disk_bytes" in store else 0,
        "seconds": round(time.perf_counter() - started, 4),
    }
    if "solve" in store:  # what the multi-frame solve chose from the burst (its PSF, prior weight, ...)
        run["solve"] = store["solve"].get()
    bit_depth = store["bit_depth"].get()
    store.clear()  # the frames and intermediate arrays: freed before the result is converted to write
    (out_dir / "run.json").unlink(missing_ok=True)
    if not use_cache:
        _remove(out_dir / "stages")
    write_image(out_dir / "result.png", result, bit_depth=bit_depth)
    if transforms is None:
        (out_dir / "transforms.json").unlink(missing_ok=True)
    else:
        write_json(out_dir / "transforms.json", transforms)
    run["result_sha256"] = file_digest(out_dir / "result.png")
    write_json(out_dir / "run.json", run)
    return run

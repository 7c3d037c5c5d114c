"""The stage cache's entries: each stage's outputs kept once, by their key, and reused by any later
run (of any pipeline, into any run folder) whose inputs and parameters for that stage are the same.

Entries live in one folder shared by all runs (:mod:`multisr.storage.cachedir`: where it is, its locks,
its size limit), as ``<root>/<stage>/<key>/``; a run folder links to the entries it used
(``OUT/stages/<stage>``, a symbolic link).

A stage's cache key hashes its name, version, canonical parameters, any outside data it
depends on (frame files, weights file) and the keys of the artifacts it reads. A stage whose
directory holds that key, with every ``.npy`` matching its recorded SHA-256 and ``meta.json``
matching its own (every field: the record, the small values, which arrays are stacks), is
reused without running; anything else is recomputed. A stage directory is written under a
temporary name and renamed into place when complete, so a killed run never leaves one that
looks finished; an entry is never replaced while it is intact (another run may be reading it),
and a temporary one is removed only once the run that made it has ended. Beside the arrays:
``<artifact>.png`` previews (stacks as a contact sheet of frames at most 320 pixels wide). Small outputs are kept in ``meta.json`` as JSON; the typed ones
(``registration``: a list of :class:`~multisr.registration.burst.Registration`) are converted here, at
the cache's edge, and nowhere else.
"""
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..registration.burst import Registration
from .files import file_digest, remove, write_json
from .io import write_image
from .stacks import Stack

__all__ = ["Artifact", "stage_key", "cached_outputs", "new_entry", "save_stage", "link_stage", "value_from_json"]

_PREVIEWED = {"frames": "sheet", "hr": "sheet", "valid": "sheet", "result": "image"}
_LISTS_OF = {"registration": Registration}  # small outputs kept as lists of these types (to_json, from_json)


def _value_to_json(name: str, value):
    return [item.to_json() for item in value] if name in _LISTS_OF else value


def value_from_json(name: str, value):
    """A small output ``name`` as the stages use it, from its JSON in ``meta.json``."""
    return [_LISTS_OF[name].from_json(item) for item in value] if name in _LISTS_OF else value


@dataclass
class Artifact:
    key: str
    value: object = None
    path: Path | None = None  # .npy to read on first use

    def get(self):
        if self.value is None and self.path is not None:
            self.value = np.load(self.path)
        return self.value


def stage_key(name: str, version: str, params: dict, inputs: dict, fingerprint: str) -> str:
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


def cached_outputs(stage_dir: Path, key: str) -> tuple[dict, dict] | None:
    """``(meta, artifacts)`` of a stage whose directory holds ``key`` intact, else ``None``; the
    entry's folder is marked used now (its modification time: :func:`multisr.storage.cachedir.prune`).

    Arrays are not loaded here: each artifact reads its ``.npy`` when a later stage needs it.
    """
    try:
        meta = json.loads((stage_dir / "meta.json").read_text())
        entry = {name: meta[name] for name in ("key", "record", "values", "digests", "stacks")}
    except (OSError, ValueError, TypeError, KeyError):  # missing, damaged, or not an entry's meta.json
        return None
    if meta["key"] != key or meta.get("sha256") != _entry_digest(entry):  # every field, not only the arrays
        return None
    try:
        artifacts = {name: Artifact(f"{key}:{name}", value_from_json(name, value))
                     for name, value in meta["values"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):  # intact, but not what this version writes
        return None
    for name, digest in meta.get("digests", {}).items():
        path = stage_dir / f"{name}.npy"
        if not path.is_file() or file_digest(path) != digest:
            return None
        stacked = name in meta.get("stacks", [])
        artifacts[name] = Artifact(f"{key}:{name}", Stack(path)) if stacked else Artifact(f"{key}:{name}", path=path)
    os.utime(stage_dir)
    return meta, artifacts


def new_entry(stage_dir: Path) -> Path:
    """A new, empty temporary sibling of ``stage_dir`` to write the stage's entry into, named
    after this process (:func:`using` removes it once the process has ended)."""
    stage_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage_dir.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def _entry_digest(entry: dict) -> str:
    """SHA-256 of a stage entry's meta fields (canonical JSON): the key, the record, the small
    values, the arrays' digests and which arrays are stacks."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def save_stage(stage_dir: Path, meta: dict, outputs: dict, tmp: Path) -> dict:
    """Write a stage directory whole: into ``tmp`` (from :func:`new_entry`, where the stage wrote
    its stacks), then renamed into place, unless another run has meanwhile put an intact entry
    there (it is kept: a run may be reading it). Returns ``outputs`` with each stack at its final
    path."""
    values, digests, stacks = {}, {}, []
    for name, value in outputs.items():
        if isinstance(value, Stack):
            if value.path != tmp / f"{name}.npy":
                raise RuntimeError(f"stage wrote its stack {name!r} at {value.path}, not in its workspace")
            stacks.append(name)
        elif isinstance(value, np.ndarray):
            np.save(tmp / f"{name}.npy", value)
        else:
            values[name] = _value_to_json(name, value)
            continue
        digests[name] = file_digest(tmp / f"{name}.npy")
        kind = _PREVIEWED.get(name)
        if kind:  # bool masks too
            write_image(tmp / f"{name}.png", _contact_sheet(value) if kind == "sheet" else value.astype(np.float32))
    entry = {**meta, "values": values, "digests": digests, "stacks": stacks}
    write_json(tmp / "meta.json", {**entry, "sha256": _entry_digest(entry)})
    if cached_outputs(stage_dir, meta["key"]) is not None:
        remove(tmp)
    else:
        if stage_dir.exists() or stage_dir.is_symlink():  # a damaged entry: set aside, then removed
            trash = stage_dir.parent / f".old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(stage_dir, trash)
            remove(trash)
        os.replace(tmp, stage_dir)
    return {name: Stack(stage_dir / f"{name}.npy") if name in stacks else value for name, value in outputs.items()}


def link_stage(link: Path, entry: Path) -> None:
    """Point ``link`` (a run folder's ``stages/<stage>``) at the cache ``entry``, replacing whatever
    was there (an older link, a file, or a stage folder of a run made before the shared cache)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.parent / f".link-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.symlink(entry.resolve(), tmp)
    if link.is_dir() and not link.is_symlink():
        remove(link)
    os.replace(tmp, link)

"""The run directory: its layout, its life cycle during a run, and reading a finished one from a
notebook without recomputing anything.

Layout of ``OUT_DIR``::

    result.png          the pipeline's output, the reference frame at the run's scale (3x by
                        default), its channels and bit depth
    result.tif          the same pixels as a 16-bit TIFF (RAW bursts: what photo editors take)
    transforms.json     {"reference", "scale", "frames", "matrices"} (pipelines that register)
    run.json            parameters, versions, device, per-stage wall time and cache use
    stages/<name>       a link to the stage's entry in the stage cache (:mod:`multisr.storage.cache`)
    .lock               held (``flock``) by the run writing the folder: a second run is refused

``run.json`` is written last and records ``result_sha256``: a folder with a ``run.json``
describes the ``result.png`` beside it.

>>> run = multisr.open_run("runs/sample")
>>> run.stages                      # ['load', 'register', 'upscale', 'srcnn', 'realign', 'fuse']
>>> run["srcnn"]["hr"]              # (N, 3h, 3w[, 3]) float32, the SRCNN frames, exact
>>> run["register"]["registration"]  # a Registration per frame: matrix, scores, why left out
>>> run.result, run.transforms
"""
import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import UserError
from .cache import value_from_json
from .files import remove
from .io import read_image

__all__ = ["open_run", "Run", "StageOutput", "RUN_FILES", "check_out_dir", "locked", "clean_leftovers"]

RUN_FILES = ("result.png", "result.tif", "transforms.json", "run.json")


def check_out_dir(out_dir: Path, frames_dir: Path) -> None:
    """:class:`UserError` for an ``--out`` that cannot hold a run; creates it when missing."""
    if out_dir.resolve() == frames_dir.resolve():
        raise UserError(f"out_dir {out_dir}: expected a folder other than the frames folder (the result would "
                        "join the frames)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"out_dir {out_dir}: expected a folder for the run, but it or a folder above it is a file") from None
    for name in RUN_FILES:
        if (out_dir / name).is_dir():
            raise UserError(f"{out_dir / name}: expected a file (or nothing), found a folder; move it away")


@contextmanager
def locked(out_dir: Path, *, lock: str = ".lock", holder: str = "run"):
    """Hold ``out_dir``'s lock (``lock``, an advisory ``flock``) for a run (or another ``holder``:
    a batch holds ``.batch.lock``); another on the same folder is refused with :class:`UserError`
    at once rather than mixing its files with this one's. The operating system releases the lock
    when the process ends, however it ends."""
    with open(out_dir / lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"out_dir {out_dir}: another multisr {holder} is writing to this folder; wait for it to "
                            "finish or write elsewhere") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_leftovers(out_dir: Path) -> None:
    """Remove what a killed run left: temporary links and stage directories, scratch folders, and
    the hidden temporary files of the run's own files (``.result.*.png``, ...)."""
    partial = tuple(f".{Path(name).stem}." for name in RUN_FILES)
    for folder, prefixes in ((out_dir / "stages", (".tmp-", ".old-", ".link-")), (out_dir, (".scratch-", *partial))):
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.startswith(prefixes):
                    remove(entry)


class StageOutput:
    """One stage's stored output: ``meta`` (its meta.json), ``values`` (its small outputs, as the
    stages use them: ``registration`` a list of :class:`~multisr.registration.burst.Registration`) and
    its arrays by name (``output["hr"]``), each read from its ``.npy`` on first use."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.values = {name: value_from_json(name, value) for name, value in self.meta.get("values", {}).items()}
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def arrays(self) -> list[str]:
        """Names of the arrays this stage wrote."""
        return sorted(self.meta.get("digests", {}))

    def __getitem__(self, name: str):
        if name in self.values:
            return self.values[name]
        if name not in self.meta.get("digests", {}):
            raise KeyError(f"stage {self.folder.name!r} has no output {name!r}; it has {self.arrays + sorted(self.values)}")
        if name not in self._arrays:
            self._arrays[name] = np.load(self.folder / f"{name}.npy")
        return self._arrays[name]

    def __repr__(self) -> str:
        return f"StageOutput({self.folder.name!r}, arrays={self.arrays}, values={sorted(self.values)})"


class Run:
    """A finished run directory: ``record`` (run.json), ``stages``, ``run[name]``, ``result``, ``transforms``."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        path = self.out_dir / "run.json"
        if not path.is_file():
            raise UserError(f"{self.out_dir}: expected a run directory with run.json, found none; run multisr run first")
        try:
            self.record = json.loads(path.read_text())
            self.stages = [stage["name"] for stage in self.record["stages"]]
        except (ValueError, TypeError, KeyError) as error:
            raise UserError(f"{path}: expected the run record multisr writes, but it is damaged "
                            f"({type(error).__name__}: {error})") from None

    def __getitem__(self, name: str) -> StageOutput:
        if name not in self.stages:
            raise KeyError(f"no stage {name!r} in this run; its stages are {self.stages}")
        folder = self.out_dir / "stages" / name
        if folder.is_symlink() and not folder.exists():
            raise UserError(f"{folder}: its entry in the stage cache ({folder.readlink()}) is gone (the cache was "
                            "cleared, or later runs removed it to keep the cache within $MULTISR_CACHE_LIMIT); run "
                            "the pipeline again to see its stages")
        if not (folder / "meta.json").is_file():
            raise UserError(f"{folder}: no stored output; was the run made without the stage cache?")
        return StageOutput(folder)

    @property
    def result(self) -> np.ndarray:
        """The result image as written (``result.png``), float32 in [0, 1]."""
        return read_image(self.out_dir / "result.png")[0]

    @property
    def transforms(self) -> dict | None:
        """``transforms.json`` (matrices as ``(N, 3, 3)`` array), or ``None`` for pipelines that do not register."""
        path = self.out_dir / "transforms.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["matrices"] = np.array(data["matrices"])
        return data

    def __repr__(self) -> str:
        return f"Run({str(self.out_dir)!r}, pipeline={self.record['pipeline']!r}, stages={self.stages})"


def open_run(out_dir: Path) -> Run:
    """Open a run directory written by ``multisr run`` (or :func:`multisr.runs.runner.run_pipeline`)."""
    return Run(out_dir)

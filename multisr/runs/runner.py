"""Running a pipeline on a burst read from files into a run directory (:mod:`multisr.storage.rundir`):
the run engine (:mod:`multisr.runs.engine`) through the stage cache, then the run's files."""
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging.geometry import in_box
from ..imaging.ocr import OCR_INSTALL, ocr_available
from ..imaging.resize import upscale
from ..params import DEFAULT_FRAMES, DEFAULT_REFERENCE, SCALE
from ..sr.device import resolve_device, warm_up
from ..storage.cachedir import cache_root, check_cache_folder, using
from ..storage.files import file_digest, remove, write_json
from ..storage.io import max_pixels, write_image
from ..storage.rundir import check_out_dir, clean_leftovers, locked
from .engine import box_in_window, check_weights, full_frame_matrices, record_of, result_of, run_steps, target_steps
from .loading import check_box_early
from .pipeline import Pipeline
from .reading import read_target
from .stages import STAGES, moving_mask

__all__ = ["run_pipeline"]


def run_pipeline(
    pipeline: Pipeline,
    frames_dir: Path,
    *,
    out_dir: Path,
    n: int = DEFAULT_FRAMES,
    start: int = 0,
    reference: int | str = DEFAULT_REFERENCE,
    use_cache: bool = True,
    cache_dir: Path | None = None,
    device: str = "auto",
    max_disk_bytes: int | None = None,
    roi: str | None = None,
    read: bool = False,
    scale: int = SCALE,
) -> dict:
    """Run ``pipeline`` on ``n`` frames of ``frames_dir`` (a folder of images in natural order, or a
    video file) from frame ``start`` on (``n`` ``"all"``: every frame from there); write the run
    into ``out_dir``: ``result.png``, with the reference frame's alpha channel (upscaled with
    MATLAB's bicubic) when its file has transparent pixels, ``transforms.json`` and ``run.json``.

    Returns the run record that is also written to ``out_dir/run.json``: parameters,
    versions, device, and per stage its key, whether it came from the cache, its wall time in
    seconds and its output shapes; ``excluded`` lists frames left out of the burst; and
    ``disk_bytes``, about how much the run wrote under ``out_dir`` at most. A run that would
    write more than ``max_disk_bytes``, or than the disk has free once the cache entries it does
    not use are removed (:func:`multisr.storage.cachedir.make_room`), is refused before it writes.
    With ``use_cache``, each stage is taken from the stage cache (:mod:`multisr.storage.cache`; its
    folder ``cache_dir``, by default :func:`multisr.storage.cachedir.cache_root`'s) when an earlier run of
    any pipeline computed it, else computed and kept there; ``OUT/stages/<stage>`` links to it.
    ``reference`` is the frame to super-resolve: its index, or ``"sharpest"``
    (:func:`multisr.registration.frame_selection.sharpest_frame`); ``run.json``'s ``reference_frame`` names it.
    ``roi``: ``"X,Y,W,H"``, a box in the reference frame's pixels (``reference`` an index): the
    target in it is tracked through the burst (it may move on its own), every stage works on
    windows around it, and ``result.png`` is the box at ``scale`` x (2, 3 or 4), the same pixels
    as ``[sY:s(Y+H), sX:s(X+W)]`` of a whole-frame result; ``transforms.json`` holds the target's
    motion and ``run.json`` the box (``target``).
    """
    started = time.perf_counter()
    reference = STAGES["load"].params["reference"].check("reference", reference)
    n = STAGES["load"].params["n"].check("n", n)
    scale = STAGES["load"].params["scale"].check("scale", scale)
    check_weights(pipeline, scale)  # a model not shipped for the scale: said before the frames are read
    max_pixels()  # the environment's limit is checked though the frames may come from the stage cache
    torch_device = resolve_device(device)
    out_dir = Path(out_dir)
    steps = [(STAGES["load"], {"folder": str(Path(frames_dir).resolve()), "n": n, "start": start,
                               "reference": reference, "scale": scale})]
    steps += [*target_steps(roi, reference), *pipeline.steps]
    if read and roi is None:
        raise UserError("--read: expected a box to read (--roi X,Y,W,H around the plate), got none")
    if read and not ocr_available():
        raise UserError(f"--read: reading the plate needs the optional OCR, which is not installed: {OCR_INSTALL}")
    if roi is not None:
        check_box_early(roi, Path(frames_dir))
    if use_cache:
        check_cache_folder(cache_root(cache_dir))
    check_out_dir(out_dir, Path(frames_dir))
    with locked(out_dir), (using(cache_root(cache_dir)) if use_cache else nullcontext()) as cache:
        clean_leftovers(out_dir)
        # without the cache, stacks go to a scratch folder that the run removes when it ends
        scratch = None if use_cache else out_dir / f".scratch-{uuid.uuid4().hex[:8]}"
        # the GPU's start-up overlaps the CPU stages before the first network stage
        warming = warm_up(torch_device) if any(stage.uses_device for stage, _ in steps) else None
        try:
            store, records = run_steps(steps, out_dir, cache=cache, scratch=scratch, torch_device=torch_device,
                                        max_disk_bytes=max_disk_bytes)
            return _finish(pipeline, store, records, out_dir, torch_device, started, use_cache=use_cache, read=read)
        finally:
            if warming is not None:
                warming.join()
            if scratch is not None:
                remove(scratch)


def _reading(store: dict, result: np.ndarray) -> dict:
    """:func:`multisr.runs.reading.read_target` of a run with a box: its windows, their motion
    (the register stage's where the pipeline registers, else the tracker's) and the box in the
    reference window's pixels."""
    matrices = store["matrices"].get() if "matrices" in store else store["known"].get()
    return read_target(result, store["frames"].get(), matrices, box_in_window(store),
                       moving=moving_mask(store["target"].get()), scale=store["scale"].get())


def _finish(pipeline: Pipeline, store: dict, records: list, out_dir: Path, torch_device, started: float, *,
            use_cache: bool, read: bool = False) -> dict:
    """Write ``result.png`` (and for RAW frames ``result.tif``, the same 16-bit pixels),
    ``transforms.json`` and ``run.json``; return the run record.

    The run folder never describes a result it does not hold: the previous ``run.json`` goes
    first, then the result and the transforms are written (each atomically; a pipeline without
    transforms removes an old ``transforms.json``), and ``run.json`` comes last, with the
    result's SHA-256. A run killed on the way leaves no ``run.json``. Without the cache, the
    stage entries of an earlier run go too, so that nothing opens them as this run's. With
    ``read``, ``run.json``'s ``reading`` is what the OCR reads in the box
    (:func:`multisr.runs.reading.read_target`)."""
    result = result_of(pipeline, store)
    names, reference, scale = store["names"].get(), store["reference"].get(), store["scale"].get()
    target = store["target"].get()
    transforms = ({"reference": reference, "scale": scale, "frames": names, "matrices": full_frame_matrices(store).tolist()}
                  if "matrices" in store else None)
    if transforms is not None and target is not None:
        transforms["roi"] = target["roi"]
    run = record_of(pipeline, store, records, torch_device, started)
    if read:
        run["reading"] = _reading(store, result)
    bit_depth = store["bit_depth"].get()
    raw = "raw" in store["source"].get()  # RAW frames: a TIFF too
    alpha = store["alpha"].get()
    if alpha is not None:
        alpha = np.clip(upscale(alpha, scale), 0.0, 1.0)
        if target is not None:
            alpha = in_box(alpha, target["roi"], scale)
    store.clear()  # the frames and intermediate arrays: freed before the result is converted to write
    (out_dir / "run.json").unlink(missing_ok=True)
    if not use_cache:
        remove(out_dir / "stages")
    write_image(out_dir / "result.png", result, bit_depth=bit_depth, alpha=alpha)
    if raw:
        write_image(out_dir / "result.tif", result, bit_depth=bit_depth)
        run["result_tif_sha256"] = file_digest(out_dir / "result.tif")
    else:  # an earlier RAW run's
        (out_dir / "result.tif").unlink(missing_ok=True)
    if transforms is None:
        (out_dir / "transforms.json").unlink(missing_ok=True)
    else:
        write_json(out_dir / "transforms.json", transforms)
    run["result_sha256"] = file_digest(out_dir / "result.png")
    write_json(out_dir / "run.json", run)
    return run

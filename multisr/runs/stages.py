"""The stages a pipeline is made of: plain functions over the data contract, each with a name,
a version and its parameters' defaults.

A stage reads named artifacts (arrays or small JSON values) and writes new ones. The artifacts
that flow through a run:

- ``frames``: ``(N, h, w[, 3])`` float32 low-resolution frames (from a folder of images or a
  video file; RAW files developed by LibRaw); ``mosaic``, ``colours``: RAW frames' linear
  mosaics ``(N, h, w)`` float32 and each pixel's colour (``(h, w)``, or ``(N, h, w)`` once cut
  to a target's windows) uint8, else ``None``; ``names``: their file names (``clip.mp4#K`` for frame K of a video); ``source``:
  where they came from (the folder or file, the first frame, the count; a video's decoded digest);
  ``bit_depth``: 8 or 16; ``reference``: index of the reference frame (``load`` takes an index,
  or ``"sharpest"``: :func:`multisr.registration.frame_selection.sharpest_frame`); ``scale``: the
  magnification ``s`` (2, 3 or 4; ``load``'s parameter, so every later stage's cache key holds it).
- ``matrices``: ``(N, 3, 3)`` registration, reference LR coordinates -> frame k's (geometry
  contract); ``registration``: per-frame scores and the reasons frames were left out.
- ``hr``: ``(N, sh, sw[, 3])`` float32 high-resolution frames (after upscale, SRCNN, realign);
  ``valid``: ``(N, sh, sw)`` bool, False where a re-aligned frame has no real sample. Both are
  :class:`~multisr.storage.stacks.Stack` files that the stages read and write in bands of rows, so a
  run's memory does not grow with the frame size.
- ``result``: ``(sh, sw[, 3])`` float32, the pipeline's output (``fuse`` or ``reconstruct``);
  ``reconstruct`` also writes ``matrices`` again, refined against its solution, and ``solve``
  (the PSF it used, the cross-validation errors, the fraction of each frame's samples kept);
  ``restore`` runs a network trained on reconstructions over the result's Y.

Bump a stage's ``version`` whenever its output for the same inputs changes: the version is part
of the cache key.
"""
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..errors import UserError
from ..imaging.color import grey_from_luma, luma, rgb_to_ycbcr, ycbcr_to_rgb
from ..imaging.develop import develop, undevelop
from ..imaging.geometry import to_high_resolution, warp_rows
from ..imaging.resize import KERNELS, upscale
from ..imaging.subsampling import detect_chroma_subsampling
from ..params import (DEFAULT_FRAMES, DEFAULT_REFERENCE, SCALE, SCALES, Param, check_frame_count, check_reference,
                      defaults_from)
from ..progress import progress_bar
from ..reconstruction.agreement import (FRAME_FOOTPRINT, TARGET_FOOTPRINT, agreeing_samples, frame_weights,
                                        match_brightness, repeated_rows)
from ..reconstruction.chroma import SUBSAMPLINGS
from ..reconstruction.fusion import FUSIONS
from ..reconstruction.merge import KERNEL_DEFAULTS, merge
from ..reconstruction.mosaic import filled_mosaic
from ..reconstruction.observation import parse_psf
from ..reconstruction.reconstruct import reconstruct
from ..registration.alignment import plan_for_size
from ..registration.burst import COARSE_METHODS, MODELS, REFINEMENTS, register_burst
from ..registration.tracking import MARGIN, check_roi, cut_to_target, parse_roi, track_target
from ..sr.inference import sharpen_frames
from ..sr.weights import DEFAULT_MODEL, load_model, weights_path
from ..storage.files import file_digest
from ..storage.stacks import Stack, band_rows
from ..threads import in_threads, workers
from .loading import burst_fingerprint, load_burst

__all__ = ["Stage", "STAGES", "NETWORK_STAGES", "moving_mask"]

UPSCALE_MARGIN = 4  # LR rows a band of the upscale reads beyond its own: the widest kernel's reach
# LR pixels along a target's windows whose samples do not judge its PSF: the window's margin around the box
# (the background, which the target's motion misplaces) and the 2 a cut of the PSF's choice adds around it
PSF_MARGIN = MARGIN + 2
NETWORK_STAGES = ("srcnn", "restore")  # the stages whose "model" is a network's weights, per scale


@dataclass(frozen=True)
class Stage:
    """A named, versioned step.

    ``run(**artifacts_read, **params, device=..., workspace=...)`` returns a dict of the
    artifacts written; ``params`` declares each parameter (:class:`~multisr.params.Param`), the one place its
    default and allowed values are written, checked before any stage runs.
    ``fingerprint(params, scale)`` names outside data the output depends on (file contents: the
    frames, the weights for the run's ``scale``), for the cache key. ``uses_device`` stages get the run's torch device (not part of
    the key); ``uses_workspace`` stages get ``workspace``, an empty folder where they write their
    :class:`~multisr.storage.stacks.Stack` outputs as ``<artifact>.npy`` (the stage's cache entry while
    it is written, so the stack is never copied). A stage may overwrite an array it reads when it
    writes the artifact of the same name (``restore`` does): the runner has saved the array before
    handing it on, and no later stage reads the replaced version.
    """

    name: str
    version: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable
    params: dict[str, Param] = field(default_factory=dict)
    fingerprint: Callable[[dict, int], str] | None = None
    uses_device: bool = False
    uses_workspace: bool = False

    @property
    def defaults(self) -> dict:
        """Every parameter's default, by name."""
        return {name: param.default for name, param in self.params.items()}


def _register(*, frames, reference, names, known, coarse, iterations, refine, model, min_success, min_correlation,
              min_sharpness, max_scale_change, max_shift_fraction) -> dict:
    with progress_bar(total=len(frames), desc="register", unit="frame", leave=False) as bar:
        results = register_burst(frames, reference=reference, coarse=coarse, iterations=iterations, refine=refine,
                                 model=model, min_success=min_success, min_correlation=min_correlation, min_sharpness=min_sharpness,
                                 max_scale_change=max_scale_change, max_shift_fraction=max_shift_fraction,
                                 known=known, workers=workers(), progress=lambda k: bar.update())
    registration = [replace(result, frame=name) for name, result in zip(names, results)]
    left_out = [r for r in registration if r.excluded]
    if len(registration) - len(left_out) < 2:  # stop here, before the costly stages
        shown = "; ".join(f"{r.frame}: {r.excluded}" for r in left_out[:2])
        more = f"; and {len(left_out) - 2} more" if len(left_out) > 2 else ""
        raise UserError(f"frames: expected at least 2 frames that register, but {len(left_out)} of "
                        f"{len(registration)} were left out: {shown}{more}")
    return {"matrices": np.stack([r.matrix for r in results]), "registration": registration}


def _target(*, frames, names, reference, bit_depth, mosaic, colours, roi) -> dict:
    """The ``target`` stage (runs given a box, ``--roi``): the box tracked through the burst
    (:func:`multisr.registration.tracking.track_target`), the frames it is found in cut to windows around it,
    their motion ``known`` to the register stage; ``target`` records the box, each window's
    offset, the target's motion in the frames' own pixels and the frames it was lost in, and for
    colour frames how their chroma was stored as their whole pixels tell it (a window has too few)."""
    box = check_roi(parse_roi(roi), frames.shape[1:3])
    if not isinstance(reference, int):
        raise UserError(f"reference: expected a frame index with a box (the frame it is drawn on), got {reference!r}")
    with progress_bar(total=1, desc="track target", unit="burst", leave=False) as bar:
        tracked = track_target(frames, reference, box)
        bar.update()
    kept = [k for k, reason in enumerate(tracked.reasons) if reason is None]
    lost = [{"frame": names[k], "reason": reason} for k, reason in enumerate(tracked.reasons) if reason is not None]
    if len(lost) * 2 > len(frames):
        shown = "; ".join(f"{entry['frame']}: {entry['reason']}" for entry in lost[:2])
        raise UserError(f"roi: expected the target in at least half the frames, but it was lost in {len(lost)} of "
                        f"{len(frames)} ({shown}); draw the box on the target in the reference frame")
    windows, matrices, offsets = cut_to_target(frames, tracked.matrices[kept], box, kept.index(reference), indices=kept)
    if mosaic is not None:  # RAW frames' mosaics, cut as the frames (each window's own colour layout)
        height, width = windows.shape[1:3]
        colours = np.broadcast_to(colours, mosaic.shape)
        mosaic, colours = (np.stack([array[k, y : y + height, x : x + width] for k, (x, y) in zip(kept, offsets)])
                           for array in (mosaic, colours))
    info = {"roi": list(box), "window": [int(windows.shape[2]), int(windows.shape[1])],
            "offsets": offsets.tolist(), "frames": [names[k] for k in kept], "left_out": lost,
            "correlation": [None if not np.isfinite(c) else round(float(c), 4) for c in tracked.correlations]}
    if tracked.moving is not None:  # rows of the box, "1" where a pixel moves with the target
        info["moving"] = ["".join("1" if pixel else "0" for pixel in row) for row in tracked.moving]
    if frames.ndim == 4 and mosaic is None:
        info["chroma_subsampling"] = detect_chroma_subsampling([frames[k] for k in kept], bit_depth=bit_depth).as_dict()
    return {"frames": windows, "names": info["frames"], "reference": kept.index(reference), "known": matrices,
            "target": info, "mosaic": mosaic, "colours": colours}


def _select_reference(*, frames, reference, names) -> dict:
    return {"frames": frames[reference : reference + 1], "names": [names[reference]], "reference": 0}


def _upscale(*, frames, scale, kernel, workspace) -> dict:
    count, height, width = frames.shape[:3]
    hr = Stack.create(workspace / "hr.npy", (count, scale * height, scale * width, *frames.shape[3:]))
    rows = max(1, band_rows(scale * width, workers=workers()) // scale)  # LR rows a band

    def one(item: tuple[int, int]) -> None:  # a band, with the kernel's reach of its neighbours' rows
        k, top = item
        bottom = min(top + rows, height)
        above, below = max(0, top - UPSCALE_MARGIN), min(height, bottom + UPSCALE_MARGIN)
        band = upscale(frames[k, above:below], scale, kernel=kernel)
        hr[k, scale * top : scale * bottom] = band[scale * (top - above) : scale * (bottom - above)]

    in_threads(one, [(k, top) for k in range(count) for top in range(0, height, rows)])
    return {"hr": hr}


def _srcnn(*, hr, scale, model, batch_size, device, workspace) -> dict:
    network = load_model(model, scale=scale, device=str(device))
    sharpened = Stack.create(workspace / "hr.npy", hr.shape)
    with progress_bar(total=len(hr), desc="srcnn", unit="frame", leave=False) as bar:
        sharpen_frames(hr, network, batch_size=batch_size, progress=bar.update, out=sharpened)
    return {"hr": sharpened}


def _restore(*, result, scale, model, device) -> dict:
    network = load_model(model, scale=scale, device=str(device))
    # in place (see Stage): a 4000x3000 result is 1.3 GB
    return {"result": sharpen_frames(result[None], network, out=result[None])[0]}


def _srcnn_fingerprint(params: dict, scale: int) -> str:
    return file_digest(weights_path(params["model"], scale))


def _agreement_footprint(target: dict | None) -> tuple[float, int]:
    """How far the test of a sample's agreement with the reference reaches (:mod:`multisr.reconstruction.agreement`):
    a target's windows are judged finer, so that the background around a small target does not decide for it."""
    return FRAME_FOOTPRINT if target is None else TARGET_FOOTPRINT


def _realign(*, hr, frames, scale, reference, matrices, registration, target, workspace) -> dict:
    """Every SR frame warped onto the reference's HR grid; ``valid`` is False where a frame has no
    real sample, and where it disagrees with the reference by more than noise and a small
    misregistration explain (:func:`multisr.reconstruction.agreement.frame_weights` on the LR frames: something
    that moves on its own keeps the reference's samples instead of leaving ghosts in the median)."""
    count, height, width = hr.shape[:3]
    aligned = Stack.create(workspace / "hr.npy", hr.shape)
    valid = Stack.create(workspace / "valid.npy", (count, height, width), dtype=bool)
    matrices_hr = to_high_resolution(matrices, scale)
    rows = band_rows(width, workers=workers())
    agreeing, moving = agreeing_samples(frames, matrices, registration, reference,
                                        footprint=_agreement_footprint(target))

    def one(item: tuple[int, int]) -> None:
        k, top = item
        bottom = min(top + rows, height)
        band, inside = warp_rows(lambda first, stop: hr[k, first:stop], (height, width), matrices_hr[k], width,
                                 (top, bottom))
        aligned[k, top:bottom] = band
        agrees, _ = warp_rows(lambda first, stop: repeated_rows(agreeing[k], first, stop, scale), (height, width),
                              matrices_hr[k], width, (top, bottom))
        valid[k, top:bottom] = inside & (agrees > 0.5) & (not registration[k].excluded)

    in_threads(one, [(k, top) for k in range(count) for top in range(0, height, rows)])
    return {"hr": aligned, "valid": valid, "moving": moving}


def _fuse(*, hr, valid, method) -> dict:
    return {"result": FUSIONS[method](hr, valid)}


def _chroma_subsampling(source: dict, target: dict | None, frames: np.ndarray, used: list[int],
                        bit_depth: int) -> tuple[str, dict]:
    """How the frames' chroma was stored, as their files or video stream say, or else as their pixels
    tell (:func:`multisr.imaging.subsampling.detect_chroma_subsampling`; a target's: the whole frames',
    as the target stage found it): the subsampling and its evidence."""
    declared = source.get("chroma_subsampling")
    if declared is not None:
        return declared, {"told_by": "video stream" if "stream" in source else "files"}
    if target is not None and "chroma_subsampling" in target:
        return target["chroma_subsampling"]["decision"], target["chroma_subsampling"]
    evidence = detect_chroma_subsampling([frames[k] for k in used], bit_depth=bit_depth)
    return evidence.decision, evidence.as_dict()


def moving_mask(target: dict) -> np.ndarray | None:
    """The box's pixels that move with the target, ``(h, w)`` bool, as the ``target`` stage recorded
    them (``target["moving"]``), or ``None`` where every pixel of the box does."""
    moving = target.get("moving")
    return None if moving is None else np.array([[c == "1" for c in row] for row in moving], bool)


def _target_region(target: dict, reference: int, shape: tuple[int, int]) -> np.ndarray:
    """``shape`` bool over the reference window's pixels, as :func:`multisr.reconstruction.reconstruct.reconstruct`'s
    ``refine_region``: the target's box, but its pixels the tracker found standing still (``target["moving"]``)."""
    x, y, w, h = target["roi"]
    ox, oy = target["offsets"][reference]
    moving = moving_mask(target)
    region = np.zeros(shape, bool)
    region[y - oy : y - oy + h, x - ox : x - ox + w] = True if moving is None else moving
    return region


def _reconstruct(*, frames, bit_depth, scale, matrices, registration, reference, mosaic, colours, source, target, psf, tv_weight, model,
                 refine_rounds, chroma, chroma_subsampling, demosaic, device) -> dict:
    used = [k for k, r in enumerate(registration) if not r.excluded]
    # a target's motion is refined on the target's own pixels, in the model they support: on the whole
    # window, the background the target crosses too, it drifts to the background (a plate 48x24 px in a
    # 64x40 window went 0.05 -> 1.6 LR px off; a plate 48x10 px in a 64x26 window read 'ROUSX' for 'AR98SXK')
    region = None
    if target is not None:
        region = _target_region(target, reference, frames.shape[1:3])
        model = plan_for_size(target["roi"][:1:-1], (), model)[1]
    colour = frames.ndim == 4
    burst_mosaic = None
    if mosaic is not None and demosaic == "burst":  # RAW frames: Y (from LibRaw's development) gives the
        # motion, weights, noise and PSF, then the linear RGB is solved from the mosaics and developed as LibRaw does
        camera_to_srgb = source["raw"]["camera_to_srgb"]
        colours = np.broadcast_to(colours, mosaic.shape)  # a frame's own layout where a window was cut from it
        filled = np.empty((len(used), *frames.shape[1:]), np.float32)
        for i, k in enumerate(used):  # a frame at a time: undeveloping makes temporaries of its size
            filled[i] = filled_mosaic(mosaic[k], colours[k], undevelop(frames[k], camera_to_srgb))
        burst_mosaic = (filled, colours[used])
        del filled
    # chroma "burst": Cb and Cr solved from every frame too; "reference": the reference's, upscaled
    # by bicubic, as in the SRCNN paper
    if colour and chroma == "burst" and burst_mosaic is None:  # each frame converted once, for its Y and its chroma
        ycbcr = np.stack([rgb_to_ycbcr(frames[k]) for k in used])
        y, burst_chroma = ycbcr[..., 0], ycbcr[..., 1:]
    else:
        y, burst_chroma = np.stack([luma(frames[k]) for k in used]), None
    told = {"told_by": "option"}  # how the chroma's subsampling was known: named, the files', or the pixels'
    if chroma_subsampling == "auto" and burst_chroma is not None:
        chroma_subsampling, told = _chroma_subsampling(source, target, frames, used, bit_depth)
    modelled = chroma_subsampling if chroma_subsampling in SUBSAMPLINGS else None  # "4:4:4" is full
    demosaicked = burst_mosaic is not None
    with progress_bar(total=1 + refine_rounds + (burst_chroma is not None or demosaicked), desc="reconstruct",
                      unit="solve", leave=False) as bar:
        solved, refined, info = reconstruct(y, matrices[used], anchor=used.index(reference), scale=scale, psf=psf,
                                            tv_weight=tv_weight, model=model, refine_rounds=refine_rounds,
                                            workers=workers(), device=str(device), chroma=burst_chroma,
                                            chroma_subsampling=modelled, mosaic=burst_mosaic,
                                            place_width=target is None, psf_margin=0 if target is None else PSF_MARGIN,
                                            refine_region=region,
                                            footprint=_agreement_footprint(target),
                                            progress=bar.update)
    burst_mosaic = None  # the filled mosaics: freed before the result is developed
    matrices = matrices.copy()
    matrices[used] = refined
    if demosaicked:
        return {"result": develop(solved, camera_to_srgb), "matrices": matrices, "solve": {**info, "demosaic": "burst"}}
    if not colour:
        return {"result": grey_from_luma(solved), "matrices": matrices, "solve": info}
    info["chroma"] = chroma
    if "raw" in source:  # RAW frames reconstructed from LibRaw's development (asked, or no mosaic to solve from)
        info["demosaic"] = "library"
    if burst_chroma is not None:
        info["chroma_subsampling"] = chroma_subsampling
        info["chroma_subsampling_evidence"] = told
        return {"result": ycbcr_to_rgb(solved, out=solved), "matrices": matrices, "solve": info}
    # the reference's chroma upscaled (of the LR chroma: the same numbers as the chroma of the
    # bicubic RGB, since both maps are linear, without an HR RGB copy in memory)
    ycbcr = np.empty((*solved.shape, 3), np.float32)
    ycbcr[..., 0] = solved
    del solved
    reference_chroma = rgb_to_ycbcr(frames[reference])
    for channel in (1, 2):  # one high-resolution channel at a time
        ycbcr[..., channel] = upscale(reference_chroma[..., channel], scale)
    return {"result": ycbcr_to_rgb(ycbcr, out=ycbcr), "matrices": matrices, "solve": info}


def _merge(*, frames, scale, matrices, registration, reference, target, robust, device, **kernel) -> dict:
    """The ``merge`` stage: every frame's samples accumulated onto the reference's HR grid with
    structure-shaped kernels (``kernel``: the stage's parameters named in
    :data:`~multisr.reconstruction.merge.KERNEL_DEFAULTS`; :func:`multisr.reconstruction.merge.merge`),
    their brightness matched to the reference's, each sample weighted by its agreement with the
    reference (``robust``; 0 where it disagrees, :func:`multisr.reconstruction.agreement.frame_weights`)."""
    used = [k for k, r in enumerate(registration) if not r.excluded]
    anchor = used.index(reference)
    brightness = np.tile(np.array([1.0, 0.0]), (len(frames), 1))
    footprint = _agreement_footprint(target)
    matched, brightness[used] = match_brightness(np.stack([luma(frames[k]) for k in used]), matrices[used], anchor,
                                                 workers=workers(), footprint=footprint)
    weights = np.zeros(frames.shape[:3], np.uint8)  # a frame left out has none
    # as agreeing_samples weighs them for the other fusions, from the Y just matched
    weights[used] = (frame_weights(matched, matrices[used], anchor, workers=workers(), footprint=footprint)
                     if robust else 1)
    del matched
    with progress_bar(total=1, desc="merge", unit="burst", leave=False) as bar:
        merged = merge(frames, matrices, weights, anchor=reference, scale=scale, brightness=brightness,
                       device=str(device), kernel=kernel)
        bar.update()
    return {"result": np.clip(merged, 0.0, 1.0, out=merged)}


STAGES = {
    stage.name: stage
    for stage in [
        Stage("load", "8", (), ("frames", "names", "bit_depth", "reference", "source", "known", "alpha", "mosaic",
                                "colours", "target", "scale"), load_burst,
              {"folder": Param(str, default=""), "n": Param((int, str), check_frame_count, default=DEFAULT_FRAMES),
               "start": Param(int, low=0, default=0),
               "reference": Param((int, str), check_reference, default=DEFAULT_REFERENCE),
               "scale": Param(int, SCALES, default=SCALE)},
              burst_fingerprint),
        Stage("register", "8", ("frames", "reference", "names", "known"), ("matrices", "registration"), _register,
              defaults_from(register_burst, {
                  "coarse": Param(str, COARSE_METHODS), "iterations": Param(int, low=1, high=100),
                  "refine": Param(str, REFINEMENTS), "model": Param(str, MODELS),
                  "min_success": Param(float, low=0, high=1), "min_correlation": Param(float, low=-1, high=1),
                  "min_sharpness": Param(float, low=0, high=1), "max_scale_change": Param(float, low=0, high=10),
                  "max_shift_fraction": Param(float, low=0, high=1)})),
        Stage("target", "6", ("frames", "names", "reference", "bit_depth", "mosaic", "colours"),
              ("frames", "names", "reference", "known", "target", "mosaic", "colours"),
              _target, {"roi": Param(str, parse_roi, default="")}),
        Stage("select_reference", "1", ("frames", "reference", "names"), ("frames", "names", "reference"),
              _select_reference),
        Stage("upscale", "3", ("frames", "scale"), ("hr",), _upscale, defaults_from(upscale, {"kernel": Param(str, KERNELS)}),
              uses_workspace=True),
        Stage("srcnn", "4", ("hr", "scale"), ("hr",), _srcnn,
              {"model": Param(str, default=DEFAULT_MODEL), "batch_size": Param(int, low=1, high=1024, default=4)},
              _srcnn_fingerprint, uses_device=True, uses_workspace=True),
        Stage("realign", "6", ("hr", "frames", "scale", "reference", "matrices", "registration", "target"),
              ("hr", "valid", "moving"),
              _realign,
              uses_workspace=True),
        Stage("fuse", "2", ("hr", "valid"), ("result",), _fuse,
              {"method": Param(str, tuple(FUSIONS), default="median")}),
        Stage("reconstruct", "20", ("frames", "bit_depth", "scale", "matrices", "registration", "reference", "mosaic", "colours",
                                    "source", "target"),
              ("result", "matrices", "solve"), _reconstruct, defaults_from(reconstruct, {
                  "psf": Param(str, parse_psf), "tv_weight": Param(float, low=0), "model": Param(str, MODELS),
                  "refine_rounds": Param(int, low=0, high=10)}) | {
                  "chroma": Param(str, ("burst", "reference"), default="burst"),
                  "chroma_subsampling": Param(str, ("auto", "none", "4:4:4", *SUBSAMPLINGS), default="auto"),
                  "demosaic": Param(str, ("burst", "library"), default="burst")},
              uses_device=True),
        Stage("merge", "2", ("frames", "scale", "matrices", "registration", "reference", "target"), ("result",), _merge,
              {"robust": Param(int, (0, 1), default=1),
               **{name: Param(float, low=0.0, high=100.0, default=value) for name, value in KERNEL_DEFAULTS.items()}},
              uses_device=True),
        Stage("restore", "1", ("result", "scale"), ("result",), _restore, {"model": Param(str, default="restore-mix")},
              _srcnn_fingerprint, uses_device=True),
    ]
}

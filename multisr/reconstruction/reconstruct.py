"""Multi-frame reconstruction on the high-resolution grid: a fast, robust least-squares solve.

The model. Frame k's low-resolution pixel ``q`` (frame-k LR coordinates) sees the unknown
high-resolution image X (reference frame's HR coordinates) blurred by the point-spread function
``h`` of the burst and sampled at ``P_k(q) = C inv(A_k) q``::

    y_k(q) = (h * X)(P_k(q)) + noise

where ``A_k`` is the registration (reference LR -> frame k LR, a homography, geometry contract)
and ``C`` the LR -> HR pixel-centre map. Blurring and moving commute for the near-identity
motions of a burst (exactly for shifts and turns of a round ``h``), so each frame costs one
sampling of ``h * X`` at its own pixels, not a warp of the whole HR grid: the sampling is one
sparse matrix ``S`` (bicubic, 16 entries a sample), built once per motion estimate
(:mod:`multisr.reconstruction.observation`: the PSFs and the sampling). With ``psf="auto"`` the burst tells
its own blur: the candidate of :data:`multisr.reconstruction.observation.AUTO_CANDIDATES` that predicts frames
left out of the solve best (3-fold cross-validation on a central crop, :func:`choose_psf`). It
is chosen after the motion is refined (below): the registration's errors of 0.02-0.03 LR pixels
blur the data as a wider PSF would, and led the choice one step too wide on 4 of 10 SR-protocol
bursts made with MATLAB's kernel (up to 2 dB lost).

Each frame's brightness is first matched to the reference's (a gain and an offset: cameras
change exposure within a burst; :mod:`multisr.reconstruction.agreement`). The solve (:mod:`multisr.reconstruction.solve`)
minimises::

    sum w (S (h * X) - y)^2 / sum w  +  tv_weight * mean TV(X)

by iteratively reweighted least squares: a few rounds of Jacobi-preconditioned conjugate
gradients on the quadratic problem with the total variation's weights frozen. The prior's weight grows with the noise the
first solve's residual shows (real bursts are noisier than benchmarks). ``w`` is 1 for the
reference frame and, for the other frames, 0 where the frame disagrees with the reference by
more than noise or a small misregistration can explain (a moving object, a person: the
reference's content is kept there, as Wronski et al. 2019 do with their robustness mask),
else 1.

Then every frame's motion is refined against the blurred solution (noise-free and not aliased,
unlike the reference frame that registration had to use) by robust Lucas-Kanade in the chosen
motion model, the PSF is chosen (with ``"auto"``; the first solve uses
:data:`PROVISIONAL_PSF`), and the solve runs again. Every solve runs in tiles of the reference's LR grid,
one per core at a time (:func:`multisr.reconstruction.tiles.solve_tiled`), so memory goes with the tile, not the frame. The
solves run in torch on the device given (on the CPU with scipy's and OpenCV's products); the rest
is numpy and OpenCV on the CPU.
"""
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import cv2
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..imaging.resize import upscale
from ..params import SCALE
from ..registration.alignment import MODELS, align, gradients
from .agreement import FRAME_FOOTPRINT, frame_weights, match_brightness, moving_region
from .chroma import solve_chroma
from .mosaic import GREEN, solve_mosaic
from .observation import AUTO_CANDIDATES, blur, burst_sampling, grid_pad, nyquist_gain, parse_psf, psf_kernel, to_grid
from .solve import predicted_frames, solve_burst
from .tiles import DEVICE_TILE, TILE, cut_window, solve_tiled

__all__ = ["choose_psf", "psf_range", "refine_motion", "reconstruct", "PROVISIONAL_PSF", "UNCERTAIN_WIDTHS"]

FOLDS = 3  # cross-validation folds of choose_psf
PROVISIONAL_PSF = "box+0.3"  # the first solve's, with "auto": it only has to carry the motion refinement
PRUNE_RATIO = 1.1  # candidates within this factor of the best first-fold mean squared error go on
REFINE_STEP = 0.05  # LR px: the widths either side of the best box+SIGMA candidate that place its minimum
PSF_TIE = 1.005  # held-out errors within this factor of the lowest: widths the burst does not tell apart
UNCERTAIN_WIDTHS = 0.25  # LR px: a range of tied widths this wide makes the estimate uncertain
NOISE_CALIBRATION = 2 / 255  # the residual (Y units) at which ``tv_weight`` applies as given


def choose_psf(frames_y: np.ndarray, matrices: np.ndarray, anchor: int, weights: np.ndarray, *, scale: int,
               tv_weight: float, candidates=AUTO_CANDIDATES, crop: int = 64, place_width: bool = True, margin: int = 0,
               workers: int = 2, device: str = "cpu") -> tuple[str, dict]:
    """The PSF the burst shows, by cross-validation, its Gaussian width refined between the candidates.

    The frames but the reference are dealt into :data:`FOLDS` folds; each fold is held out in
    turn while the others are solved with each candidate on a central ``crop x crop`` LR window,
    and each candidate's error predicting the held-out frames is measured frame by frame (every
    frame is held out once). Only the candidates within :data:`PRUNE_RATIO` of the best mean
    squared error on the first fold are solved on the others (the rest report their first fold's
    error). When a ``box+SIGMA`` candidate wins and ``place_width``, the widths
    :data:`REFINE_STEP` either side of it are solved too and the width is where the parabola
    through the three errors is lowest (to 0.01 LR px; the candidates' 0.1 steps cost up to 0.3 dB
    on camera bursts). The run leaves ``place_width`` off for a target's windows (``--roi``):
    their held-out errors, several times a whole frame's (the background crosses the window
    otherwise than the target), leaned wide there (Set5 target protocol: placed widths lost
    0.11 dB on average, up to 0.67 on a burst). There the held-out samples within ``margin`` LR
    pixels of their frame's cut edge are not scored either: a target's window holds the background
    around the target, which the target's motion misplaces, and its errors chose the PSF (plate
    protocol, 12 plates a width, ``--roi``: with the window's 6-pixel margin and the cut's 2 left
    out, three plates' PSFs changed, 28 px 16.75 -> 16.91 dB, 48 px 19.77 -> 20.03, one plate
    20.77 -> 23.95; 36 px unchanged). (A
    one-standard-error rule that gave near-ties to the milder PSF was dropped: on Set5 bursts of
    both protocols one step too wide and one step too mild cost about the same, 0.1-2.6 dB, and
    the rule chose ``box`` for an SR-protocol burst made with MATLAB's kernel, 1.4 dB below the
    minimum's ``box+0.2``.)

    Returns ``(psf, errors)``: ``errors`` maps each PSF solved to its held-out weighted RMS error
    (Y units).
    """
    count, height, width = frames_y.shape
    top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
    box = (top, left, min(crop, height), min(crop, width))
    window, moved, sub_weights = cut_window(frames_y, matrices, weights, box)
    others = [k for k in range(count) if k != anchor]
    folds = [others[fold::FOLDS] for fold in range(FOLDS)] if len(others) > FOLDS else []
    if not folds:
        return candidates[0], {}
    start = upscale(frames_y[anchor, top : top + box[2], left : left + box[3]], scale)
    sampling = burst_sampling(moved, window.shape[1:], scale, start.shape, keep=sub_weights > 0)  # every candidate's
    scored = np.zeros(window.shape[1:], np.float32)  # the samples that judge: away from the cuts' margin
    scored[margin : window.shape[1] - margin, margin : window.shape[2] - margin] = 1
    if not scored.any():  # a window too small to spare its margin: every sample judges
        scored[:] = 1

    def held_out_errors(fold_and_psf: tuple[list[int], str]) -> np.ndarray:
        held_out, psf = fold_and_psf
        used = [k for k in range(count) if k not in held_out]
        _, parts = solve_burst(window, moved, sub_weights, psf, scale, tv_weight, start, used, sampling,
                               device=device)
        w = (sub_weights * parts["inside"].reshape(window.shape) * scored)[held_out]
        residual = predicted_frames(parts, window.shape)[held_out] - window[held_out]
        return np.sum(w * residual**2, axis=(1, 2)) / np.maximum(w.sum(axis=(1, 2)), 1.0)

    def frame_errors(psfs: list[str], held_out: list[list[int]]) -> dict[str, list[np.ndarray]]:
        """Each PSF's per-frame errors on the folds ``held_out``, solved in the pool."""
        values = list(pool.map(held_out_errors, [(fold, psf) for psf in psfs for fold in held_out]))
        return {psf: values[i * len(held_out) : (i + 1) * len(held_out)] for i, psf in enumerate(psfs)}

    def rms(per_frame: list[np.ndarray]) -> float:
        return float(np.sqrt(np.mean(np.concatenate(per_frame))))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        per_frame = frame_errors(list(candidates), folds[:1])
        # a candidate far behind on the first fold cannot catch up: only the close ones go on
        best = min(float(np.mean(values)) for values in per_frame.values())
        close = [psf for psf in candidates if np.mean(per_frame[psf]) <= PRUNE_RATIO * best]
        for psf, values in frame_errors(close, folds[1:]).items():
            per_frame[psf] += values
        errors = {psf: rms(values) for psf, values in per_frame.items()}
        chosen = min(close, key=errors.get)
        kind, sigma = parse_psf(chosen)
        if kind != "box" or not place_width:
            return chosen, errors
        sides = [f"box+{side:.2f}" for side in (sigma - REFINE_STEP, sigma + REFINE_STEP) if side >= 0]
        errors.update({psf: rms(values) for psf, values in frame_errors(sides, folds).items()})
    return _lowest_width(errors, sigma), errors


def _lowest_width(errors: dict[str, float], sigma: float) -> str:
    """``box+WIDTH`` where the parabola through the errors at ``sigma`` and :data:`REFINE_STEP` either
    side is lowest, within a step of ``sigma`` (``sigma`` itself at the edge of the range)."""
    named = {round(parse_psf(psf)[1], 2): error for psf, error in errors.items() if psf.startswith("box")}
    low, middle, high = (named.get(round(sigma + step, 2)) for step in (-REFINE_STEP, 0.0, REFINE_STEP))
    if low is None or high is None or low + high - 2 * middle <= 0:
        return f"box+{sigma:.2f}" if sigma > 0 else "box"
    offset = float(np.clip(REFINE_STEP * (low - high) / (2 * (low + high - 2 * middle)), -REFINE_STEP, REFINE_STEP))
    width = max(0.0, sigma + offset)
    return f"box+{width:.2f}" if width >= 0.005 else "box"


def refine_motion(frames_y: np.ndarray, matrices: np.ndarray, estimate: np.ndarray, kernel: np.ndarray, anchor: int,
                  *, scale: int, model: str, region: np.ndarray | None = None, workers: int = 2) -> np.ndarray:
    """Every frame's registration refined against the solution (``estimate``, ``(scale*h, scale*w)``)
    blurred by the PSF's ``kernel``; the reference's stays the identity. With ``region`` (``(h, w)``
    bool over the reference's LR pixels), only the frame's pixels that its motion puts on ``True``
    pixels take part (a target's own, not the background it crosses).

    Each frame is aligned by robust Lucas-Kanade (:func:`multisr.registration.alignment.align`, Tukey's
    weights: what moves on its own has no say) in ``model`` to the blurred solution, which
    predicts every LR sample: noise-free and not aliased, unlike the reference frame that
    registration had to use. A frame keeps its matrix when the fit fails. Frames run in
    ``workers`` threads, sharing the blurred solution's gradients.
    """
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    pad = grid_pad(scale)
    blurred = blur(cv2.copyMakeBorder(estimate.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE), kernel)
    c = to_grid(scale, pad)
    blurred_gradients = gradients(blurred)  # once for every frame's fit
    refined = matrices.copy()

    def one(k: int) -> None:  # the frame's LR pixels -> the solve's grid, and back
        mask = None if region is None else cv2.warpPerspective(  # the region where the frame sees it, nearest pixel
            region.view(np.uint8), matrices[k], region.shape[::-1], flags=cv2.INTER_NEAREST).astype(bool)
        fit = align(frames_y[k], blurred, c @ np.linalg.inv(matrices[k]), model=model, smoothings=(0.0,), border=2,
                    image_gradients=blurred_gradients, mask=mask)
        if fit is not None:
            found = np.linalg.inv(fit.matrix) @ c
            refined[k] = found / found[2, 2]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, [k for k in range(len(frames_y)) if k != anchor]))
    return refined


@contextmanager
def _one_torch_thread(device: str):
    """torch's CPU threads set to one inside (on the CPU: the tiles and folds are the parallel
    work; two tiles' operations each spread over both cores took 1.2x as long), restored after."""
    previous = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def reconstruct(
    frames_y: np.ndarray,
    matrices: np.ndarray,
    *,
    anchor: int,
    scale: int = SCALE,
    psf: str = "auto",
    tv_weight: float = 0.0005,
    model: str = "homography",
    refine_rounds: int = 1,
    tile: int | None = None,
    workers: int = 2,
    device: str = "cpu",
    chroma: np.ndarray | None = None,
    chroma_subsampling: str | None = None,
    mosaic: tuple[np.ndarray, np.ndarray] | None = None,
    place_width: bool = True,
    psf_margin: int = 0,
    refine_region: np.ndarray | None = None,
    footprint: tuple[float, int] = FRAME_FOOTPRINT,
    progress=None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Solve for the high-resolution Y of the reference frame ``frames_y[anchor]``.

    Args:
        frames_y: ``(N, h, w)`` float32 Y of the frames that take part.
        matrices: ``(N, 3, 3)`` their registration matrices (``matrices[anchor]`` the identity).
        scale: the magnification; the output is ``(scale*h, scale*w)``.
        psf: see the module docstring; ``"auto"`` chooses from the burst.
        tv_weight: weight of the total-variation prior (Y in [0, 1] units) for a burst whose
            residual after the first solve is :data:`NOISE_CALIBRATION` (2 levels of 255); a
            burst with more residual noise gets it times (residual / calibration) squared.
        model: the motion model in which the solve refines the registration (one of
            :data:`multisr.registration.alignment.MODELS`).
        refine_rounds: how many times the motion is refined and the solve repeated (0: never).
        tile, workers: the solve runs in tiles of ``tile x tile`` LR pixels (by default
            :data:`~multisr.reconstruction.tiles.TILE` on the CPU, ``DEVICE_TILE`` on a GPU), ``workers``
            at a time on the CPU (:func:`multisr.reconstruction.tiles.solve_tiled`); the result
            depends on ``tile`` only within a few levels of 255 along the tiles' seams.
        place_width: with ``psf="auto"``, place a Gaussian's width between the candidates
            (:func:`choose_psf`; off for a target's windows).
        psf_margin: with ``psf="auto"``, the LR pixels along each frame's edge whose samples do
            not judge the PSF (:func:`choose_psf`'s ``margin``: a target's window's margin).
        refine_region: ``(h, w)`` bool, the pixels of ``frames_y[anchor]`` whose motion the
            refinement fits (:func:`refine_motion`'s ``region``: a target's own), or ``None`` for all.
        footprint: how far the test of a sample's agreement with the reference reaches (brightness
            fits and data weights, :mod:`multisr.reconstruction.agreement`): ``FRAME_FOOTPRINT``,
            or ``TARGET_FOOTPRINT`` for a target's windows.
        device: the torch device of the solves (``"cpu"``, ``"cuda"``); the CPU and a GPU agree
            within float rounding.
        chroma: ``(N, h, w, 2)`` Cb, Cr of the frames, if they are colour: solved from the
            burst too (:func:`multisr.reconstruction.chroma.solve_chroma`), after Y.
        chroma_subsampling: how that chroma was stored, ``"4:2:0"`` (most JPEG files and videos)
            or ``"4:2:2"``, or ``None`` (full): subsampled chroma is solved through a wider kernel
            along the halved axes, guided by Y's solution.
        mosaic: ``(filled, colours)`` of RAW frames (:func:`multisr.reconstruction.mosaic.filled_mosaic`,
            ``(N, h, w, 3)``, changed in place, and ``(N, h, w)`` uint8): after Y, the linear RGB
            is solved from the mosaics (:func:`multisr.reconstruction.mosaic.solve_mosaic`) with
            Y's registration and weights, and with ``"auto"`` the milder of two PSFs: the one the
            green sites choose and Y's. Both lean wide (misregistration, and LibRaw's demosaic
            for Y's, look like blur to the cross-validation; the green sites chose one or two
            steps wider than the simulated blur on 3 of 5 Set5 RAW bursts): on Set5's RAW
            bursts (``bench quality --protocol camera --mosaic rggb``, seeds 0 and 100) the
            milder one gave mean RGB PSNR 27.18 -> 27.62 and 27.27 -> 27.66 dB against the
            green sites' alone (never lower on an image; Y's alone: 27.29 and 27.46, up to
            1.3 dB lower on an image). ``chroma`` is then not used.
        progress: called with 1 after each solve (``1 + refine_rounds`` of Y, then one of the
            chroma or the mosaic), if given.

    Returns:
        ``(solved, refined, info)``: ``(scale*h, scale*w)`` float32 Y (``(scale*h, scale*w, 3)``
        Y, Cb, Cr with ``chroma``; linear camera RGB with ``mosaic``), not clipped; the
        ``(N, 3, 3)`` refined matrices (LR pixels, as ``matrices``); ``info`` with the PSF used,
        the cross-validation errors of ``"auto"`` (``psf_error_levels``) and the widths they do not tell
        apart (``psf_range``, :func:`psf_range`), the first solve's residual in levels of 255 and
        the prior weight it led to, the fraction of samples each frame kept and
        each frame's ``(gain, offset)`` against the reference (:func:`multisr.reconstruction.agreement.match_brightness`).
    """
    # the tiles and folds are the parallel work (see register_burst)
    with threadpool_limits(limits=1, user_api="blas"), _one_torch_thread(device):
        # with a mosaic, Y gives the motion, weights, noise and PSF; its last solve would go unused
        solved, matrices, info, weights, fits, tile = _reconstruct(
            frames_y, matrices, anchor, scale, psf, tv_weight, model, refine_rounds, tile, workers, device, progress,
            solve_last=mosaic is None, place_width=place_width, psf_margin=psf_margin, refine_region=refine_region,
            footprint=footprint)
        if mosaic is not None:
            filled, colours = mosaic
            mosaic_psf = psf
            if psf == "auto":  # the milder of the green sites' choice and Y's (see the docstring)
                green_psf, errors = choose_psf(filled[..., GREEN], matrices, anchor, weights * (colours == GREEN),
                                               scale=scale, tv_weight=tv_weight, place_width=place_width,
                                               margin=psf_margin, workers=workers, device=device)
                info["mosaic_psf_error_levels"] = _in_levels(errors)
                mosaic_psf = max(green_psf, info["psf"], key=lambda psf: nyquist_gain(psf, scale))
            rgb, mosaic_info = solve_mosaic(filled, colours, matrices, weights, anchor=anchor, psf=mosaic_psf,
                                            scale=scale, tv_weight=info["tv_weight"], tile=tile, workers=workers,
                                            device=device)
            info["mosaic"] = {"psf": mosaic_psf, **mosaic_info}
            if progress is not None:
                progress(1)
            return rgb, matrices, info
        if chroma is None:
            return solved, matrices, info
        ycbcr = np.empty((*solved.shape, 3), np.float32)
        ycbcr[..., 0] = solved
        ycbcr[..., 1:] = solve_chroma(chroma, matrices, weights, fits[:, 0], anchor=anchor, psf=info["psf"], scale=scale,
                                      tv_weight=info["tv_weight"], tile=tile, workers=workers, device=device,
                                      subsampling=chroma_subsampling, luma=solved)
        if progress is not None:
            progress(1)
        return ycbcr, matrices, info


def _reconstruct(frames_y, matrices, anchor, scale, psf, tv_weight, model, refine_rounds, tile, workers, device,
                 progress, *, solve_last: bool = True, place_width: bool = True, psf_margin: int = 0,
                 refine_region=None, footprint=FRAME_FOOTPRINT
                 ) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray, np.ndarray, int]:
    """:func:`reconstruct` of Y; returns also the data weights, the brightness fits and the tile size.
    Without ``solve_last``, the solve after the last motion refinement is left out (the estimate
    returned is the one before it)."""
    originals = np.asarray(frames_y, dtype=np.float32)
    frames_y, fits = match_brightness(originals, matrices, anchor, workers=workers, footprint=footprint)
    info = {}
    weights = frame_weights(frames_y, matrices, anchor, workers=workers, footprint=footprint)

    def chosen_psf() -> str:  # the burst's PSF, its cross-validation errors and tied widths recorded
        found, errors = choose_psf(frames_y, matrices, anchor, weights, scale=scale, tv_weight=tv_weight,
                                   place_width=place_width, margin=psf_margin, workers=workers, device=device)
        info["psf_error_levels"], info["psf_range"] = _in_levels(errors), psf_range(errors)
        return found

    choose = psf == "auto"
    if not choose:
        parse_psf(psf)
    elif refine_rounds:  # chosen once the motion is refined (below); till then, a PSF in the middle
        psf = PROVISIONAL_PSF
    else:
        psf = chosen_psf()

    if tile is None:
        tile = TILE if torch.device(device).type == "cpu" else DEVICE_TILE

    def solved(prior: float, start: np.ndarray, rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
        return solve_tiled(frames_y, matrices, weights, psf, scale, prior, start, tile=tile, workers=workers,
                           rounds=rounds, device=device)

    # when another solve follows, the first only has to show the noise and carry the motion
    # refinement: one round of the total variation does (two cost 18 % more of the whole and
    # changed no Set5 burst of the three protocols by more than 0.09 dB)
    estimate, residuals = solved(tv_weight, upscale(frames_y[anchor], scale), 1 if refine_rounds else 4)
    noise = float(np.sqrt(np.median(residuals)))  # the noise and model error the burst shows
    # a noisier burst (or one that fits the model less well) needs a stronger prior: the MAP
    # weight of the prior grows with the noise variance; never weaker than calibrated
    stronger = tv_weight * max(1.0, (noise / NOISE_CALIBRATION) ** 2)
    info["residual_levels"], info["tv_weight"] = round(noise * 255, 2), stronger
    if progress is not None:
        progress(1)
    for round_ in range(refine_rounds):
        matrices = refine_motion(frames_y, matrices, estimate, psf_kernel(psf, scale), anchor, scale=scale, model=model,
                                 region=refine_region, workers=workers)
        frames_y, fits = match_brightness(originals, matrices, anchor, workers=workers, footprint=footprint)
        weights = frame_weights(frames_y, matrices, anchor, workers=workers, footprint=footprint)
        if choose:  # misregistration looks like blur to the cross-validation: the refined motion has less
            psf = chosen_psf()
        if solve_last or round_ < refine_rounds - 1:
            estimate, _ = solved(stronger, estimate)
        if progress is not None:
            progress(1)
    if refine_rounds == 0 and stronger > tv_weight and solve_last:
        estimate, _ = solved(stronger, estimate)
    info["psf"] = psf
    info["kept"] = [round(float(w.mean()), 3) for w in weights]
    info["moving_region"] = moving_region(matrices, anchor, weights)
    info["brightness"] = [[round(float(g), 4), round(float(o), 4)] for g, o in fits]
    return estimate, matrices, info, weights, fits, tile


def psf_range(errors: dict) -> list[float] | None:
    """The Gaussian widths (LR px) of the ``box+SIGMA`` PSFs whose held-out error is within
    :data:`PSF_TIE` of the lowest, ``[narrowest, widest]``: how sure the estimate is (``None``
    when no box PSF is among them, ``matlab`` predicting clearly best, or without errors: a burst
    too short to cross-validate)."""
    if not errors:
        return None
    lowest = min(errors.values())
    widths = [parse_psf(psf)[1] for psf, error in errors.items() if psf.startswith("box") and error <= PSF_TIE * lowest]
    return [round(min(widths), 2), round(max(widths), 2)] if widths else None


def _in_levels(errors: dict) -> dict:
    """:func:`choose_psf`'s held-out errors (Y on the 0-1 scale) in levels of 255, as the record gives them."""
    return {psf: round(float(error) * 255, 4) for psf, error in errors.items()}

"""Training SRCNN on T91 the paper's way, with checkpoints that survive interruption.

Training pairs follow the paper's data preparation: each image's Y channel (rounded to 8 bits)
is cropped to a multiple of the scale, downscaled and upscaled again with MATLAB bicubic (in
floating point), and cut into ``patch x patch`` sub-images with stride ``stride``. The loss is
the mean squared error over the centre of each sub-image that the unpadded network outputs.
Augmentation: each batch is turned by one random element of the square's symmetry group (the
4 rotations, each with or without a mirror) — the 8 variants are equally valid training images.

:func:`make_restoration_patches` makes pairs for the same network as the restoration step of the
multi-frame pipeline instead: its input is the multi-frame reconstruction of a simulated burst,
of both simulation protocols (benchmark-style and camera-style), so that one network serves both.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..imaging.color import luma
from ..params import SCALE
from ..progress import progress_bar
from ..runs.engine import run_frames
from ..runs.pipeline import Pipeline, load_pipeline
from ..sr.arch import SRCNN
from ..sr.weights import save_weights
from ..storage.files import atomic_output
from ..storage.folders import list_images
from ..storage.io import read_image
from .evaluate import evaluation_pair, true_luma
from .simulate import simulate

__all__ = ["make_patches", "make_restoration_patches", "restoration_patches_kept", "make_optimizer", "train"]


def _cut(y_input: np.ndarray, y_true: np.ndarray, patch: int, stride: int) -> tuple[list, list]:
    inputs, labels = [], []
    for top in range(0, y_true.shape[0] - patch + 1, stride):
        for left in range(0, y_true.shape[1] - patch + 1, stride):
            inputs.append(y_input[top : top + patch, left : left + patch])
            labels.append(y_true[top : top + patch, left : left + patch])
    return inputs, labels


def _stack(inputs: list, labels: list, folder: Path, patch: int) -> tuple[np.ndarray, np.ndarray]:
    if not inputs:
        raise UserError(f"{folder}: expected training images at least {patch} pixels on each side, found none")
    return np.stack(inputs).astype(np.float32), np.stack(labels).astype(np.float32)


def make_patches(folder: Path, *, scale: int = SCALE, patch: int = 33, stride: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """Sub-images of every image in ``folder``.

    Returns:
        ``(inputs, labels)``, both ``(N, patch, patch)`` float32 in [0, 1]: the bicubic
        degraded Y and the true Y at the same place.
    """
    inputs, labels = [], []
    for path in list_images(Path(folder)):
        image, _ = read_image(path)
        if min(image.shape[:2]) < patch:
            continue
        y_true, y_bicubic = evaluation_pair(image, scale)
        more_inputs, more_labels = _cut(y_bicubic, y_true, patch, stride)
        inputs += more_inputs
        labels += more_labels
    return _stack(inputs, labels, folder, patch)


def make_restoration_patches(folder: Path, *, scale: int = SCALE, n: int = 20, protocols=("sr", "camera"), seed: int = 0,
                             patch: int = 33, stride: int = 14, pipeline: str = "multiframe"
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Sub-images of multi-frame reconstructions, for training the restoration network.

    Image ``i`` of ``folder`` becomes one simulated burst at ``scale`` of ``n`` frames per protocol
    (seed ``seed + i``), solved by the ``pipeline``'s stages before ``restore`` (``multiframe`` or ``merge``)
    (:func:`multisr.runs.engine.run_frames`, reference frame 0: the one the truth is of), so that the
    network learns on what it is given at run time. Images on which fewer than two frames
    register, or too small for a protocol's margins, are skipped.

    Returns:
        ``(inputs, labels)``, both ``(N, patch, patch)`` float32: the Y of the solved image as
        ``restore`` gets it (a colour result's RGB clipped to [0, 1]) and the true Y rounded to 8
        bits, at the same place.
    """
    whole = load_pipeline(pipeline)
    solve = Pipeline(f"{pipeline}-solve", f"{pipeline} before restore",
                     [(stage, params) for stage, params in whole.steps if stage.name != "restore"])
    inputs, labels = [], []
    for index, path in enumerate(progress_bar(list_images(Path(folder)), desc="solve bursts", unit="image", leave=False)):
        image, _ = read_image(path)
        for protocol in protocols:
            try:
                burst = simulate(image, protocol=protocol, n=n, seed=seed + index, scale=scale)
                solved = luma(run_frames(solve, burst.frames, reference=0, scale=scale).image)
            except UserError:  # too small for this protocol's margins, or fewer than 2 frames register
                continue
            if min(burst.truth.shape[:2]) < patch:
                continue
            more_inputs, more_labels = _cut(solved, true_luma(burst.truth), patch, stride)
            inputs += more_inputs
            labels += more_labels
    return _stack(inputs, labels, folder, patch)


def restoration_patches_kept(folder: Path, workdir: Path, *, scale: int = SCALE, pipeline: str = "multiframe"
                             ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`make_restoration_patches` at ``scale`` of ``pipeline`` with its other defaults, kept in
    ``workdir/restoration-patches.npz`` so that a resumed training skips the solves (minutes for T91)."""
    kept = Path(workdir) / "restoration-patches.npz"
    if kept.exists():
        with np.load(kept) as saved:
            return saved["inputs"], saved["labels"]
    inputs, labels = make_restoration_patches(folder, scale=scale, pipeline=pipeline)
    with atomic_output(kept) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, inputs=inputs, labels=labels)
    return inputs, labels


def make_optimizer(model: SRCNN, name: str, lr: float) -> torch.optim.Optimizer:
    """``"adam"``: Adam at ``lr`` for all layers. ``"sgd"``: the paper's SGD, momentum 0.9, with
    ``lr`` for the first two layers and ``lr / 10`` for the reconstruction layer
    (the paper: 1e-4 and 1e-5)."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        groups = [
            {"params": [*model.patch.parameters(), *model.mapping.parameters()], "lr": lr},
            {"params": model.reconstruct.parameters(), "lr": lr / 10},
        ]
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    raise UserError(f"optimizer: expected adam or sgd, got {name!r}")


def _dihedral(batch: torch.Tensor, k: int) -> torch.Tensor:
    """Element ``k`` (0..7) of the square's symmetry group applied to ``(B, 1, H, W)``."""
    batch = torch.rot90(batch, k % 4, dims=(2, 3))
    return batch.flip(3) if k >= 4 else batch


def train(
    model: SRCNN,
    inputs: np.ndarray,
    labels: np.ndarray,
    *,
    workdir: Path,
    scale: int = SCALE,
    epochs: int = 100,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 3e-4,
    halve_lr_every: int = 0,
    seed: int = 0,
    evaluate=None,
    eval_every: int = 1,
    device: torch.device = torch.device("cpu"),
    progress: bool = True,
    recipe: dict | None = None,
) -> list[dict]:
    """Train ``model`` on ``(inputs, labels)`` (from :func:`make_patches`), resuming if possible.

    ``workdir`` receives ``checkpoint.pt`` (model, optimizer, RNG state, after every epoch),
    ``log.jsonl`` (one line per epoch: epoch, mean loss, seconds, and ``evaluate(model)``'s
    result every ``eval_every`` epochs) and ``last.pt``, the weights file to ship. The learning
    rate is halved every ``halve_lr_every`` epochs (0: never). If
    ``checkpoint.pt`` exists, training continues from it with the same data order it would have
    had without the interruption. ``recipe`` (JSON-able) is recorded in the weights' metadata
    next to the optimiser settings: what the data was, what the weights started from.

    Returns:
        The log, one dict per epoch, the resumed epochs included.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    opt = make_optimizer(model, optimizer, lr)
    base_lrs = [group["lr"] for group in opt.param_groups]
    checkpoint_path, log_path = workdir / "checkpoint.pt", workdir / "log.jsonl"
    log, start_epoch, elapsed = [], 0, 0.0
    if checkpoint_path.exists():
        try:  # tensors, numbers, strings and containers only: a pickle's code is never run
            state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        except Exception as error:  # torch raises many types for a damaged or crafted file
            raise UserError(f"{checkpoint_path}: expected a training checkpoint of multisr, but it cannot be read "
                            f"({type(error).__name__}); train into another folder") from None
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start_epoch, elapsed, log = int(state["epoch"]), float(state["elapsed"]), list(state["log"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError):
            raise UserError(f"{checkpoint_path}: expected a checkpoint of SRCNN {model.config} with the {optimizer} "
                            "optimizer, found another; train into another folder") from None
    settings = {"optimizer": optimizer, "lr": lr, "halve_lr_every": halve_lr_every, "batch_size": batch_size,
                "seed": seed, "scale": scale,
                "patches": int(len(inputs)), "config": model.config, **(recipe or {})}
    crop = model.shrink
    x_all = torch.from_numpy(inputs)[:, None]
    t_all = torch.from_numpy(labels)[:, None, crop:-crop, crop:-crop]
    for epoch in range(start_epoch, epochs):
        factor = 0.5 ** (epoch // halve_lr_every) if halve_lr_every else 1.0
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = base * factor
        generator = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(len(x_all), generator=generator)
        turns = torch.randint(0, 8, (len(order) // batch_size + 1,), generator=generator)
        model.train()
        started, total, count = time.perf_counter(), 0.0, 0
        bar = progress_bar(range(0, len(order), batch_size), desc=f"epoch {epoch + 1}/{epochs}",
                           disable=None if progress else True,
                           leave=False)
        for step, first in enumerate(bar):
            index = order[first : first + batch_size]
            x = _dihedral(x_all[index], int(turns[step])).to(device)
            t = _dihedral(t_all[index], int(turns[step])).to(device)
            loss = torch.mean((model(x) - t) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(index)
            count += len(index)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total / count:.2e}")
        elapsed += time.perf_counter() - started
        row = {"epoch": epoch + 1, "loss": total / count, "lr": opt.param_groups[0]["lr"], "train_seconds": round(elapsed, 1)}
        model.eval()
        if evaluate is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            row["eval"] = evaluate(model)
        log.append(row)
        meta = {"training": settings, "epochs": epoch + 1, "train_seconds": round(elapsed, 1), "last": row}
        save_weights(model, workdir / "last.pt", scale=scale, meta=meta)
        with atomic_output(checkpoint_path) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                        "elapsed": elapsed, "log": log}, tmp)
        with open(log_path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        if progress:
            progress_bar.write(json.dumps(row))  # one line an epoch, in a log too
    return log

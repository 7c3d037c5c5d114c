"""Weights files: the shipped models by name and scale, any file by path, checked before use.

A shipped model is named for its network (``srcnn-955``); its file for scale 3 is
``<name>.pt``, for another scale ``<name>-x<scale>.pt`` (:data:`SHIPPED`). A weights file is a
``torch.save`` dict: ``{"arch": "srcnn", "config": {...}, "scale": 3,
"state_dict": {...}, "meta": {...}}``; ``meta`` records how the weights were trained. The
shipped files are checked against ``multisr/weights/SHA256SUMS``; a file that
:func:`save_weights` writes carries the SHA-256 of its tensors, checked on load.
"""
import hashlib
from pathlib import Path

import torch

from ..errors import UserError
from ..params import SCALE
from ..storage.files import atomic_output, file_digest
from .arch import SRCNN
from .device import resolve_device

__all__ = ["WEIGHTS_DIR", "MODEL_NAMES", "SHIPPED", "DEFAULT_MODEL", "save_weights", "weights_path", "load_model"]

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
SHIPPED = {"srcnn-915": (3,), "srcnn-955": (2, 3, 4), "restore-955": (3,), "restore-mix": (2, 3, 4),
           "restore-merge": (2, 3, 4)}  # name: scales
MODEL_NAMES = {name: f"{name}.pt" for name in SHIPPED}  # the scale-3 files
DEFAULT_MODEL = "srcnn-955"


def save_weights(model: SRCNN, path: Path, *, scale: int, meta: dict) -> None:
    """Write ``model``'s weights (on CPU) with its config, ``scale`` and ``meta``, atomically;
    ``sha256`` (beside them) is the digest of the weights' bytes, checked on load."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"arch": "srcnn", "config": model.config, "scale": scale, "state_dict": state, "meta": meta,
               "sha256": _tensors_digest(state)}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def _tensors_digest(state: dict) -> str:
    """SHA-256 of a state dict's names and float32 bytes, in its order."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def weights_path(model: str, scale: int = SCALE) -> Path:
    """The file of a shipped model at ``scale``, or ``model`` itself as a path; a one-line
    :class:`UserError` names what is shipped when neither exists."""
    if model in SHIPPED:
        if scale not in SHIPPED[model]:
            offered = "; ".join(f"{name} at x{', x'.join(map(str, scales))}" for name, scales in SHIPPED.items())
            raise UserError(f"model: expected a model shipped for scale {scale}, but {model} is shipped at "
                            f"x{', x'.join(map(str, SHIPPED[model]))} only (shipped: {offered}); train one with "
                            f"multisr train --scale {scale} and give its file")
        return WEIGHTS_DIR / (MODEL_NAMES[model] if scale == SCALE else f"{model}-x{scale}.pt")
    path = Path(model)
    if not path.is_file():
        raise UserError(
            f"model: expected {', '.join(MODEL_NAMES)} or a weights file, got {model!r} (no such file)"
        )
    return path


def _shipped_digests() -> dict[str, str]:
    """SHA-256 of each shipped weights file, from ``weights/SHA256SUMS`` (``sha256sum`` format)."""
    lines = (WEIGHTS_DIR / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def _plausible_config(config) -> bool:
    """True for an SRCNN config this package can build: kernel sides odd from 1 to 15, 1 to 512 filters."""
    if not isinstance(config, dict) or set(config) != {"f1", "f2", "f3", "n1", "n2"}:
        return False
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in config.values()):
        return False
    kernels_ok = all(1 <= config[k] <= 15 and config[k] % 2 == 1 for k in ("f1", "f2", "f3"))
    return kernels_ok and all(1 <= config[k] <= 512 for k in ("n1", "n2"))


def load_model(model: str = DEFAULT_MODEL, *, scale: int | None = SCALE, device: str = "cpu") -> SRCNN:
    """Load a shipped model by name (``srcnn-955``, ``srcnn-915``, ``restore-955``, ``restore-mix``) at ``scale``
    or a weights file by path.

    ``scale=None`` accepts weights of any scale (a starting point for training at another scale:
    SRCNN's input is a bicubic upscale, so its filters carry over).

    Raises :class:`UserError` for a missing, corrupt or incompatible file (another
    architecture or another scale, an implausible config, weights that are not finite, weights
    without the digest :func:`save_weights` stores with them or that differ from it), and
    for a shipped file whose SHA-256 differs from the one recorded in ``weights/SHA256SUMS``
    (retrained weights: update that file with ``sha256sum *.pt``), naming the file.
    """
    path = weights_path(model, SCALE if scale is None else scale)
    if model in MODEL_NAMES and file_digest(path) != _shipped_digests().get(path.name):
        raise UserError(f"{path}: expected the weights shipped with multisr, but the file has changed (damaged?); "
                        "reinstall multisr")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise UserError(f"{path}: expected a multisr weights file, but it cannot be read ({type(error).__name__})")
    if not isinstance(payload, dict) or payload.get("arch") != "srcnn" or "state_dict" not in payload:
        raise UserError(f"{path}: expected SRCNN weights saved by multisr, found another kind of file")
    if scale is not None and payload.get("scale") != scale:
        raise UserError(f"{path}: expected weights for scale {scale}, found scale {payload.get('scale')}")
    config = payload.get("config")
    if not _plausible_config(config):
        raise UserError(f"{path}: expected an SRCNN config (f1, f2, f3: odd kernel sides up to 15; n1, n2: 1 to "
                        f"512 filters), found {config!r}")
    network = SRCNN(**config)
    try:
        network.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError):
        raise UserError(f"{path}: weights do not fit SRCNN {config}; the file is damaged") from None
    if not all(torch.isfinite(tensor).all() for tensor in network.state_dict().values()):
        raise UserError(f"{path}: expected finite weights, found NaN or infinity; the file is damaged")
    if "sha256" not in payload:
        raise UserError(f"{path}: expected weights saved with the digest of their tensors (multisr's save_weights), "
                        "found none: a damaged copy could not be told from the original")
    if payload["sha256"] != _tensors_digest(payload["state_dict"]):
        raise UserError(f"{path}: expected weights matching the digest saved with them, but they differ; "
                        "the file is damaged")
    network.meta = payload.get("meta", {})
    network.name = model
    torch_device = resolve_device(device)
    # channels-last lets oneDNN (CPU) and cuDNN pick their fastest convolutions: measured 1.5x here
    return network.to(torch_device, memory_format=torch.channels_last).eval()

"""SR networks as users meet them: weights by name or path, the device, and applying a model.

torch tensors live only in this module and in :mod:`multisr.train`; everything here takes and
returns numpy arrays under the data contract.

A weights file is a ``torch.save`` dict: ``{"arch": "srcnn", "config": {...}, "scale": 3,
"state_dict": {...}, "meta": {...}}``; ``meta`` records how the weights were trained.
"""
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .color import RGB_TO_Y, Y_OFFSET, Y_TO_RGB
from .errors import UserError
from .files import atomic_output, file_digest
from .resize import upscale
from .srcnn import SRCNN

__all__ = [
    "WEIGHTS_DIR",
    "MODEL_NAMES",
    "DEFAULT_MODEL",
    "resolve_device",
    "warm_up",
    "save_weights",
    "weights_path",
    "load_model",
    "super_resolve_luma",
    "sharpen_frames",
    "super_resolve",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_NAMES = {"srcnn-915": "srcnn-915.pt", "srcnn-955": "srcnn-955.pt", "restore-955": "restore-955.pt",
               "restore-mix": "restore-mix.pt"}
DEFAULT_MODEL = "srcnn-955"
BATCH_PIXELS = 1 << 22  # frames per batch of sharpen_frames: about 4 Mpixel, 16 MiB per channel
GPU_HOST_WORKERS = 3  # batches of sharpen_frames in flight on a GPU


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"`` -> a torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device: expected a CUDA GPU for 'cuda', but torch sees none; use auto or cpu")
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device: expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def warm_up(device: torch.device) -> threading.Thread | None:
    """Start ``device``'s driver context and cuDNN in a background thread (CUDA only; about 0.4 s
    measured on an H200), so that a run's first network stage does not wait for them while the
    CPU stages before it (loading, registration) run. Returns the thread (join it before
    exiting), or ``None`` on the CPU."""
    if device.type != "cuda":
        return None

    def start() -> None:
        with torch.inference_mode():
            torch.nn.functional.conv2d(torch.zeros(1, 1, 8, 8, device=device), torch.zeros(1, 1, 3, 3, device=device))

    thread = threading.Thread(target=start, name="multisr-warm-up")
    thread.start()
    return thread


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


def weights_path(model: str) -> Path:
    if model in MODEL_NAMES:
        return WEIGHTS_DIR / MODEL_NAMES[model]
    path = Path(model)
    if not path.is_file():
        raise UserError(
            f"--model: expected {', '.join(MODEL_NAMES)} or a weights file, got {model!r} (no such file)"
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


def load_model(model: str = DEFAULT_MODEL, *, scale: int = 3, device: str = "cpu") -> SRCNN:
    """Load a shipped model by name (``srcnn-955``, ``srcnn-915``, ``restore-955``, ``restore-mix``) or a weights
    file by path.

    Raises :class:`UserError` for a missing, corrupt or incompatible file (another
    architecture or another scale, an implausible config, weights that are not finite, weights
    that differ from the digest :func:`save_weights` stored with them), and
    for a shipped file whose SHA-256 differs from the one recorded in ``weights/SHA256SUMS``
    (retrained weights: update that file with ``sha256sum *.pt``), naming the file.
    """
    path = weights_path(model)
    if model in MODEL_NAMES and file_digest(path) != _shipped_digests().get(path.name):
        raise UserError(f"{path}: expected the weights shipped with multisr, but the file has changed (damaged?); "
                        "reinstall multisr")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise UserError(f"{path}: expected a multisr weights file, but it cannot be read ({type(error).__name__})")
    if not isinstance(payload, dict) or payload.get("arch") != "srcnn" or "state_dict" not in payload:
        raise UserError(f"{path}: expected SRCNN weights saved by multisr, found another kind of file")
    if payload.get("scale") != scale:
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
    if "sha256" in payload and payload["sha256"] != _tensors_digest(payload["state_dict"]):
        raise UserError(f"{path}: expected weights matching the digest saved with them, but they differ; "
                        "the file is damaged")
    network.meta = payload.get("meta", {})
    network.name = model
    torch_device = resolve_device(device)
    # channels-last lets oneDNN (CPU) and cuDNN pick their fastest convolutions: measured 1.5x here
    return network.to(torch_device, memory_format=torch.channels_last).eval()


def _network_on_luma(y: torch.Tensor, model: SRCNN, tile: int | None) -> torch.Tensor:
    """``model`` on a ``(B, H, W)`` float32 Y tensor on its device, by tiles; same shape, float32."""
    pad = model.shrink
    height, width = y.shape[1:]
    cuda = y.device.type == "cuda"
    tile = tile or (2048 if cuda else 512)
    padded = torch.nn.functional.pad(y[:, None], (pad, pad, pad, pad), mode="replicate")
    out = torch.empty_like(y)
    with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                bottom, right = min(top + tile, height), min(left + tile, width)
                window = padded[:, :, top : bottom + 2 * pad, left : right + 2 * pad]
                out[:, top:bottom, left:right] = model(window.contiguous(memory_format=torch.channels_last))[:, 0]
    return out


def super_resolve_luma(y: np.ndarray, model: SRCNN, *, batch_size: int = 4, tile: int | None = None) -> np.ndarray:
    """Run ``model`` on bicubic-upscaled Y channels, tile by tile.

    Args:
        y: ``(N, H, W)`` or ``(H, W)`` float Y in [0, 1], already upscaled to the output size.
        model: the network; its device is the one used.
        batch_size: frames per forward pass.
        tile: output tile side in pixels (default 512 on the CPU, 2048 on CUDA, where fewer,
            larger launches keep the GPU busy). Each tile's input carries the network's
            receptive margin from its neighbours, so the result equals the untiled one (up to
            float rounding) while memory stays bounded by the tile size.

    On a CUDA device the network runs in float16 (autocast; accumulation stays float32), which
    changes the output by a few 1e-4 and its Set5 PSNR by under 0.05 dB (checked on the GPU by
    tests/test_gpu.py); on the CPU it runs in float32.

    Returns:
        Array of ``y``'s shape, ``float32``: the network's output, padded by replicating the
        image border so that output and input have the same size. Not clipped.
    """
    frames = y[None] if y.ndim == 2 else y
    device = next(model.parameters()).device
    out = np.empty(frames.shape, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            batch = _to_device(np.ascontiguousarray(frames[start : start + batch_size], dtype=np.float32), device)
            out[start : start + batch_size] = _to_host(_network_on_luma(batch, model, tile))
    return out[0] if y.ndim == 2 else out


def _sharpen_tensor(frames: torch.Tensor, model: SRCNN) -> torch.Tensor:
    """SRCNN on Y of ``(B, H, W)`` grey or ``(B, H, W, 3)`` RGB frames on the model's device.

    Cb and Cr stay as they are, and YCbCr -> RGB is affine, so the new RGB is the old plus the
    change of Y times the Y column of the inverse matrix (a grey frame: divided by Y's gain): the
    same numbers as converting to YCbCr and back, without the two conversions.
    """
    weights, offset, y_column = _luma_weights(frames)
    y = (frames * weights).sum(-1) + offset if frames.ndim == 4 else frames * weights + offset
    change = _network_on_luma(y, model, None) - y
    sharpened = frames + change[..., None] * y_column if frames.ndim == 4 else frames + change * y_column
    return sharpened.clamp_(0.0, 1.0)


def _luma_weights(frames: torch.Tensor) -> tuple:
    """(weights, offset, Y column of the inverse) of BT.601 Y for ``frames``' kind, on their device."""
    if frames.ndim == 4:
        weights = torch.tensor(RGB_TO_Y, dtype=torch.float32, device=frames.device)
        return weights, float(Y_OFFSET), torch.tensor(Y_TO_RGB, dtype=torch.float32, device=frames.device)
    gain = float(RGB_TO_Y.sum())
    return gain, float(Y_OFFSET), 1.0 / gain


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array`` as a tensor on ``device``; to a GPU through page-locked host memory, which the
    bus copies about ten times faster than ordinary memory (measured on an H200)."""
    tensor = torch.from_numpy(array)
    return tensor.pin_memory().to(device) if device.type == "cuda" else tensor


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as a numpy array; from a GPU through page-locked host memory (torch caches it)."""
    if tensor.device.type != "cuda":
        return tensor.numpy()
    staging = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    staging.copy_(tensor)
    return staging.numpy()


def sharpen_frames(frames: np.ndarray, model: SRCNN, *, batch_size: int = 4, progress=None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """SRCNN on a stack of bicubic-upscaled frames, ``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB
    (a numpy array or a :class:`~multisr.stacks.Stack`, read in batches).

    Colour frames go through the network on Y, Cb and Cr stay as they are (SRCNN paper); grey
    frames go through Y as RGB frames with equal channels would. Colour conversion runs with
    the network, on its device. Returns float32 in [0, 1], written into ``out`` when given (an array or a
    stack; it may be ``frames`` itself: each batch is read before it is written). At most ``batch_size``
    frames, and at most about ``BATCH_PIXELS`` pixels, are sent to the network at once, so
    memory does not grow with the stack; a frame larger than that goes in bands of rows, each
    with the network's margin of its neighbours' rows (the same numbers as whole). On a GPU,
    ``GPU_HOST_WORKERS`` batches are in flight at once, so that one batch's copies to and from
    the device overlap another's network pass. ``progress(count)`` is called with the number of
    frames done, if given.
    """
    if out is None:
        out = np.empty(frames.shape, dtype=np.float32)
    height, width = frames.shape[1:3]
    step = max(1, min(batch_size, BATCH_PIXELS // (height * width)))
    rows = height if height * width <= BATCH_PIXELS else max(1, BATCH_PIXELS // width)  # bands of a large frame
    margin = model.shrink
    device = next(model.parameters()).device
    # in bands, a frame written in place would feed its own output to the next band's margin:
    # those bands run in order, each keeping the original rows the next one reads above itself
    in_place = isinstance(out, np.ndarray) and isinstance(frames, np.ndarray) and np.shares_memory(out, frames)
    in_order = rows < height and in_place
    kept_rows = {}  # frame -> its last ``margin`` original rows above the next band

    def one(item: tuple[int, int]) -> int:
        start, top = item
        bottom = min(top + rows, height)
        above, below = max(0, top - margin), min(height, bottom + margin)
        if in_order and top > 0:
            batch = np.concatenate([kept_rows[start][:, above - top :], frames[start : start + step, top:below]], axis=1)
        else:
            batch = np.ascontiguousarray(frames[start : start + step, above:below], dtype=np.float32)
        if in_order:
            kept_rows[start] = batch[:, max(0, bottom - above - margin) : bottom - above].copy()
        with torch.inference_mode():
            done = _sharpen_tensor(_to_device(batch, device), model)[:, top - above : bottom - above]
            out[start : start + step, top:bottom] = _to_host(done)
        return len(batch) if bottom == height else 0

    items = [(start, top) for start in range(0, len(frames), step) for top in range(0, height, rows)]
    with ThreadPoolExecutor(max_workers=GPU_HOST_WORKERS if device.type == "cuda" and not in_order else 1) as pool:
        for done in pool.map(one, items):
            if done and progress is not None:
                progress(done)
    return out


def super_resolve(image: np.ndarray, model: SRCNN, *, scale: int = 3) -> np.ndarray:
    """Single-image SR: ``(H, W[, 3])`` in [0, 1] -> ``(scale*H, scale*W[, 3])`` in [0, 1].

    MATLAB-bicubic upscale, then :func:`sharpen_frames`.
    """
    return sharpen_frames(upscale(image, scale)[None], model)[0]

"""Applying an SR network to images: Y through the network, colour by the change of Y, frames in
batches and bands, on the device of the caller's choice.

torch tensors live only in :mod:`multisr.sr` and in :mod:`multisr.research.train`; everything here takes
and returns numpy arrays under the data contract.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..imaging.color import RGB_TO_Y, Y_OFFSET, Y_TO_RGB
from ..imaging.resize import upscale
from ..params import SCALE
from .arch import SRCNN
from .device import to_device, to_host

__all__ = ["super_resolve_luma", "sharpen_frames", "super_resolve"]

BATCH_PIXELS = 1 << 22  # frames per batch of sharpen_frames: about 4 Mpixel, 16 MiB per channel
GPU_HOST_WORKERS = 3  # batches of sharpen_frames in flight on a GPU


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
            batch = to_device(np.ascontiguousarray(frames[start : start + batch_size], dtype=np.float32), device)
            out[start : start + batch_size] = to_host(_network_on_luma(batch, model, tile))
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


def sharpen_frames(frames: np.ndarray, model: SRCNN, *, batch_size: int = 4, progress=None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """SRCNN on a stack of bicubic-upscaled frames, ``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB
    (a numpy array or a :class:`~multisr.storage.stacks.Stack`, read in batches).

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
            done = _sharpen_tensor(to_device(batch, device), model)[:, top - above : bottom - above]
            out[start : start + step, top:bottom] = to_host(done)
        return len(batch) if bottom == height else 0

    items = [(start, top) for start in range(0, len(frames), step) for top in range(0, height, rows)]
    with ThreadPoolExecutor(max_workers=GPU_HOST_WORKERS if device.type == "cuda" and not in_order else 1) as pool:
        for done in pool.map(one, items):
            if done and progress is not None:
                progress(done)
    return out


def super_resolve(image: np.ndarray, model: SRCNN, *, scale: int = SCALE) -> np.ndarray:
    """Single-image SR: ``(H, W[, 3])`` in [0, 1] -> ``(scale*H, scale*W[, 3])`` in [0, 1].

    MATLAB-bicubic upscale, then :func:`sharpen_frames`.
    """
    return sharpen_frames(upscale(image, scale)[None], model)[0]

"""A burst merged onto the high-resolution grid in one pass: kernel regression with kernels shaped by
the reference's local structure, weighted by each sample's agreement with the reference (the
handheld multi-frame super-resolution of Wronski et al., SIGGRAPH 2019; IPOL 2023 article 460).

Every LR sample of every frame lands at its own position on the reference's HR grid (the
registration's inverse; geometry contract: HR = s * LR + (s - 1) / 2), where it is shared between
the four HR pixels around it (bilinear weights: a sample between pixels is not moved), with the
weight ``r`` of its agreement with the reference (0 where the frame disagrees there: what moves on
its own, :func:`multisr.reconstruction.agreement.agreeing_samples`). The sums of ``r * value`` and
of ``r`` are then convolved, each output pixel ``p`` with its own Gaussian, and divided
(normalised convolution)::

    result(p) = sum_q g_p(q - p) S_v(q) / sum_q g_p(q - p) S_r(q),   g_p(d) = exp(-d^T Omega(p)^-1 d / 2)

with ``d`` in LR pixels, ``q`` the HR pixels within :data:`REACH` LR pixels of ``p``, and
``Omega(p)`` the kernel's covariance at ``p`` from the structure tensor of the reference's Y
(:func:`kernel_covariances`): long along an edge and narrow across it where the reference has
one, wide and round in flat areas, which averages their noise away. No iterative solve, no
deconvolution: the result is the scene seen through the optics' and pixels' blur, sampled more
densely than any frame. On Set5's SR-protocol butterfly (20 frames, no noise, 3x) it is at 40.1 dB
PSNR from the truth blurred by MATLAB's kernel (the frames' own blur); with a reach of 2 HR pixels
37.1, of 3 33.7. Splatting each sample to its nearest HR pixel instead moves it by up to half an HR
pixel, and at even scales, where every LR pixel centre falls between HR pixels, all the same way.

Vectorised with torch (``index_add_`` for the sums, one product per kernel tap for the
convolution) on the run's device, in bands of :data:`BAND_ROWS` HR rows: memory is the frames',
the result's and a band's.
"""
import numpy as np
import torch
import cv2

from ..imaging.color import luma

__all__ = ["merge", "kernel_covariances", "KERNEL_DEFAULTS"]

# the kernel's shape (Wronski et al.'s parameters, in LR pixels): its width where the reference has
# detail, stretched along edges and shrunk across them, and its width in flat areas (denoising);
# flat is where the gradient (sqrt of the tensor's larger eigenvalue, per LR pixel, image in [0, 1])
# is under ``flat_below``, detail over ``flat_below + flat_ramp``
KERNEL_DEFAULTS = {"detail": 0.33, "stretch": 4.0, "shrink": 2.0, "denoise": 3.0, "flat_below": 0.005,
                   "flat_ramp": 0.03}
REACH = 1 / 3  # LR pixels around an output pixel that its kernel reaches (1 HR pixel at 2x and 3x, 2 at 4x)
BAND_ROWS = 384  # HR rows merged at a time: the memory of a band, not of the whole result


def kernel_covariances(reference_y: np.ndarray, *, detail: float, stretch: float, shrink: float, denoise: float,
                       flat_below: float, flat_ramp: float) -> np.ndarray:
    """The merge kernel's inverse covariance at every LR pixel of the reference.

    Args:
        reference_y: ``(h, w)`` float32 Y in [0, 1].
        detail, stretch, shrink, denoise, flat_below, flat_ramp: :data:`KERNEL_DEFAULTS`.

    Returns:
        ``(h, w, 3)`` float32 ``(a, b, c)`` of ``Omega^-1 = [[a, b], [b, c]]`` in LR pixels^-2 (x, y).
    """
    gx = cv2.Sobel(reference_y, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(reference_y, cv2.CV_32F, 0, 1, ksize=3) / 8
    xx, xy, yy = (cv2.GaussianBlur(g, (0, 0), 1.0) for g in (gx * gx, gx * gy, gy * gy))
    half_trace, difference = (xx + yy) / 2, np.sqrt(((xx - yy) / 2) ** 2 + xy**2)
    larger, smaller = half_trace + difference, np.maximum(half_trace - difference, 0)
    angle = 0.5 * np.arctan2(2 * xy, xx - yy)  # the larger eigenvector's: across the edge
    anisotropy = 1 + np.sqrt((larger - smaller) / np.maximum(larger + smaller, 1e-12))  # 1 (round) to 2 (an edge)
    flat = np.clip(1 - (np.sqrt(larger) - flat_below) / flat_ramp, 0, 1)
    along = ((1 - flat) * detail * stretch * anisotropy + flat * detail * denoise) ** 2
    across = ((1 - flat) * detail / (shrink * anisotropy) + flat * detail * denoise) ** 2
    cos, sin = np.cos(angle), np.sin(angle)  # across = (cos, sin), along = (-sin, cos)
    a = cos**2 / across + sin**2 / along
    b = cos * sin * (1 / across - 1 / along)
    c = sin**2 / across + cos**2 / along
    return np.stack([a, b, c], axis=-1).astype(np.float32)


def merge(frames: np.ndarray, matrices: np.ndarray, weights: np.ndarray, *, anchor: int, scale: int,
          brightness: np.ndarray | None = None, device: str = "cpu", kernel: dict | None = None,
          band: int = BAND_ROWS) -> np.ndarray:
    """The burst merged onto the reference's ``scale`` x grid, ``band`` HR rows at a time.

    Args:
        frames: ``(N, h, w[, 3])`` float32 in [0, 1].
        matrices: ``(N, 3, 3)`` registration, reference LR -> frame k LR (geometry contract).
        weights: ``(N, h, w)`` each sample's robustness in [0, 1] (0: left out; a frame left out
            of the burst has none).
        anchor: the reference's index.
        brightness: ``(N, 2)`` each frame's ``(gain, offset)`` against the reference
            (:func:`multisr.reconstruction.agreement.match_brightness`), undone as its samples are
            added: ``(value - offset) / gain``; ``None`` for none.
        kernel: :data:`KERNEL_DEFAULTS`' keys to change.

    Returns:
        ``(scale*h, scale*w[, 3])`` float32, not clipped; HR pixels no sample reaches take the
        reference's nearest sample.
    """
    height, width = frames.shape[1:3]
    channels = 1 if frames.ndim == 3 else frames.shape[3]
    out_h, out_w = scale * height, scale * width
    inverse = kernel_covariances(luma(frames[anchor]), **{**KERNEL_DEFAULTS, **(kernel or {})})
    reach = int(np.ceil(REACH * scale))
    present = [k for k in range(len(frames)) if weights[k].any()]  # once, not once a band
    back = {k: np.linalg.inv(matrices[k]) for k in present}  # frame k -> the reference
    result = np.empty((out_h, out_w, channels), np.float32)
    for top in range(0, out_h, band):
        bottom = min(top + band, out_h)
        sums = _landed_sums(frames, matrices, back, weights, brightness, scale, (top - reach, bottom + reach),
                            torch.device(device))
        rows = slice(top // scale, -(-bottom // scale))  # the LR rows whose kernels the band's pixels take
        shape = np.repeat(np.repeat(inverse[rows], scale, axis=0), scale, axis=1)
        shape = shape[top - scale * rows.start :][: bottom - top]
        result[top:bottom] = _normalised(sums, torch.from_numpy(np.ascontiguousarray(shape)).to(sums.device), reach,
                                         scale).cpu().numpy()
    unreached = ~np.isfinite(result[..., 0])
    if unreached.any():
        ys, xs = np.nonzero(unreached)
        result[ys, xs] = frames[anchor].reshape(height, width, channels)[ys // scale, xs // scale]
    return result[..., 0] if frames.ndim == 3 else result


def _landed_sums(frames, matrices, back: dict, weights, brightness, scale: int, hr_rows: tuple[int, int],
                 device) -> torch.Tensor:
    """``(channels + 1, rows, scale*w)``: the sums of weight x value and of weight of every sample
    that lands on HR rows ``hr_rows``, each shared between the four HR pixels around it (bilinear
    weights); only the frames of ``back`` (frame k -> its inverse matrix: those with a sample of
    positive weight), and of each only the rows that can land there, are mapped."""
    height, width = frames.shape[1:3]
    channels = 1 if frames.ndim == 3 else frames.shape[3]
    first, stop = hr_rows
    out_w = scale * width
    sums = torch.zeros(channels + 1, (stop - first) * out_w, dtype=torch.float32, device=device)
    lr_top, lr_bottom = (first - scale) / scale, (stop + scale) / scale  # the band in the reference's LR rows
    corners = np.array([[0, width - 1, 0, width - 1], [lr_top, lr_top, lr_bottom, lr_bottom], [1, 1, 1, 1]])
    columns = torch.arange(width, dtype=torch.float32, device=device)
    for k, inverse in back.items():
        mapped = matrices[k] @ corners
        ys = mapped[1] / mapped[2]
        r0, r1 = max(0, int(np.floor(ys.min())) - 1), min(height, int(np.ceil(ys.max())) + 2)
        if r0 >= r1:
            continue
        rows = torch.arange(r0, r1, dtype=torch.float32, device=device)[:, None]
        robust = torch.from_numpy(np.ascontiguousarray(weights[k, r0:r1], np.float32)).to(device).reshape(-1)
        to_reference = torch.from_numpy(inverse).to(device=device, dtype=torch.float32)
        depth = to_reference[2, 0] * columns + to_reference[2, 1] * rows + to_reference[2, 2]
        hx, hy = ((scale * (to_reference[i, 0] * columns + to_reference[i, 1] * rows + to_reference[i, 2]) / depth
                   + (scale - 1) / 2).reshape(-1) for i in (0, 1))
        left, upper = torch.floor(hx), torch.floor(hy)
        fx, fy = hx - left, hy - upper
        values = torch.from_numpy(frames[k, r0:r1]).to(device).reshape(-1, channels)
        if brightness is not None:
            values = (values - float(brightness[k, 1])) / float(brightness[k, 0])
        weighted = torch.cat([values * robust[:, None], robust[:, None]], dim=1).T  # (channels + 1, M); 0: left out
        for ox, oy, share in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                              (1, 1, fx * fy)):  # bilinear: a sample between HR pixels is shared, not moved
            tx, ty = left + ox, upper + oy
            inside = (tx >= 0) & (tx < out_w) & (ty >= first) & (ty < stop)
            target = ((ty - first).clamp(0, stop - first - 1) * out_w + tx.clamp(0, out_w - 1)).to(torch.int64)
            sums.index_add_(1, target, weighted * (share * inside))
    return sums.reshape(channels + 1, stop - first, out_w)


def _normalised(sums: torch.Tensor, shape: torch.Tensor, reach: int, scale: int) -> torch.Tensor:
    """Normalised convolution of ``sums`` (``(channels + 1, rows + 2 reach, W)``, ``reach`` rows of
    margin above and below) with each output pixel's own kernel (``shape``: ``(rows, W, 3)``, its
    inverse covariance): ``(rows, W, channels)``, NaN where no sample reaches."""
    rows, out_w = shape.shape[:2]
    padded = torch.nn.functional.pad(sums, (reach, reach))
    merged = torch.zeros(sums.shape[0], rows, out_w, dtype=sums.dtype, device=sums.device)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            u, v = dx / scale, dy / scale  # LR pixels
            weight = torch.exp(-0.5 * (shape[..., 0] * u * u + 2 * shape[..., 1] * u * v + shape[..., 2] * v * v))
            merged += weight * padded[:, reach + dy : reach + dy + rows, reach + dx : reach + dx + out_w]
    reached = merged[-1] > 1e-6
    values = merged[:-1] / merged[-1].clamp_min(1e-6)
    return torch.where(reached, values, torch.full_like(values, float("nan"))).permute(1, 2, 0)

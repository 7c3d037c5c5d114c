"""Multi-frame reconstruction on the high-resolution grid, with the sampling model of the burst.

Each low-resolution frame k is modelled as the unknown high-resolution image X (in the reference
frame's coordinates) moved by the frame's motion and downscaled with MATLAB bicubic::

    y_k = D(W_k X) + noise,   (W_k X)(q) = X(inv(A_hr_k) q),   A_hr_k = C A_k inv(C)

where ``A_k`` is the registration (reference LR -> frame k LR, geometry contract) and ``D`` the
antialiased 3x bicubic downscale that SR papers (and ``multisr simulate``) use. The solve
minimises the mean squared data error over the low-resolution pixels whose whole footprint lies
inside the reference frame, plus ``tv_weight`` times the total variation of X, with Adam from
the bicubic upscale of the reference frame. torch does the derivatives; no tensor leaves this
module.
"""
import numpy as np
import torch
import torch.nn.functional as F

from .geometry import to_high_resolution
from .resize import resize_matrix, upscale

__all__ = ["PSFS", "downscale_matrix", "reconstruct"]


PSFS = ("matlab", "box")


def downscale_matrix(in_len: int, scale: int, psf: str = "matlab") -> np.ndarray:
    """Dense ``(in_len // scale, in_len)`` matrix of a 1/scale downscale along one axis.

    ``psf="matlab"``: MATLAB's antialiased bicubic (how SR benchmarks and ``multisr simulate``
    make low-resolution frames). ``psf="box"``: each LR pixel averages the ``scale`` HR pixels it
    covers (a sensor integrating light over its pixel area).
    """
    out_len = in_len // scale
    if psf == "box":
        matrix = np.zeros((out_len, in_len))
        for row in range(out_len):
            matrix[row, row * scale : (row + 1) * scale] = 1.0 / scale
        return matrix
    return resize_matrix(in_len, out_len, 1 / scale).toarray()


def _normalizer(height: int, width: int) -> np.ndarray:
    """Pixel-centre coordinates -> grid_sample's normalised coordinates (align_corners=True)."""
    return np.array([[2 / (width - 1), 0, -1], [0, 2 / (height - 1), -1], [0, 0, 1]])


def reconstruct(
    frames_y: np.ndarray,
    matrices: np.ndarray,
    *,
    scale: int = 3,
    iterations: int = 150,
    tv_weight: float = 0.001,
    psf: str = "matlab",
    learning_rate: float = 0.02,
    device: torch.device = torch.device("cpu"),
    progress=None,
) -> np.ndarray:
    """Solve for the high-resolution Y of the reference frame.

    Args:
        frames_y: ``(N, h, w)`` float32 Y of the frames that take part (reference first or not).
        matrices: ``(N, 3, 3)`` their registration matrices; the reference's is the identity.
        scale: the magnification; the output is ``(scale*h, scale*w)``.
        iterations: Adam steps; the step size drops to 30 % for the last third.
        tv_weight: weight of the total-variation prior (Y in [0, 1] units).
        psf: how an LR pixel samples the HR image, see :func:`downscale_matrix`.
        progress: called with 1 after each step, if given.

    Returns:
        ``(scale*h, scale*w)`` float32 Y, not clipped.
    """
    count, height, width = frames_y.shape
    big_h, big_w = height * scale, width * scale
    down_y = torch.tensor(downscale_matrix(big_h, scale, psf), dtype=torch.float32, device=device)
    down_x = torch.tensor(downscale_matrix(big_w, scale, psf), dtype=torch.float32, device=device)
    normalizer = _normalizer(big_h, big_w)
    # frame k's HR pixel q samples X at inv(A_hr_k) q; as grid_sample's theta in normalised coordinates
    theta = np.stack([normalizer @ np.linalg.inv(a) @ np.linalg.inv(normalizer) for a in to_high_resolution(matrices, scale)])
    theta = torch.tensor(theta[:, :2], dtype=torch.float32, device=device)
    grid = F.affine_grid(theta, (count, 1, big_h, big_w), align_corners=True)
    inside = ((grid.abs() <= 1).all(dim=-1)).float()
    # an LR pixel is used only when every HR pixel its kernel touches comes from inside X
    footprint_y, footprint_x = (down_y != 0).float(), (down_x != 0).float()
    outside_weight = footprint_y @ (1 - inside) @ footprint_x.T
    mask = (outside_weight == 0).float()
    observed = torch.tensor(frames_y, dtype=torch.float32, device=device)
    start = upscale(frames_y[int(np.argmin([np.abs(m - np.eye(3)).sum() for m in matrices]))], scale)
    estimate = torch.tensor(start, dtype=torch.float32, device=device).requires_grad_(True)
    optimizer = torch.optim.Adam([estimate], lr=learning_rate)
    for step in range(iterations):
        if step == (2 * iterations) // 3:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * 0.3
        moved = F.grid_sample(estimate[None, None].expand(count, 1, big_h, big_w), grid, mode="bicubic",
                              padding_mode="border", align_corners=True)[:, 0]
        residual = (down_y @ moved @ down_x.T - observed) * mask
        data = (residual**2).sum() / mask.sum()
        dy = estimate[1:, :-1] - estimate[:-1, :-1]
        dx = estimate[:-1, 1:] - estimate[:-1, :-1]
        prior = torch.sqrt(dx**2 + dy**2 + 1e-6).mean()
        loss = data + tv_weight * prior
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(1)
    return estimate.detach().cpu().numpy()

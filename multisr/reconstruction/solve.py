"""The multi-frame least-squares solve: conjugate gradients under a total-variation prior.

:func:`solve` minimises ``sum w (S (h * X) - y)^2 / sum w + tv_weight * mean TV(X)`` by
iteratively reweighted least squares (a few rounds of Jacobi-preconditioned conjugate
gradients with the total variation's weights frozen), in torch on the device it is given
(:class:`multisr.reconstruction.operator.BurstOperator` holds the products with ``A = S h``
there). :func:`solve_burst` sets it up for a burst; :mod:`multisr.reconstruction.tiles` runs
it over a whole burst in tiles.
"""
import cv2
import numpy as np
import torch
from scipy import sparse

from .observation import blur, burst_sampling, grid_pad, psf_kernel
from .operator import BurstOperator

__all__ = ["solve", "solve_burst", "predicted_frames"]

def _total_variation_weights(image: torch.Tensor, guide_squares: torch.Tensor | float = 0.0, epsilon: float = 1e-3
                             ) -> torch.Tensor:
    """IRLS weights ``1 / sqrt(|grad X|^2 + |grad G|^2 + eps^2)`` of the Charbonnier total
    variation, ``(H, W)``; ``guide_squares`` is a guide image G's ``|grad G|^2`` (0 without one)."""
    gx, gy = _forward_differences(image)
    return torch.rsqrt(gx * gx + gy * gy + guide_squares + epsilon**2)


def _forward_differences(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X[:, j+1] - X[:, j], X[i+1] - X[i])``, zero at the last column and row (replicated border)."""
    gx, gy = torch.zeros_like(image), torch.zeros_like(image)
    torch.sub(image[:, 1:], image[:, :-1], out=gx[:, :-1])
    torch.sub(image[1:], image[:-1], out=gy[:-1])
    return gx, gy


def _gradient_operator(image: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``D^T diag(weights) D image`` for forward differences with a replicated border."""
    gx, gy = _forward_differences(image)
    gx *= weights
    gy *= weights
    out = -gx
    out -= gy
    out[:, 1:] += gx[:, :-1]
    out[1:] += gy[:-1]
    return out


def _gradient_diagonal(tv: torch.Tensor) -> torch.Tensor:
    """``(H, W)``: the diagonal of :func:`_gradient_operator` with weights ``tv``."""
    diagonal = torch.zeros_like(tv)
    diagonal[:, :-1] += tv[:, :-1]
    diagonal[:, 1:] += tv[:, :-1]
    diagonal[:-1] += tv[:-1]
    diagonal[1:] += tv[:-1]
    return diagonal


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a.reshape(-1), b.reshape(-1)))


def solve(samples: np.ndarray, weights: np.ndarray, matrix: sparse.csr_matrix, kernel: np.ndarray | tuple,
          start: np.ndarray, *, tv_weight: float, density: float | None = None, rounds: int = 4,
          cg_steps: int = 8, guide: np.ndarray | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """Minimise ``sum w (S (h * X) - y)^2 / sum w + tv_weight * sum(TV(X)) / (sum w / density)`` over X,
    from ``start``: with ``density`` the weight of samples per pixel of X (by default this
    problem's own, ``sum w / X.size``), the prior is ``tv_weight`` times the mean total variation.
    A tile of a larger problem passes the whole's density, so that its prior weighs as much as
    in the whole.

    Args:
        samples: ``(P,)`` the observed LR values ``y``; weights: ``(P,)`` their weights ``w``.
        matrix: ``S``, ``(P, H*W)`` (:func:`multisr.reconstruction.observation.sampling_matrix`); kernel: ``h``'s 1-D
            kernel (or a pair: along x, along y).
        start: ``(H, W)`` float32 first estimate (the bicubic upscale of the reference).
        rounds: IRLS rounds of the total variation; cg_steps: conjugate-gradient steps in each,
            preconditioned by the normal matrix's diagonal (Jacobi; its data part without the
            products of different taps). 8 preconditioned steps end nearer the minimum than
            12 plain ones did, at two thirds of the cost.
        guide: ``(H, W)`` an image whose edges the solution may share at a lower cost (the
            vectorial total variation of X and the guide: chroma guided by luma), if given.
        device: the torch device the solve runs on (:class:`multisr.reconstruction.operator.BurstOperator`).

    Returns:
        ``(H, W)`` float32 (numpy, on the host), not clipped.
    """
    used = weights > 0  # the samples that count: the others cost products and change nothing
    if not used.all():
        matrix, samples, weights = matrix[used], samples[used], weights[used]
    operator = BurstOperator(matrix, kernel, start.shape, torch.device(device))
    total = max(float(weights.sum()), 1.0)
    scale_data = 1.0 / total
    scale_prior = tv_weight / start.size if density is None else tv_weight * density / total
    weights = operator.tensor(weights)

    def data_normal(image):  # A^T W A image / sum w
        return operator.spread(weights * operator.sample(image)) * scale_data

    estimate = operator.tensor(start).clone()
    right = operator.spread(weights * operator.tensor(samples)) * scale_data
    # the diagonal of A^T W A without the products of different taps: close enough to
    # precondition with, and positive
    data_diagonal = operator.spread(weights, squared=True) * scale_data
    residual = right - data_normal(estimate)  # of the data term; each round subtracts its own prior's
    guide_squares = 0.0
    if guide is not None:
        gx, gy = _forward_differences(operator.tensor(guide))
        guide_squares = gx * gx + gy * gy
    for _ in range(rounds):
        tv = _total_variation_weights(estimate, guide_squares)

        def normal(image):
            return data_normal(image) + scale_prior * _gradient_operator(image, tv)

        # Jacobi: the total variation's weights span three orders of magnitude (flat regions
        # weigh most), which plain conjugate gradients crawl through
        inverse = 1.0 / (data_diagonal + scale_prior * _gradient_diagonal(tv)).clamp(min=1e-12)
        residual -= scale_prior * _gradient_operator(estimate, tv)  # this round's, without a product with A
        preconditioned = residual * inverse
        direction = preconditioned.clone()
        energy = _dot(residual, preconditioned)
        for _ in range(cg_steps):
            if energy < 1e-20:
                break
            step_image = normal(direction)
            alpha = energy / _dot(direction, step_image)
            estimate += alpha * direction
            residual -= alpha * step_image
            preconditioned = residual * inverse
            new_energy = _dot(residual, preconditioned)
            direction = preconditioned + (new_energy / energy) * direction
            energy = new_energy
        residual += scale_prior * _gradient_operator(estimate, tv)  # back to the data term's alone
    return estimate.cpu().numpy()


def solve_burst(frames_y, matrices, weights, psf, scale, tv_weight, start, used=None, sampling=None, rounds=4,
                density=None, cg_steps=8, guide=None, device="cpu") -> tuple[np.ndarray, dict]:
    """One solve over the frames ``used`` (default all), on the output grid widened by :func:`multisr.reconstruction.observation.grid_pad`.

    ``frames_y``, ``weights``: ``(N, h, w)``; ``matrices``: the frames' registration against the
    output's LR grid; ``psf``: a PSF's name, its 1-D kernel or a pair of them (along x, along
    y); ``start`` (and ``guide``, if
    given): ``(H, W)`` on the output grid (which sets its size);
    ``sampling``: :func:`multisr.reconstruction.observation.burst_sampling` of ``matrices`` if already made (by
    default made here for the samples of positive weight); ``rounds``, ``density``,
    ``cg_steps``, ``guide``, ``device``: :func:`solve`'s. Returns the ``(H, W)`` estimate and ``parts``: the widened
    estimate, the sampling matrix, which samples have a row in it (``"inside"``, flat), every
    sample's position on the widened grid, the kernel.
    """
    count = len(frames_y)
    pad = grid_pad(scale)
    if sampling is None:
        sampling = burst_sampling(matrices, frames_y.shape[1:], scale, start.shape, keep=weights > 0)
    matrix, inside, positions = sampling
    w = weights.reshape(count, -1).astype(np.float32)
    if used is not None:
        w[~np.isin(np.arange(count), used)] = 0
    kernel = psf_kernel(psf, scale) if isinstance(psf, str) else psf  # a name, a kernel or a pair (x, y)
    widened = cv2.copyMakeBorder(start.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    if guide is not None:
        guide = cv2.copyMakeBorder(guide.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    widened = solve(frames_y.reshape(-1)[inside].astype(np.float32), w.ravel()[inside], matrix, kernel, widened,
                    tv_weight=tv_weight, density=density, rounds=rounds, cg_steps=cg_steps, guide=guide, device=device)
    return widened[pad:-pad, pad:-pad], {"widened": widened, "matrix": matrix, "inside": inside, "positions": positions,
                                         "kernel": kernel}


def predicted_frames(parts: dict, shape: tuple[int, int, int]) -> np.ndarray:
    """Every frame as a solve predicts it, ``S (h * X)``, ``shape = (N, h, w)`` (``parts`` from
    :func:`solve_burst`; zero for the samples without a row)."""
    predicted = np.zeros(int(np.prod(shape)), np.float32)
    predicted[parts["inside"]] = parts["matrix"] @ blur(parts["widened"], parts["kernel"]).ravel()
    return predicted.reshape(shape)

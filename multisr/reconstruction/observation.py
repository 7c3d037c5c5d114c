"""How a frame sees the high-resolution image: the point-spread function and the sampling.

Frame k's low-resolution pixel ``q`` sees the high-resolution image X blurred by the PSF ``h``
and sampled at ``P_k(q) = C inv(A_k) q`` (``A_k`` the registration, ``C`` the LR -> HR
pixel-centre map; see :mod:`multisr.reconstruction.reconstruct`). ``h`` is separable, in HR pixels:

- ``"matlab"``: MATLAB's antialiased bicubic downscale (how SR benchmarks make frames);
- ``"box"``: each LR pixel averages the ``scale x scale`` HR pixels it covers (a sensor);
- ``"box+<sigma>"``: that, after a Gaussian optical blur of ``sigma`` LR pixels;
- ``"auto"`` (a request, not a PSF): :func:`multisr.reconstruction.reconstruct.choose_psf` picks one of
  :data:`AUTO_CANDIDATES` from the burst, and places a ``box+<sigma>`` between them.

The sampling is one sparse matrix (bicubic, 16 entries a sample) on the solve's grid, the HR
grid widened by :func:`grid_pad` pixels on each side.
"""
import cv2
import numpy as np
from scipy import sparse

from ..imaging.geometry import apply, scale_matrix
from ..imaging.resize import keys_cubic

__all__ = ["AUTO_CANDIDATES", "parse_psf", "psf_kernel", "nyquist_gain", "blur", "along_axes", "to_grid", "grid_pad",
           "sampling_positions", "sampling_matrix", "burst_sampling"]

AUTO_CANDIDATES = ("box", "matlab", "box+0.1", "box+0.2", "box+0.3", "box+0.4", "box+0.5", "box+0.6", "box+0.75")


def parse_psf(psf: str) -> tuple[str, float]:
    """``"matlab"``, ``"box"``, ``"box+<sigma>"`` or ``"auto"`` -> ``(kind, sigma in LR pixels)``;
    raises ``ValueError`` naming what was expected."""
    kind, _, sigma = psf.partition("+")
    try:
        value = float(sigma) if sigma else 0.0
    except ValueError:
        value = -1.0
    if kind in ("matlab", "auto") and not sigma:
        return kind, 0.0
    if kind == "box" and np.isfinite(value) and 0 <= value <= 5:
        return kind, value
    raise ValueError(f"psf: expected auto, matlab, box or box+SIGMA (SIGMA in LR pixels, 0 to 5), got {psf!r}")


def psf_kernel(psf: str, scale: int) -> np.ndarray:
    """The 1-D kernel of a separable PSF (see the module docstring) in HR pixels, odd length, sum 1,
    centred on an HR pixel.

    The box is the LR pixel's footprint, ``scale`` HR pixels wide: each HR pixel weighs the part
    of it the footprint covers (at an even ``scale`` the end taps half; the solve samples the
    blurred image between HR pixels there, as the geometry contract places LR pixel centres).
    """
    kind, sigma = parse_psf(psf)
    if kind == "matlab":
        taps = np.arange(-2 * scale, 2 * scale + 1, dtype=np.float64)
        kernel = keys_cubic(taps / scale)
    else:
        radius = scale // 2 + int(np.ceil(3 * sigma * scale))
        taps = np.arange(-radius, radius + 1, dtype=np.float64)
        kernel = np.clip(scale / 2 + 0.5 - np.abs(taps), 0.0, 1.0)
        if sigma > 0:
            gaussian = np.exp(-0.5 * (taps / (sigma * scale)) ** 2)
            kernel = np.convolve(kernel, gaussian / gaussian.sum(), mode="same")
    return (kernel / kernel.sum()).astype(np.float32)


def nyquist_gain(psf: str, scale: int) -> float:
    """A PSF's gain at the LR Nyquist frequency (half a cycle per LR pixel), 1 for no blur: the
    milder of two PSFs passes more there."""
    kernel = psf_kernel(psf, scale).astype(np.float64)
    taps = np.arange(len(kernel)) - len(kernel) // 2
    return float(np.sum(kernel * np.cos(np.pi * taps / scale)))


def blur(image: np.ndarray, kernel: np.ndarray | tuple) -> np.ndarray:
    """``kernel`` (symmetric, 1-D) along both axes of ``(H, W)`` float32 (a pair: along x, along
    y), zeros beyond the border.

    Zero padding keeps the operator its own adjoint (conjugate gradients need that); the
    samples the solve uses lie far enough inside that the padding never reaches them.
    """
    along_x, along_y = along_axes(kernel)
    return cv2.sepFilter2D(image, cv2.CV_32F, along_x, along_y, borderType=cv2.BORDER_CONSTANT)


def along_axes(kernel: np.ndarray | tuple) -> tuple[np.ndarray, np.ndarray]:
    """A PSF's kernels ``(along x, along y)``, float32: ``kernel`` itself twice, or the pair it is."""
    pair = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    return tuple(np.asarray(k, np.float32) for k in pair)


def to_grid(scale: int, pad: int) -> np.ndarray:
    """Reference LR coordinates -> the solve's grid: the HR grid with ``pad`` pixels more on each side."""
    c = scale_matrix(scale)
    c[:2, 2] += pad
    return c


def grid_pad(scale: int) -> int:
    """HR pixels the solve's grid extends beyond the output on each side: the widest candidate
    PSF's reach, so that every sample inside the output has its whole footprint on the grid."""
    return 2 * scale


def sampling_positions(matrices: np.ndarray, lr_shape: tuple[int, int], scale: int, pad: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``, each ``(N, h, w)``: where frame k's LR pixel centres lie on the reference's HR grid
    (widened by ``pad`` pixels on each side)."""
    height, width = lr_shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    c = to_grid(scale, pad)
    positions = [apply(c @ np.linalg.inv(m), xs, ys) for m in matrices]
    return np.stack([p[0] for p in positions]), np.stack([p[1] for p in positions])


def sampling_matrix(x: np.ndarray, y: np.ndarray, hr_shape: tuple[int, int], *, margin: float,
                    keep: np.ndarray | None = None) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Bicubic (Keys a = -0.5) sampling of an ``hr_shape`` image at the points ``(x, y)``.

    Returns ``(S, rows)``: ``rows`` is a flat bool array, one per point, True for the points at
    least ``margin`` HR pixels inside the grid's pixel centres (and ``keep``, where given: the
    samples that will count), and ``S`` is ``(rows.sum(), H*W)`` sparse, one row of 16 entries
    per such point, in order. A point without a row costs nothing in the solve's products.
    """
    if margin < 2:
        raise ValueError(f"margin: expected at least 2 HR pixels (the taps reach 2 beyond a point), got {margin}")
    height, width = hr_shape
    x, y = x.ravel(), y.ravel()
    rows = (x >= margin) & (x <= width - 1 - margin) & (y >= margin) & (y <= height - 1 - margin)
    if keep is not None:
        rows &= keep.ravel()
    x, y = x[rows], y[rows]
    floor_x, floor_y = np.floor(x), np.floor(y)
    wx = _cubic_taps((x - floor_x).astype(np.float32))  # (points, 4): the taps at floor - 1 .. floor + 2
    wy = _cubic_taps((y - floor_y).astype(np.float32))
    index = np.int32 if height * width < 2**31 else np.int64
    # every tap lies on the grid (margin >= 2): a row's 16 columns are its first tap's index plus
    # one offset each (an addition over rows of 16, six times faster than over 4 x 4)
    first = (floor_y.astype(index) - 1) * index(width) + floor_x.astype(index) - 1
    offsets = (np.arange(4, dtype=index)[:, None] * index(width) + np.arange(4, dtype=index)).ravel()
    cols = first[:, None] + offsets
    data = wy[:, :, None] * wx[:, None, :]
    indptr = np.arange(0, 16 * x.size + 1, 16, dtype=np.int64 if 16 * x.size >= 2**31 else np.int32)
    matrix = sparse.csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(x.size, height * width))
    return matrix, rows


def _cubic_taps(t: np.ndarray) -> np.ndarray:
    """``(P, 4)``: Keys' cubic (a = -0.5) at ``t + 1, t, 1 - t, 2 - t`` for fractions ``t`` in
    [0, 1), ``(P,)``: the weights of the taps at floor - 1 .. floor + 2 (the same numbers as
    :func:`~multisr.imaging.resize.keys_cubic`, in four polynomials of ``t``)."""
    t2 = t * t
    t3 = t2 * t
    taps = np.empty((t.size, 4), np.float32)
    taps[:, 0] = 0.5 * (2 * t2 - t3 - t)
    taps[:, 1] = 0.5 * (3 * t3 - 5 * t2 + 2)
    taps[:, 2] = 0.5 * (4 * t2 - 3 * t3 + t)
    taps[:, 3] = 0.5 * (t3 - t2)
    return taps


def burst_sampling(matrices: np.ndarray, lr_shape: tuple[int, int], scale: int, out_shape: tuple[int, int], *,
                   keep: np.ndarray | None = None
                   ) -> tuple[sparse.csr_matrix, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """:func:`sampling_matrix` of every frame (``lr_shape`` each) on the solve's grid, the
    ``out_shape`` HR grid widened by :func:`grid_pad`, with a row for each sample inside it and
    ``keep`` (``(N, h, w)`` bool, if given); returns ``(S, rows, (x, y))``: the matrix, the flat
    bool mask of the samples with a row, and every sample's position on the grid."""
    pad = grid_pad(scale)
    x, y = sampling_positions(matrices, lr_shape, scale, pad)
    matrix, rows = sampling_matrix(x, y, (out_shape[0] + 2 * pad, out_shape[1] + 2 * pad), margin=pad, keep=keep)
    return matrix, rows, (x, y)

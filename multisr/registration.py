"""Frame registration: Fourier-Mellin with imreg-dft (the only module that imports it), then
an optional sub-pixel refinement by ECC.

imreg-dft estimates, for a frame against the reference, the ``scale``, ``angle`` and ``tvec``
that map the frame onto the reference about the image centre. Its angle turns the other way
from the geometry contract's, and ``tvec`` is ``(y, x)``. :func:`register_pair` converts that,
once, into the contract's matrix ``A``: reference coordinates -> frame coordinates.

Fourier-Mellin alone is accurate to about 0.5 low-resolution pixel on small frames (measured on
simulated bursts), which blurs a fusion below plain bicubic. ``refine="ecc"`` starts OpenCV's
enhanced-correlation-coefficient maximisation (Evangelidis & Psarakis 2008) from it, with a
rigid (rotation + translation) model, which brings the error to a few hundredths of a pixel.
"""
import warnings
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .color import luma
from .geometry import similarity_matrix, similarity_parameters

with warnings.catch_warnings():  # imreg-dft 2.0 imports the deprecated scipy.ndimage.interpolation
    warnings.simplefilter("ignore", DeprecationWarning)
    import imreg_dft

__all__ = ["Registration", "REFINEMENTS", "register_pair", "refine_ecc", "register_burst"]

REFINEMENTS = ("ecc", "none")


@dataclass
class Registration:
    """One frame's registration against the reference.

    Attributes:
        matrix: 3x3, reference LR pixel coordinates -> this frame's (geometry contract).
        success: imreg-dft's success score (phase-correlation peak strength, 0..1, higher better).
        scale, angle, tx, ty: ``matrix`` as a similarity about the origin (angle in degrees).
        excluded: why the frame is left out of the fusion, or ``None`` when it is used.
    """

    matrix: np.ndarray
    success: float
    scale: float
    angle: float
    tx: float
    ty: float
    excluded: str | None = None

    def to_json(self) -> dict:
        """JSON-able dict (the matrix as nested lists)."""
        data = asdict(self)
        data["matrix"] = self.matrix.tolist()
        return data


def refine_ecc(reference_y: np.ndarray, frame_y: np.ndarray, matrix: np.ndarray, *, border: int = 4) -> np.ndarray | None:
    """Refine a registration matrix of ``frame_y`` against ``reference_y`` (``(H, W)`` Y) by ECC.

    The rigid model starts from ``matrix``'s rotation and its displacement of the image centre.
    ``border`` pixels at the reference's edges are left out. Returns the refined 3x3 matrix, or
    ``None`` when ECC does not converge.
    """
    height, width = reference_y.shape
    angle = np.arctan2(matrix[1, 0], matrix[0, 0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    center = np.array([(width - 1) / 2, (height - 1) / 2])
    start = np.zeros((2, 3), dtype=np.float32)
    start[:, :2] = rotation
    start[:, 2] = matrix[:2, :2] @ center + matrix[:2, 2] - rotation @ center
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[border : height - border, border : width - border] = 1
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    try:
        _, warp_matrix = cv2.findTransformECC(reference_y.astype(np.float32), frame_y.astype(np.float32), start,
                                              cv2.MOTION_EUCLIDEAN, criteria, mask, 1)
    except cv2.error:
        return None
    refined = np.eye(3)
    refined[:2] = warp_matrix
    return refined


def register_pair(reference: np.ndarray, frame: np.ndarray, *, iterations: int = 3, refine: str = "ecc") -> Registration:
    """Register ``frame`` against ``reference`` (both ``(H, W[, 3])``, same shape) on their Y.

    ``refine``: ``"ecc"`` (Fourier-Mellin, then ECC) or ``"none"`` (Fourier-Mellin only).
    """
    ref_y, frame_y = luma(reference).astype(np.float64), luma(frame).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = imreg_dft.similarity(ref_y, frame_y, numiter=iterations)
    height, width = ref_y.shape
    # imreg-dft: frame point q -> reference point c + s R(-angle) (q - c) + (tx, ty).
    frame_to_reference = similarity_matrix(
        scale=float(result["scale"]),
        angle=-float(result["angle"]),
        shift=(float(result["tvec"][1]), float(result["tvec"][0])),
        center=((width - 1) / 2, (height - 1) / 2),
    )
    matrix = np.linalg.inv(frame_to_reference)
    excluded = None
    if refine == "ecc":
        refined = refine_ecc(ref_y, frame_y, matrix)
        if refined is None:
            excluded = "ECC refinement did not converge"
        else:
            matrix = refined
    return Registration(matrix=matrix, success=float(result["success"]), excluded=excluded,
                        **similarity_parameters(matrix))


def _implausible(reg: Registration, shape: tuple[int, int], *, min_success: float, max_scale_change: float,
                 max_shift_fraction: float) -> str | None:
    if reg.success < min_success:
        return f"registration success {reg.success:.3f} below {min_success}"
    if not (1 / (1 + max_scale_change) <= reg.scale <= 1 + max_scale_change):
        return f"implausible scale {reg.scale:.3f}"
    height, width = shape
    if abs(reg.tx) > max_shift_fraction * width or abs(reg.ty) > max_shift_fraction * height:
        return f"implausible shift ({reg.tx:.1f}, {reg.ty:.1f}) px"
    return None


def register_burst(
    frames: np.ndarray,
    *,
    reference: int = 0,
    iterations: int = 3,
    refine: str = "ecc",
    min_success: float = 0.1,
    max_scale_change: float = 0.2,
    max_shift_fraction: float = 0.5,
    progress=None,
) -> list[Registration]:
    """Register every frame of ``(N, H, W[, 3])`` against ``frames[reference]`` (see :func:`register_pair`).

    A frame whose success score is below ``min_success``, whose scale leaves
    ``[1/(1+max_scale_change), 1+max_scale_change]`` or whose shift exceeds
    ``max_shift_fraction`` of the frame's size is marked ``excluded`` with the reason. The
    reference gets the identity. ``progress(k)`` is called after each frame, if given.
    """
    results = []
    for k, frame in enumerate(frames):
        if k == reference:
            reg = Registration(np.eye(3), 1.0, **similarity_parameters(np.eye(3)))
        else:
            reg = register_pair(frames[reference], frame, iterations=iterations, refine=refine)
            reg.excluded = reg.excluded or _implausible(reg, frames.shape[1:3], min_success=min_success,
                                        max_scale_change=max_scale_change, max_shift_fraction=max_shift_fraction)
        results.append(reg)
        if progress is not None:
            progress(k)
    return results

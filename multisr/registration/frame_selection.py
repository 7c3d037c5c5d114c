"""Which frames take part, and which one is the reference: sharpness, the sharpest frame, and the
policy that leaves a frame out of a burst (blurred, another scene, implausible motion)."""
import cv2
import numpy as np

__all__ = ["RESIDUAL_RATIO", "SHARPNESS_TIE", "sharpness", "sharpest_frame", "median_residual", "reason_to_leave_out"]

RESIDUAL_RATIO = 1.4  # a refined frame whose residual exceeds the burst's median this many times fits poorly
SHARPNESS_TIE = 0.05  # frames this fraction less sharp than the sharpest count as equally sharp


def sharpness(y: np.ndarray) -> float:
    """Mean squared Sobel gradient of a ``(H, W)`` Y image: lower for a blurred frame of the same scene."""
    y = np.asarray(y, dtype=np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1)
    return float(np.mean(gx * gx + gy * gy))


def sharpest_frame(frames_y, *, tie: float = SHARPNESS_TIE) -> int:
    """Index of the sharpest of the ``(H, W)`` Y frames ``frames_y`` (any iterable;
    :func:`sharpness`), the
    reference a burst is best solved for: a handheld burst often starts with a frame blurred by
    the press of the shutter, and every pipeline keeps the reference's content where the other
    frames disagree with it. Frames within ``tie`` (a fraction) of the sharpest count as equally
    sharp, and the earliest of them is taken: a burst of equally sharp frames keeps its first.
    """
    values = np.array([sharpness(y) for y in frames_y])
    return int(np.flatnonzero(values >= (1 - tie) * values.max())[0])


def median_residual(results: list, reference: int) -> float | None:
    """The median refinement residual of a burst's registrations (each a
    :class:`multisr.registration.burst.Registration`; this module imports none, so that the burst's
    registration can import it) but the reference's, or ``None`` without any."""
    residuals = [r.residual for k, r in enumerate(results) if k != reference and r.residual is not None]
    return float(np.median(residuals)) if residuals else None


def reason_to_leave_out(reg, shape: tuple[int, int], median_success: float,
                         median_residual: float | None, *, min_success: float, min_correlation: float,
                         min_sharpness: float, max_scale_change: float, max_shift_fraction: float) -> str | None:
    """Why the frame registered as ``reg`` (a :class:`multisr.registration.burst.Registration`, of a frame
    of ``shape``) is left out of its burst, or ``None`` when it is used (see
    :func:`multisr.registration.burst.register_burst` for the rules and their parameters)."""
    if reg.sharpness < min_sharpness:  # first: a blurred frame also fails to agree with the reference
        return f"blurred: sharpness {reg.sharpness:.2f} of the burst's median, below {min_sharpness}"
    if reg.excluded:
        return reg.excluded
    # A weak coarse peak alone does not condemn a refined frame (a moving object that drew the peak
    # away weakens it, harmlessly): it must also fit the reference worse than the burst does
    poor_fit = reg.residual is None or not median_residual or reg.residual > RESIDUAL_RATIO * median_residual
    if reg.success < min_success * median_success and poor_fit:
        return f"registration success {reg.success:.2f} below {min_success} of the burst's median {median_success:.2f}"
    if reg.correlation is not None and reg.correlation < min_correlation:
        return f"correlation {reg.correlation:.2f} below {min_correlation}: another scene or a changed one"
    if not (1 / (1 + max_scale_change) <= reg.scale <= 1 + max_scale_change):
        return f"implausible scale {reg.scale:.3f}"
    height, width = shape
    if abs(reg.tx) > max_shift_fraction * width or abs(reg.ty) > max_shift_fraction * height:
        return f"implausible shift ({reg.tx:.1f}, {reg.ty:.1f}) px"
    return None

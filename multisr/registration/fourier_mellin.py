"""Fourier-Mellin registration (Reddy & Chatterji 1996) with the reference's spectra computed once.

Rotation and scale turn into shifts of the log-polar magnitude spectrum, which phase
correlation finds; translation is then found by phase correlation of the de-rotated,
de-scaled frame. :class:`FourierMellin` prepares the reference once (window, spectrum,
high-pass, log-polar resampling and its spectrum), so each further frame costs four FFTs and a
few OpenCV resamplings, all of which release the GIL (frames can be registered in threads).

Conventions follow the geometry contract: the estimated matrix ``A`` maps reference pixel
coordinates to frame coordinates, so ``frame(A p) ~ reference(p)``.

:func:`imreg_dft_similarity` runs the imreg-dft package instead (the original experiment's
registration; this is the only module that imports it). imreg-dft estimates ``scale``,
``angle`` and ``tvec`` mapping the frame onto the reference about the image centre; its angle
turns the other way from the geometry contract's and ``tvec`` is ``(y, x)``: the function
converts that, once, into the contract's matrix ``A``.
"""
import warnings

import cv2
import numpy as np

from ..imaging.geometry import similarity_matrix

with warnings.catch_warnings():  # imreg-dft 2.0 imports the deprecated scipy.ndimage.interpolation
    warnings.simplefilter("ignore", DeprecationWarning)
    import imreg_dft

__all__ = ["FourierMellin", "phase_correlation", "imreg_dft_similarity"]


def _spectrum(image: np.ndarray) -> np.ndarray:
    """Complex DFT of a real ``(H, W)`` float32 image as OpenCV's ``(H, W, 2)`` array."""
    return cv2.dft(image, flags=cv2.DFT_COMPLEX_OUTPUT)


def _magnitude(spectrum: np.ndarray) -> np.ndarray:
    """``|z|`` of OpenCV's ``(H, W, 2)`` complex array, float32. (``cv2.magnitude`` gives other
    numbers on its first call in a process than on later ones, by up to 4e-6: runs would differ.)"""
    return np.sqrt(spectrum[..., 0] * spectrum[..., 0] + spectrum[..., 1] * spectrum[..., 1])


def phase_correlation(reference_spectrum: np.ndarray, image: np.ndarray) -> tuple[float, float, float]:
    """Shift ``(dx, dy)`` in pixels such that ``image(p + d) ~ reference(p)``, and the peak height.

    ``reference_spectrum`` is :func:`_spectrum` of the reference; ``image`` is ``(H, W)``
    float32 of the same shape. The peak is refined to sub-pixel by a 3x3 centroid; shifts
    wrap around (the result lies within half the image size). The peak height is in [0, 1]:
    1 for a pure circular shift, near 0 for unrelated images. Raises ``ValueError`` when there
    is no peak (either image flat).
    """
    cross = cv2.mulSpectrums(_spectrum(image), reference_spectrum, 0, conjB=True)
    magnitude = _magnitude(cross) + 1e-12
    cross /= magnitude[..., None]
    surface = cv2.idft(cross, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    height, width = surface.shape
    _, peak, _, (px, py) = cv2.minMaxLoc(surface)
    rows = [(py + d) % height for d in (-1, 0, 1)]
    cols = [(px + d) % width for d in (-1, 0, 1)]
    patch = np.maximum(surface[np.ix_(rows, cols)], 0)
    total = patch.sum()
    if not total > 0:  # a flat image (no texture) has no spectrum, so no peak
        raise ValueError("no peak: an image without texture")
    dy = py + float((patch.sum(axis=1) @ np.array([-1.0, 0.0, 1.0])) / total)
    dx = px + float((patch.sum(axis=0) @ np.array([-1.0, 0.0, 1.0])) / total)
    dx = dx - width if dx > width / 2 else dx
    dy = dy - height if dy > height / 2 else dy
    return dx, dy, float(peak)


class FourierMellin:
    """Registers frames against one reference ``(H, W)`` Y image, whose spectra it keeps.

    Args:
        reference: ``(H, W)`` float Y of the reference frame.
        max_side: frames larger than this (pixels, longer side) are registered on a copy
            shrunk to it (area average): a coarse estimate needs no more, and it costs a tenth.

    ``register(frame)`` returns ``(A, success)``: ``A`` the 3x3 similarity matrix (reference
    coordinates -> frame coordinates, full resolution) and ``success`` the translation peak
    height in [0, 1]. Accurate to a few tenths of a pixel and about a tenth of a degree (more
    on shrunk frames): a start for the robust refinement.
    """

    def __init__(self, reference: np.ndarray, *, max_side: int = 256):
        reference = np.asarray(reference, dtype=np.float32)
        self.full_shape = reference.shape
        height, width = reference.shape
        factor = max(1.0, max(height, width) / max_side)
        self.small_size = (max(1, round(width / factor)), max(1, round(height / factor)))  # (w, h)
        # full-resolution pixel centre x -> shrunk x: (x + 0.5) * small / full - 0.5, per axis
        sx, sy = self.small_size[0] / width, self.small_size[1] / height
        self.to_small = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
        reference = self._shrink(reference)
        self.shape = reference.shape
        height, width = self.shape
        self.center = ((width - 1) / 2, (height - 1) / 2)
        self.window = cv2.createHanningWindow((width, height), cv2.CV_32F)
        # the magnitude spectrum is taken on a square grid, where a rotation of the image is a
        # rotation of the spectrum (on an H x W grid it would be sheared by the aspect ratio)
        self.side = cv2.getOptimalDFTSize(max(height, width))
        f = np.fft.fftshift(np.fft.fftfreq(self.side))
        x = np.cos(np.pi * f)[:, None] * np.cos(np.pi * f)[None, :]
        self.highpass = ((1.0 - x) * (2.0 - x)).astype(np.float32)
        self.angles = 2 * self.side  # rows over 360 degrees; the top half (180) is used
        self.radii = self.side // 2
        self.max_radius = self.side / 2
        self.log_polar_spectrum = _spectrum(self._log_polar(reference))
        self.spectrum = _spectrum(self._windowed(reference))

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        if self.small_size == (self.full_shape[1], self.full_shape[0]):
            return image
        return cv2.resize(image, self.small_size, interpolation=cv2.INTER_AREA)

    def _windowed(self, image: np.ndarray) -> np.ndarray:
        return (image - image.mean()) * self.window

    def _log_polar(self, image: np.ndarray) -> np.ndarray:
        """High-passed magnitude spectrum in log-polar coordinates: ``(angles / 2, radii)``."""
        square = np.zeros((self.side, self.side), dtype=np.float32)
        square[: self.shape[0], : self.shape[1]] = self._windowed(image)
        spectrum = _spectrum(square)
        magnitude = np.fft.fftshift(_magnitude(spectrum)) * self.highpass
        polar = cv2.warpPolar(magnitude, (self.radii, self.angles), (self.side / 2, self.side / 2), self.max_radius,
                              cv2.INTER_LINEAR | cv2.WARP_POLAR_LOG)
        return np.ascontiguousarray(polar[: self.angles // 2])

    def register(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        frame = np.asarray(frame, dtype=np.float32)
        if frame.shape != self.full_shape:
            raise ValueError(f"frame is {frame.shape}, the reference {self.full_shape}")
        frame = self._shrink(frame)
        log_radius, angle_rows, _ = phase_correlation(self.log_polar_spectrum, self._log_polar(frame))
        # a frame rotated by +a (content turned towards +y) shows its spectrum turned by +a too
        angle = angle_rows * 360.0 / self.angles
        scale = float(np.exp(log_radius * np.log(self.max_radius) / self.radii))
        best = None
        for turn in (angle, angle + 180.0):
            # sample the frame at S p: undoes rotation and scale about the centre
            start = similarity_matrix(scale=1 / scale, angle=turn, center=self.center)
            derotated = cv2.warpAffine(frame, start[:2], (self.shape[1], self.shape[0]),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
            dx, dy, peak = phase_correlation(self.spectrum, self._windowed(derotated))
            if best is None or peak > best[1]:
                best = (start @ similarity_matrix(shift=(dx, dy)), peak)
        matrix, peak = best
        return np.linalg.inv(self.to_small) @ matrix @ self.to_small, peak


def imreg_dft_similarity(ref_y: np.ndarray, frame_y: np.ndarray, iterations: int) -> tuple[np.ndarray, float]:
    """imreg-dft's similarity as ``(A, success)``; raises ``ValueError`` when it finds no plausible match."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = imreg_dft.similarity(ref_y.astype(np.float64), frame_y.astype(np.float64), numiter=iterations)
    height, width = ref_y.shape
    # imreg-dft: frame point q -> reference point c + s R(-angle) (q - c) + (tx, ty).
    frame_to_reference = similarity_matrix(
        scale=float(result["scale"]),
        angle=-float(result["angle"]),
        shift=(float(result["tvec"][1]), float(result["tvec"][0])),
        center=((width - 1) / 2, (height - 1) / 2),
    )
    return np.linalg.inv(frame_to_reference), float(result["success"])

"""What a hand-held camera does to a burst, for the camera protocol of
:func:`multisr.research.simulate.simulate_camera_burst`: near-identity homographies (shift, turn, a
drifting zoom, a little perspective), an object that moves on its own, and JPEG; or, with a
mosaic, a RAW camera's Bayer sensor (:func:`mosaic_sensor`, :data:`RAW_CAMERA`)."""
import cv2
import numpy as np

from ..imaging.develop import srgb_decode
from ..imaging.geometry import similarity_matrix
from ..storage.dng import BAYER_PATTERNS

__all__ = ["camera_margin", "near_identity_homography", "with_moving_object", "jpeg", "jpeg_bytes", "decode_jpeg",
           "JPEG_SUBSAMPLINGS", "sensor", "RAW_CAMERA", "camera_from_srgb", "mosaic_sensor"]

JPEG_SUBSAMPLINGS = {"4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
                     "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}  # how JPEG files store chroma, as OpenCV names it

# the simulated RAW camera: 12 bits above a black level, a colour matrix unlike sRGB's (XYZ ->
# camera, D65) and a response to white of a daylight sensor (R, G, B: its white balance's inverse)
RAW_CAMERA = {"black": 256, "white": 4095, "neutral": [0.5, 1.0, 0.6],
              "xyz_to_camera": [[0.9, -0.3, -0.1], [-0.4, 1.2, 0.2], [-0.05, 0.15, 0.6]]}
_SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])  # D65, as LibRaw's


def camera_margin(height: int, width: int, *, max_shift: float, max_angle: float, max_zoom: float,
                   perspective: float) -> int:
    """HR pixels to crop on each side so that no frame of the camera protocol sees past the image."""
    half_diagonal = np.hypot(height, width) / 2
    turn = half_diagonal * 2 * np.sin(np.deg2rad(max_angle) / 2)
    return int(np.ceil(np.hypot(max_shift, max_shift) + turn + 1.1 * max_zoom * half_diagonal + 2 * perspective)) + 2


def near_identity_homography(rng, k: int, n: int, center, half_diagonal: float, *, max_shift: float,
                              max_angle: float, zoom_drift: float, perspective: float) -> np.ndarray:
    """Frame k's HR homography: frame 0 coordinates -> frame k's (the identity for k = 0)."""
    if k == 0:
        return np.eye(3)
    shift = rng.uniform(-max_shift, max_shift, size=2)
    angle = rng.uniform(-max_angle, max_angle)
    zoom = 1.0 + zoom_drift * k / max(n - 1, 1)
    similarity = similarity_matrix(scale=zoom, angle=angle, shift=shift, center=center)
    # perspective: w = 1 + g.(p - c), moving a corner by up to about `perspective` pixels
    g = rng.uniform(-1, 1, size=2) * perspective / half_diagonal**2
    to_center, back = similarity_matrix(shift=(-center[0], -center[1])), similarity_matrix(shift=center)
    tilt = np.eye(3)
    tilt[2, :2] = g
    return similarity @ back @ tilt @ to_center


def with_moving_object(image: np.ndarray, rect: tuple[int, int, int, int], offset) -> np.ndarray:
    """``image`` with the object (``rect``'s content turned by 180 degrees, so that its edges
    differ from the background) pasted at ``rect`` moved by the integer ``offset`` (dx, dy)."""
    x, y, w, h = rect
    dx, dy = offset
    scene = image.copy()
    scene[y + dy : y + dy + h, x + dx : x + dx + w] = image[y : y + h, x : x + w][::-1, ::-1]
    return scene


def jpeg_bytes(frame: np.ndarray, quality: int, subsampling: str = "4:2:0") -> bytes:
    """``frame`` (8-bit levels in [0, 1], grey or RGB) coded as a JPEG file at ``quality`` by OpenCV,
    its chroma stored ``subsampling`` (one of :data:`JPEG_SUBSAMPLINGS`; OpenCV's default 4:2:0)."""
    pixels = np.round(frame * 255).astype(np.uint8)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    _, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, JPEG_SUBSAMPLINGS[subsampling]])
    return data.tobytes()


def jpeg(frame: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """``frame`` (8-bit levels in [0, 1], grey or RGB) through JPEG (:func:`jpeg_bytes`), decoded as a
    reader of the file would (:func:`decode_jpeg`)."""
    return decode_jpeg(jpeg_bytes(frame, quality, subsampling))


def decode_jpeg(data: bytes) -> np.ndarray:
    """A JPEG file's bytes decoded by OpenCV: float32 in [0, 1], grey or RGB."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return decoded.astype(np.float32) / 255


def sensor(frame_hr: np.ndarray, rng, *, scale: int, blur_sigma_lr: float, shot_noise: float, read_noise: float,
           jpeg_quality: int | None, subsampling: str = "4:2:0") -> np.ndarray:
    """What the camera protocols' optics and sensor make of a high-resolution frame (``(H, W[, 3])``,
    H and W multiples of ``scale``): a Gaussian blur of ``blur_sigma_lr`` LR pixels, pixel-area
    sampling, noise of variance ``shot_noise * value + read_noise**2`` (drawn from ``rng``), 8 bits
    and JPEG at ``jpeg_quality`` with chroma stored ``subsampling`` (none with ``None``); float32 in [0, 1]."""
    height, width = frame_hr.shape[:2]
    blurred = cv2.GaussianBlur(frame_hr, (0, 0), blur_sigma_lr * scale, borderType=cv2.BORDER_REPLICATE)
    frame = cv2.resize(blurred, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
    sigma = np.sqrt(shot_noise * np.clip(frame, 0, 1) + read_noise**2)
    frame = np.round(np.clip(frame + rng.normal(size=frame.shape) * sigma, 0.0, 1.0) * 255.0) / 255.0
    frame = frame.astype(np.float32)
    return frame if jpeg_quality is None else jpeg(frame, jpeg_quality, subsampling)


def camera_from_srgb(xyz_to_camera) -> np.ndarray:
    """Linear sRGB -> the camera's white-balanced linear RGB (3x3): the file's matrix times sRGB's
    primaries, each row scaled to sum 1 (white stays white), the inverse of the matrix LibRaw
    develops with."""
    matrix = np.asarray(xyz_to_camera, np.float64) @ _SRGB_TO_XYZ
    return matrix / matrix.sum(axis=1, keepdims=True)


def mosaic_sensor(frame_hr: np.ndarray, rng, *, scale: int, blur_sigma_lr: float, shot_noise: float,
                  read_noise: float, pattern: str, camera: dict = RAW_CAMERA) -> np.ndarray:
    """What a RAW camera's optics and Bayer sensor make of a high-resolution sRGB frame (``(H, W, 3)``,
    H and W multiples of ``2 * scale``): linear light in the camera's colours, a Gaussian blur of
    ``blur_sigma_lr`` LR pixels, pixel-area sampling, one colour per pixel by ``pattern``
    (:data:`multisr.storage.dng.BAYER_PATTERNS`), noise of variance ``shot_noise * value +
    read_noise**2`` (white-balanced linear units), the camera's response to white, and its
    black and white levels: ``(H/scale, W/scale)`` uint16 sensor values."""
    linear = srgb_decode(frame_hr) @ camera_from_srgb(camera["xyz_to_camera"]).T.astype(np.float32)
    blurred = cv2.GaussianBlur(linear, (0, 0), blur_sigma_lr * scale, borderType=cv2.BORDER_REPLICATE)
    height, width = frame_hr.shape[0] // scale, frame_hr.shape[1] // scale
    sampled = cv2.resize(blurred, (width, height), interpolation=cv2.INTER_AREA)
    sites = np.tile(np.array(BAYER_PATTERNS[pattern]).reshape(2, 2), (height // 2, width // 2))
    values = np.take_along_axis(sampled, sites[..., None], axis=2)[..., 0]
    values = values + rng.normal(size=values.shape) * np.sqrt(shot_noise * np.clip(values, 0, 1) + read_noise**2)
    black, white = camera["black"], camera["white"]
    counts = black + values * np.asarray(camera["neutral"])[sites] * (white - black)
    return np.clip(np.round(counts), 0, white).astype(np.uint16)

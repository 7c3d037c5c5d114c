"""Reading and writing image files: the only module that sees image formats (RAW files: :mod:`multisr.storage.raw`).

Everything returned follows the data contract: ``float32`` in [0, 1], ``(H, W)`` for grey or
``(H, W, 3)`` RGB. 8- and 16-bit files are read (PNG, TIFF, JPEG, BMP; palette images come out
as RGB), turned upright by their EXIF orientation as image viewers show them (a RAW file is
refused here: :mod:`multisr.storage.raw` reads those, as a burst's frames); an alpha channel
that is not fully opaque comes back beside the image (:func:`read_picture`). A file's header is
read before its pixels, and an image of more than :func:`max_pixels` pixels is refused undecoded.
Writes are atomic: a file either appears whole or not at all, so no half-written image is left
behind by an error or a kill.
"""
import io
import os
import re
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from ..errors import UserError
from .files import atomic_output

__all__ = ["IMAGE_SUFFIXES", "RAW_SUFFIXES", "VIDEO_SUFFIXES", "MAX_PIXELS_ENV", "Picture", "read_image", "read_picture",
           "image_size", "max_pixels", "write_image", "check_image_destination", "check_regular_file", "to_uint"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
# RAW files: read by multisr.storage.raw, as the frames of a burst, never as images here
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                ".pef", ".srw", ".rwl", ".3fr", ".erf", ".kdc", ".mrw", ".x3f", ".iiq", ".gpr", ".raw")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv")  # read by multisr.storage.video
MAX_PIXELS_ENV = "MULTISR_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 200_000_000  # a 200-megapixel phone sensor's frame (16320x12240) fits
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, with its CRC
# EXIF orientation (1-8) -> what turns the stored pixels upright, as viewers show them
ORIENTATIONS = {
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: a.swapaxes(0, 1)[::-1],
}
_PILLOW_LIMIT = threading.Lock()  # Pillow's own pixel limit is lifted while a header is read (ours applies)


@dataclass
class Picture:
    """One image file as read: ``image`` (data contract, upright), ``bit_depth`` (8 or 16, the
    file's), ``alpha`` (``(H, W)`` float32 in [0, 1], upright; ``None`` when the file has none or
    it is opaque everywhere), ``orientation`` (the EXIF orientation 1-8 that was applied; 1
    when the file has none) and ``chroma_subsampling`` (a JPEG file's: ``"4:2:0"``, ``"4:2:2"``
    or ``"4:4:4"``; ``None`` for other files)."""

    image: np.ndarray
    bit_depth: int
    alpha: np.ndarray | None = None
    orientation: int = 1
    chroma_subsampling: str | None = None


def check_regular_file(path: Path, *, what: str = "an image file") -> None:
    """:class:`UserError` unless ``path`` is (or links to) a regular file this process may read:
    a FIFO or a device would be read forever, a broken link not at all."""
    try:
        mode = path.stat().st_mode
    except OSError as error:  # a broken link, a loop of links
        raise UserError(f"{path}: expected {what}, but it cannot be reached ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: expected {what}, found a special file (a pipe, a device or a socket)")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: expected {what} this process may read, but permission is denied")


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """Read one image file, upright (:func:`read_picture`), without its alpha channel: for data
    (a truth, a training image) whose transparency means nothing to the caller.

    Returns:
        ``(image, bit_depth)``: ``image`` is ``float32`` in [0, 1], ``(H, W)`` or ``(H, W, 3)``
        RGB; ``bit_depth`` is 8 or 16, that of the file, for writing results back alike.
    """
    picture = read_picture(path)
    return picture.image, picture.bit_depth


def max_pixels() -> int:
    """The most pixels an image file may have to be decoded: ``$MULTISR_MAX_PIXELS`` (an integer,
    or with ``M`` for millions: ``500M``), by default 200 million; a header that claims more is
    refused before any pixel is decoded (an image bomb: a small file that decodes to gigabytes)."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    match = re.fullmatch(r"([0-9]{1,15})\s*([mM]?)", text)
    if match is None or int(match.group(1)) == 0:
        raise UserError(f"{MAX_PIXELS_ENV}: expected a positive number of pixels (200000000, 500M), got {text!r}")
    return int(match.group(1)) * (1_000_000 if match.group(2) else 1)


def image_size(path: Path, data: bytes | None = None) -> tuple[int, int, int] | None:
    """``(width, height, orientation)`` from an image file's header (``data``: its bytes, when
    read already) without decoding its pixels, or ``None`` when the header cannot be parsed
    (then the decoder has the last word). ``width`` and ``height`` are the stored ones."""
    try:
        with _PILLOW_LIMIT:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(io.BytesIO(data) if data is not None else path) as header:
                    width, height = header.size
                    orientation = _orientation(header)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return width, height, orientation


def _jpeg_chroma_subsampling(data: bytes) -> str | None:
    """A JPEG file's chroma subsampling from its header (``data``: the file's bytes), or ``None``
    for another format or a header Pillow does not read."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as header:
            warnings.simplefilter("ignore")  # metadata is untrusted: its parser's complaints are not the user's
            sampling = JpegImagePlugin.get_sampling(header)
    except Exception:  # noqa: BLE001 - any failure of a parser of untrusted metadata is a missing value
        return None
    return {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(sampling)


def _orientation(header: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image's header, 1 where it has none. Metadata is
    untrusted input: a value of another type than an integer (a RATIONAL where the standard has a
    SHORT) or out of range is a missing one, and so is any failure of the EXIF parser (an eXIf
    chunk cut short raises ``struct.error``), whose warnings are not shown either: the pixels are
    still used when they decode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = _exif_of(header).get(0x0112, 1)
        except Exception:  # noqa: BLE001 - any failure of a parser of untrusted metadata is a missing value
            return 1
    return value if type(value) is int and value in ORIENTATIONS else 1


def _exif_of(header: Image.Image) -> Image.Exif:
    """The EXIF tags an opened image's header holds, never decoding its pixels (Pillow's PNG
    reader decodes the whole image to look for an eXIf chunk after the pixels: a bomb would go off)."""
    if header.format != "PNG":
        return header.getexif()
    exif = Image.Exif()
    if "exif" in header.info:  # an eXIf chunk before the pixels, where writers put it
        exif.load(header.info["exif"])
    return exif


def read_picture(path: Path) -> Picture:
    """Read one image file: its pixels turned upright by its EXIF orientation (as image viewers
    show them), its bit depth, and its alpha channel when it has transparent pixels
    (:class:`Picture`). An image over :func:`max_pixels` is refused from its header."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: expected an image file, but it does not exist")
    if path.suffix.lower() in RAW_SUFFIXES:  # a DNG is a TIFF whose pixels are a colour mosaic: never read as one
        raise UserError(f"{path}: expected an image file ({', '.join(IMAGE_SUFFIXES)}), found a RAW file; multisr reads "
                        f"RAW files as the frames of a burst (multisr run FOLDER)")
    check_regular_file(path)
    data = path.read_bytes()
    if path.suffix.lower() == ".png" and data.startswith(PNG_SIGNATURE) and not data.rstrip(b"\0").endswith(PNG_END):
        # caught here, before the decoder prints its own complaint beside ours
        raise UserError(f"{path}: expected a whole PNG image, but the file is truncated")
    header = image_size(path, data) if data else None
    limit = max_pixels()
    if header is not None and header[0] * header[1] > limit:
        raise UserError(f"{path}: expected an image of at most {limit:,} pixels (${MAX_PIXELS_ENV}), but its header "
                        f"says {header[0]}x{header[1]} ({header[0] * header[1]:,})")
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error:  # a header OpenCV reads otherwise than Pillow, over OpenCV's own limits
        raw = None
    if raw is None or raw.size == 0:
        raise UserError(f"{path}: expected a readable image, but the file is corrupt or not an image")
    if raw.dtype == np.uint8:
        bit_depth, image = 8, raw.astype(np.float32) / 255.0
    elif raw.dtype == np.uint16:
        bit_depth, image = 16, raw.astype(np.float32) / 65535.0
    else:
        raise UserError(f"{path}: expected 8- or 16-bit integer pixels, found {raw.dtype}")
    alpha = None
    if image.ndim == 3:
        channels = image.shape[2]
        if channels in (2, 4):  # grey + alpha, BGRA
            alpha = image[..., -1] if image[..., -1].min() < 1.0 else None
        if channels in (1, 2):
            image = image[..., 0]
        elif channels in (3, 4):  # BGR(A) -> RGB
            image = image[..., 2::-1]
        else:
            raise UserError(f"{path}: expected 1, 3 or 4 channels, found {channels}")
    orientation = header[2] if header is not None else 1
    upright = ORIENTATIONS[orientation]
    return Picture(np.ascontiguousarray(upright(image)), bit_depth,
                   None if alpha is None else np.ascontiguousarray(upright(alpha)), orientation,
                   _jpeg_chroma_subsampling(data) if image.ndim == 3 else None)


def to_uint(image: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """``float`` in [0, 1] -> ``uint8`` or ``uint16``, rounded to nearest and clipped; NaN (a pixel
    no frame saw) becomes 0. One float copy of the image at a time (large results)."""
    top = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scaled = np.clip(image, 0.0, 1.0)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    scaled *= top
    np.rint(scaled, out=scaled)
    return scaled.astype(dtype)


def check_image_destination(path: Path) -> None:
    """:class:`UserError` unless ``path`` can take an image: a known suffix, not a folder."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"{path}: expected an image file name ending in {', '.join(IMAGE_SUFFIXES)}, "
                        f"got {path.suffix or 'no suffix'!r}")
    if path.is_dir():
        raise UserError(f"{path}: expected an image file name, found a folder")


def write_image(path: Path, image: np.ndarray, *, bit_depth: int = 8, alpha: np.ndarray | None = None) -> None:
    """Write ``(H, W)`` or ``(H, W, 3)`` RGB float in [0, 1] to ``path`` at ``bit_depth`` 8 or 16,
    with ``alpha`` ``(H, W)`` in [0, 1] as its alpha channel when given (a grey image with
    alpha is written as RGBA: PNG and TIFF writers take 1, 3 or 4 channels).

    The file is written beside its destination and renamed over it, so it appears whole or
    not at all.
    """
    path = Path(path)
    if bit_depth not in (8, 16):
        raise UserError(f"bit_depth: expected 8 or 16, got {bit_depth}")
    check_image_destination(path)
    if alpha is not None and path.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise UserError(f"{path}: expected a .png or .tif file name, to keep the image's transparency (alpha), "
                        f"got {path.suffix!r}")
    pixels = to_uint(image, bit_depth)
    if pixels.ndim == 3:
        pixels = pixels[..., ::-1]  # RGB -> BGR for OpenCV
    if alpha is not None:
        colour = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
        pixels = np.concatenate([colour, to_uint(alpha, bit_depth)[..., None]], axis=2)
    pixels = np.ascontiguousarray(pixels)
    with atomic_output(path) as tmp:
        if not cv2.imwrite(tmp, pixels):
            raise UserError(f"{path}: could not write an image with suffix {path.suffix!r}")

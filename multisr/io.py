"""Reading and writing image files: the only module that sees file formats.

Everything returned follows the data contract: ``float32`` in [0, 1], ``(H, W)`` for grey or
``(H, W, 3)`` RGB. 8- and 16-bit files are read (PNG, TIFF, JPEG, BMP; palette images come out
as RGB); an alpha channel is dropped. Writes are atomic: a file either appears whole or not at
all, so no half-written image is left behind by an error or a kill.
"""
import os
import re
import stat
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .files import atomic_output

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "read_image", "write_image", "check_image_destination", "check_regular_file", "list_images",
           "natural_key", "to_uint"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv")  # read by multisr.video
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, with its CRC


def natural_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` in natural order.

    Raises :class:`UserError` for a missing folder, one with no images, or a file in it that is
    not an image (by suffix). Hidden files (``.*``), JSON side files and the ground truth that
    ``multisr simulate`` writes beside its frames (``truth.png``) are not frames and are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        found = "it is a file" if folder.is_file() else "it does not exist"
        raise UserError(f"{folder}: expected a folder of frames or a video ({', '.join(VIDEO_SUFFIXES)}), but {found}")
    files = []
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if path.name.startswith(".") or path.is_dir() or path.suffix.lower() == ".json" or path.stem == "truth":
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(
                f"{path}: expected only images ({', '.join(IMAGE_SUFFIXES)}) in the frames folder, "
                f"found a {path.suffix or 'suffix-less'} file; move it out"
            )
        check_regular_file(path)
        files.append(path)
    if not files:
        raise UserError(f"{folder}: expected image files ({', '.join(IMAGE_SUFFIXES)}), found none")
    return files


def check_regular_file(path: Path) -> None:
    """:class:`UserError` unless ``path`` is (or links to) a regular file this process may read:
    a FIFO or a device would be read forever, a broken link not at all."""
    try:
        mode = path.stat().st_mode
    except OSError as error:  # a broken link, a loop of links
        raise UserError(f"{path}: expected an image file, but it cannot be reached ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: expected an image file, found a special file (a pipe, a device or a socket)")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: expected a readable image file, but permission is denied")


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """Read one image file.

    Returns:
        ``(image, bit_depth)``: ``image`` is ``float32`` in [0, 1], ``(H, W)`` or ``(H, W, 3)``
        RGB; ``bit_depth`` is 8 or 16, that of the file, for writing results back alike.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: expected an image file, but it does not exist")
    check_regular_file(path)
    data = path.read_bytes()
    if path.suffix.lower() == ".png" and data.startswith(PNG_SIGNATURE) and not data.rstrip(b"\0").endswith(PNG_END):
        # caught here, before the decoder prints its own complaint beside ours
        raise UserError(f"{path}: expected a whole PNG image, but the file is truncated")
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if raw is None or raw.size == 0:
        raise UserError(f"{path}: expected a readable image, but the file is corrupt or not an image")
    if raw.dtype == np.uint8:
        bit_depth, image = 8, raw.astype(np.float32) / 255.0
    elif raw.dtype == np.uint16:
        bit_depth, image = 16, raw.astype(np.float32) / 65535.0
    else:
        raise UserError(f"{path}: expected 8- or 16-bit integer pixels, found {raw.dtype}")
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1:
            image = image[..., 0]
        elif channels == 2:  # grey + alpha
            image = image[..., 0]
        elif channels in (3, 4):  # BGR(A) -> RGB
            image = np.ascontiguousarray(image[..., 2::-1])
        else:
            raise UserError(f"{path}: expected 1, 3 or 4 channels, found {channels}")
    return image, bit_depth


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


def write_image(path: Path, image: np.ndarray, *, bit_depth: int = 8) -> None:
    """Write ``(H, W)`` or ``(H, W, 3)`` RGB float in [0, 1] to ``path`` at ``bit_depth`` 8 or 16.

    The file is written beside its destination and renamed over it, so it appears whole or
    not at all.
    """
    path = Path(path)
    if bit_depth not in (8, 16):
        raise UserError(f"bit_depth: expected 8 or 16, got {bit_depth}")
    check_image_destination(path)
    pixels = to_uint(image, bit_depth)
    if pixels.ndim == 3:
        pixels = np.ascontiguousarray(pixels[..., ::-1])  # RGB -> BGR for OpenCV
    with atomic_output(path) as tmp:
        if not cv2.imwrite(tmp, pixels):
            raise UserError(f"{path}: could not write an image with suffix {path.suffix!r}")

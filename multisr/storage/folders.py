"""A folder of frames as a camera, a phone or an editor leaves it: which files are the frames (in
natural order), and which are passed over (sidecars, system files, the camera's JPEGs of RAW
frames, video clips)."""
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .io import IMAGE_SUFFIXES, RAW_SUFFIXES, VIDEO_SUFFIXES, check_regular_file

__all__ = ["FolderListing", "natural_key", "list_images", "scan_folder", "passed_over_line"]

# what a camera, a phone or an editor leaves beside the pictures: passed over with a warning
SIDECAR_SUFFIXES = (".xmp", ".aae", ".thm", ".json", ".txt", ".xml", ".pp3", ".dop", ".lrv", ".md5", ".sha256",
                    ".log", ".csv", ".exif", ".acr", ".on1", ".cos")
SYSTEM_FILES = ("thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r")


@dataclass
class FolderListing:
    """A folder's frames (``images``, natural order: image files, or RAW files) and the files
    passed over as not frames, by kind (``"sidecar"``, ``"system"``, ``"developed"``: a RAW
    frame's own JPEG, ``"video"``) -> their names."""

    images: list[Path]
    passed_over: dict[str, list[str]] = field(default_factory=dict)


def natural_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    # the split's odd parts are the runs of digits 0-9 (other characters that str.isdigit() passes, such as
    # superscripts, are not numbers int() reads)
    return [int(part) if index % 2 else part.lower() for index, part in enumerate(re.split(r"([0-9]+)", name))]


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` in natural order (:func:`scan_folder`)."""
    return scan_folder(folder).images


def scan_folder(folder: Path) -> FolderListing:
    """The frames of ``folder``, a camera's folder as it is, and what was passed over.

    The frames are its image files, or its RAW files (:data:`multisr.storage.io.RAW_SUFFIXES`)
    when it has any: a camera that writes RAW and JPEG leaves one JPEG beside each RAW file (the
    same name), which is passed over, as the RAW file holds more. Passed over: hidden files (``.*``:
    ``.DS_Store``, ``._IMG_0001.JPG``) and what ``multisr simulate`` writes beside its frames
    (``truth.png``, ``truth.json``), silently; sidecar and system files (``.xmp``, ``.aae``,
    ``.thm``, ``.json``, ``.txt``, ``Thumbs.db``, ``desktop.ini``, ...), RAW frames' JPEGs and video
    clips, listed in the result for a warning (:func:`passed_over_line`). Raises :class:`UserError`
    for a missing folder, one with no frames, one with RAW files and images that are not their
    JPEGs (two bursts, or one developed otherwise), or a file of any other kind (a ``.heic`` or
    ``.pdf``: a frame that would be missed).
    """
    folder = Path(folder)
    if not folder.is_dir():
        found = "it is a file" if folder.is_file() else "it does not exist"
        raise UserError(f"{folder}: expected a folder of frames or a video ({', '.join(VIDEO_SUFFIXES)}), but {found}")
    images, raws, passed_over = [], [], {}
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or path.is_dir() or path.name in ("truth.png", "truth.json"):
            continue
        kind = ("system" if path.name.lower() in SYSTEM_FILES else "sidecar" if suffix in SIDECAR_SUFFIXES
                else "video" if suffix in VIDEO_SUFFIXES else None)
        if kind is not None:
            passed_over.setdefault(kind, []).append(path.name)
        elif suffix not in IMAGE_SUFFIXES + RAW_SUFFIXES:
            raise UserError(
                f"{path}: expected only images ({', '.join(IMAGE_SUFFIXES)}) or RAW files in the frames folder, "
                f"found a {path.suffix or 'suffix-less'} file; convert it or move it out"
            )
        else:
            check_regular_file(path)
            (raws if suffix in RAW_SUFFIXES else images).append(path)
    if raws:
        stems = {path.stem for path in raws}
        developed = [path for path in images if path.stem in stems]
        others = [path for path in images if path.stem not in stems]
        if others:
            raise UserError(f"{folder}: expected frames of one kind, but it has {len(raws)} RAW files and "
                            f"{len(others)} images that are not their JPEGs ({others[0].name}, ...); "
                            f"move one kind out")
        if developed:
            passed_over["developed"] = [path.name for path in developed]
        images = raws
    if not images:
        raise UserError(f"{folder}: expected image files ({', '.join(IMAGE_SUFFIXES)}) or RAW files, found none")
    return FolderListing(images, passed_over)


def passed_over_line(folder, passed_over: dict[str, list[str]]) -> str | None:
    """One warning line for the files :func:`scan_folder` passed over, by kind with their
    suffixes (``3 sidecar (.xmp, .aae)``), or ``None`` when there were none."""
    if not passed_over:
        return None
    nouns = {"sidecar": "sidecar", "system": "system", "developed": "JPEG beside its RAW frame (the RAW is used)",
             "video": "video"}
    parts = []
    for kind, names in passed_over.items():
        kinds = sorted({Path(name).suffix.lower() or name for name in names}) if kind != "system" else sorted(set(names))
        parts.append(f"{len(names)} {nouns[kind]} ({', '.join(kinds)})")
    return f"{folder}: passed over {sum(map(len, passed_over.values()))} files that are not frames: {'; '.join(parts)}"



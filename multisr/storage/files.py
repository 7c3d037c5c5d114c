"""Files: writing them atomically (a file appears whole, with the usual permissions, or not at
all) and their digests."""
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "file_digest", "write_json", "remove"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: Path):
    """Yield a temporary path beside ``path`` (same suffix) to write; on success it is renamed
    over ``path`` with the permissions a plain ``open(path, "w")`` would give. On an error, or
    if the process dies, ``path`` is untouched and the temporary file is removed (or left as a
    hidden ``.name.*`` file, never mistaken for the result)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data) -> None:
    """Write JSON to ``path`` atomically (temporary file + rename)."""
    with atomic_output(path) as tmp, open(tmp, "w") as out:
        json.dump(data, out, indent=1)


def remove(path: Path) -> None:
    """Delete a file or a folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

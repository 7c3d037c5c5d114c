"""The stage cache's folder: where it is, the locks that runs and clearing take on it, and its
size, which runs keep under a limit by removing the entries used longest ago.

The folder is ``--cache DIR`` where a command takes it, else ``$MULTISR_CACHE``, else
``$XDG_CACHE_HOME/multisr``, else ``~/.cache/multisr``. Runs hold a shared lock on
``<root>/.lock`` while they use the cache; :func:`clear` takes it exclusively without waiting
(refused while a run goes), and so does pruning, which is skipped while another run goes (the
last run to end prunes).

The limit is ``$MULTISR_CACHE_LIMIT`` (bytes, or a number with K, M, G or T: powers of 1000;
default :data:`DEFAULT_LIMIT`). When a run ends, the entries it did not use are removed, the one
used longest ago first, until the cache is within the limit. An entry's last use is its folder's
modification time, set when it is written or taken from the cache. A run's own entries stay,
even when they alone are over the limit (its run folder links to them); a later run removes them
if need be, and a notebook opening such a run's stage is told that its entry is gone. A run that
would not fit on the disk first removes entries it does not use, least recently used first
(:func:`make_room`), when it is the only run.
"""
import fcntl
import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError
from .files import remove

__all__ = ["CACHE_ENV", "LIMIT_ENV", "DEFAULT_LIMIT", "cache_root", "cache_limit", "using", "make_room", "usage", "clear",
           "prune"]

CACHE_ENV = "MULTISR_CACHE"
LIMIT_ENV = "MULTISR_CACHE_LIMIT"
DEFAULT_LIMIT = "20G"
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
MAX_LIMIT = 2**63 - 1  # bytes: the most a file system's sizes count
EXCLUSIVE_WAIT_S = 30.0  # how long a run waits for another's pruning or making room (moments, as a rule)


def cache_root(explicit: Path | None = None) -> Path:
    """The cache folder: ``explicit``, else ``$MULTISR_CACHE``, else ``$XDG_CACHE_HOME/multisr``,
    else ``~/.cache/multisr``."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "multisr"


def cache_name(root: Path) -> str:
    """How a message names the cache folder ``root``: by the environment variable that gave it
    (``$MULTISR_CACHE ...``, ``$XDG_CACHE_HOME ...``), else as the ``cache_dir`` argument (the
    command line's ``--cache``)."""
    if os.environ.get(CACHE_ENV) and Path(os.environ[CACHE_ENV]) == root:
        return f"${CACHE_ENV} {root}"
    if os.environ.get("XDG_CACHE_HOME") and Path(os.environ["XDG_CACHE_HOME"]) / "multisr" == root:
        return f"$XDG_CACHE_HOME {root.parent}"
    return f"cache_dir {root}"


def check_cache_folder(root: Path) -> None:
    """:class:`UserError` (naming ``root`` as :func:`cache_name` does) when ``root`` or a folder
    above it is something other than a folder: a file cannot hold the cache."""
    for path in (root, *root.parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                where = "it" if path == root else f"{path} above it"
                raise UserError(f"{cache_name(root)}: expected a folder for the stage cache, but {where} is a file")
            return


def cache_limit() -> int:
    """The cache's size limit in bytes, from ``$MULTISR_CACHE_LIMIT`` (``20G``, ``500M``, ``0``, ...)."""
    text = os.environ.get(LIMIT_ENV, "").strip() or DEFAULT_LIMIT
    match = re.fullmatch(r"([0-9]{1,20}(?:\.[0-9]{1,20})?) ?([KMGT]?)B?", text.upper())
    if match is None:
        raise UserError(f"{LIMIT_ENV}: expected a size such as 20G, 500M or 0, got {text!r}")
    limit = int(float(match[1]) * _UNITS[match[2]])
    if limit > MAX_LIMIT:
        raise UserError(f"{LIMIT_ENV}: expected a size of at most {MAX_LIMIT // _UNITS['T']}T (a file system's "
                        f"largest), got {text!r}")
    return limit


def _lock(root: Path, mode: int, refusal: str, *, wait_s: float = 0.0):
    """Open ``root/.lock`` and take ``mode`` (``flock``), trying for up to ``wait_s`` seconds, or
    :class:`UserError` (``refusal``)."""
    check_cache_folder(root)
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / ".lock", "a")
    if not _take(handle, mode, wait_s):
        handle.close()
        raise UserError(refusal)
    return handle


def _take(handle, mode: int, wait_s: float) -> bool:
    """Take ``mode`` on the open lock file ``handle``, trying every 50 ms for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


_HELD: dict[Path, tuple] = {}  # cache folder -> (its lock file, when the run began) while a run uses it


@contextmanager
def using(root: Path):
    """Hold a shared lock on the cache ``root`` for a run, after removing what runs that have ended
    left there (temporary and set-aside entries); when the run has succeeded, :func:`prune` the
    cache to its limit, keeping the entries the run used. A bad ``$MULTISR_CACHE_LIMIT`` is a
    :class:`UserError` before the run starts."""
    limit = cache_limit()
    # a run that ends prunes the cache, and one short of disk makes room, under the exclusive lock
    # for a moment: wait for them; a clearing (multisr cache --clear) that takes longer is refused
    handle = _lock(root, fcntl.LOCK_SH, f"{cache_name(root)}: the cache is being cleared; try again when that is done",
                   wait_s=EXCLUSIVE_WAIT_S)
    started = _file_system_time(root)
    _HELD[root] = (handle, started)
    try:
        _clean_stale(root)
        yield root
    finally:
        _HELD.pop(root, None)
        handle.close()
    prune(root, limit, keep_since=started)


def make_room(root: Path, needed: int) -> int:
    """For the run in :func:`using` on ``root``: remove the entries it has not used, least recently
    used first, until ``needed`` bytes are freed or none is left, when no other run holds the
    cache; returns the bytes freed (0 when another run holds it). The run's lock is let go and
    taken again meanwhile, so the caller checks that its own entries are still there."""
    if root not in _HELD:  # not a run inside using(): it holds no lock to make exclusive
        return 0
    handle, started = _HELD[root]
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the only run: its shared lock becomes exclusive
    except BlockingIOError:
        freed = 0
    else:
        freed = _remove_least_recent(root, keep_since=started, enough=lambda freed, total: freed >= needed)
    if not _take(handle, fcntl.LOCK_SH, EXCLUSIVE_WAIT_S):  # (a failed conversion let go of the shared lock)
        raise UserError(f"{cache_name(root)}: the cache is being cleared; try again when that is done")
    return freed


def _file_system_time(root: Path) -> float:
    """Now, by the clock that stamps the files under ``root`` (a network file system's may differ
    from this machine's)."""
    with tempfile.TemporaryFile(dir=root) as handle:
        return os.fstat(handle.fileno()).st_mtime


def _entries(root: Path) -> list[Path]:
    return [p for p in root.glob("*/*") if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def usage(root: Path) -> tuple[int, int]:
    """``(entries, bytes)`` the cache ``root`` holds (nothing when it is not a folder:
    :func:`check_cache_folder` says so)."""
    return (len(_entries(root)), _size(root)) if root.is_dir() else (0, 0)


def prune(root: Path, limit: int, *, keep_since: float) -> int:
    """Remove entries of the cache ``root`` last used before ``keep_since`` (seconds since the
    epoch), the one used longest ago first, until it holds at most ``limit`` bytes; returns the
    bytes freed. Skipped (0) while a run uses the cache."""
    try:
        handle = _lock(root, fcntl.LOCK_EX, "")
    except UserError:  # another run is using the cache: the last one to end prunes it
        return 0
    try:
        return _remove_least_recent(root, keep_since=keep_since, enough=lambda freed, total: total <= limit)
    finally:
        handle.close()


def _remove_least_recent(root: Path, *, keep_since: float, enough) -> int:
    """Remove entries last used before ``keep_since``, least recently used first, until
    ``enough(freed, total)`` (bytes); returns the bytes freed. The caller holds the exclusive lock."""
    total, freed = _size(root), 0
    for entry in sorted(_entries(root), key=lambda entry: entry.stat().st_mtime):
        if enough(freed, total) or entry.stat().st_mtime >= keep_since:
            break
        size = _size(entry)
        remove(entry)
        total, freed = total - size, freed + size
    return freed


def clear(root: Path) -> int:
    """Remove every entry of the cache ``root`` and return the bytes freed; :class:`UserError` while
    a run uses it."""
    handle = _lock(root, fcntl.LOCK_EX, f"{root}: a multisr run is using the cache; clear it when no run is going")
    try:
        _, freed = usage(root)
        for folder in [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]:
            remove(folder)
        return freed
    finally:
        handle.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(root: Path) -> None:
    """Remove the temporary (``.tmp-PID-*``) and set-aside (``.old-PID-*``) entries of runs that have ended."""
    for folder in [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]:
        for entry in folder.iterdir():
            parts = entry.name.split("-")
            if entry.name.startswith((".tmp-", ".old-")) and (len(parts) < 3 or not re.fullmatch("[0-9]{1,10}", parts[1])
                                                            or not _alive(int(parts[1]))):
                remove(entry)

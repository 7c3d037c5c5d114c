"""How much a run writes, and whether the disk has room for it: checked once the frames are
loaded, before any stage writes (the run engine, :mod:`multisr.runs.engine`)."""
import shutil
from pathlib import Path

from ..errors import UserError
from ..storage.cachedir import cache_name, make_room

__all__ = ["bytes_to_write", "check_disk"]


def bytes_to_write(steps: list, frames_shape: tuple, *, scale: int, use_cache: bool) -> int:
    """About how many bytes a run on frames of ``frames_shape`` at ``scale`` writes under its folder at most:
    with the cache, every stage entry (the frames, each stack of high-resolution frames, the
    result); without it, the two stacks and the mask that the scratch folder holds at once."""
    count, height, width = frames_shape[:3]
    channels = frames_shape[3] if len(frames_shape) == 4 else 1
    frame_bytes = height * width * channels * 4
    total, stacks, masks = (count * frame_bytes if use_cache else 0), [], 0
    for stage, _ in steps[1:]:
        if stage.name == "select_reference":
            count = 1
        if stage.uses_workspace:
            stacks.append(count * scale**2 * frame_bytes)
            masks += count * scale**2 * height * width if "valid" in stage.writes else 0
        elif "result" in stage.writes and use_cache:
            total += scale**2 * frame_bytes
    if use_cache:
        return total + sum(stacks) + masks
    return sum(sorted(stacks)[-2:]) + masks  # a stage's input stack and its output


def check_disk(folder: Path, needed: int, *, use_cache: bool, limit: int | None, own_entries: list[Path]) -> None:
    """:class:`UserError` before a run would write ``needed`` bytes under ``folder`` (the stage
    cache, or without it the run folder) when that is over ``limit``, or when the disk has less
    free, even after removing the cache entries the run does not use (:func:`multisr.storage.cachedir.make_room`;
    ``own_entries``: those it has used so far)."""
    where = cache_name(folder) if use_cache else f"out_dir {folder}"
    hint = "; a run without the stage cache writes less (the stacks of one or two stages at a time)" if use_cache else ""
    if limit is not None and needed > limit:
        raise UserError(f"max_disk_bytes: expected the run to write at most {limit / 1e9:.1f} GB, but it would "
                        f"write about {needed / 1e9:.1f} GB under {folder}{hint}")
    free = shutil.disk_usage(folder).free
    if needed > free and use_cache and make_room(folder, needed - free):
        if not all(entry.is_dir() for entry in own_entries):
            raise UserError(f"{where}: the cache was cleared as this run began; run it again")
        free = shutil.disk_usage(folder).free
    if needed > free:
        raise UserError(f"{where}: the run would write about {needed / 1e9:.1f} GB there, but "
                        f"{free / 1e9:.1f} GB are free{hint}")

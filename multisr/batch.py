"""Many bursts at once (``multisr batch``): each burst (a folder of frames or a video) is an
independent task on Dask distributed, a ``LocalCluster`` on this machine by default or an existing
cluster, and writes its own run folder exactly as ``multisr run`` would.

Workers do not fight over the cores: each runs one task at a time with ``threads`` threads for
its stages, torch, OpenCV and BLAS. By default there is a worker per core with one thread each:
8 bursts of 20 frames took 34.9 s so, against 48.8 s on one worker with both cores' threads
(this 2-core machine), because a burst's stages do not keep two threads busy all the time. One bad
burst fails alone: its one-line error goes to the summary (``OUT/batch.json``) and the others go
on. A rerun finds every finished stage in the stage cache, so it computes only what was left.
"""
import os
import time
from pathlib import Path

from .errors import UserError, os_error_line
from .files import write_json
from .io import IMAGE_SUFFIXES, natural_key
from .params import ALL_FRAMES
from .video import is_video

__all__ = ["find_bursts", "run_batch", "run_one"]


def _holds_frames(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.stem != "truth" for p in folder.iterdir() if p.is_file())


def find_bursts(inputs: list[Path]) -> list[Path]:
    """The bursts named by ``inputs``: a video file, a folder of frames, or a folder of those (its
    videos and frame folders, in natural order); :class:`UserError` for an input that is none."""
    bursts = []
    for item in map(Path, inputs):
        if is_video(item) or (item.is_dir() and _holds_frames(item)):
            bursts.append(item)
        elif item.is_dir():
            inside = [p for p in sorted(item.iterdir(), key=lambda p: natural_key(p.name))
                      if is_video(p) or (p.is_dir() and _holds_frames(p))]
            if not inside:
                raise UserError(f"inputs {item}: expected frames, videos or folders of frames in it, found none")
            bursts += inside
        else:
            raise UserError(f"inputs {item}: expected a video, a folder of frames or a folder of them, "
                            f"but {'it does not exist' if not item.exists() else 'it is another kind of file'}")
    return bursts


def run_one(pipeline_name: str, overrides: list[str], burst: str, out_dir: str, n: int | str, threads: int,
            cache_dir: str | None) -> dict:
    """One task: ``multisr run`` of ``burst`` into ``out_dir`` with ``threads`` threads. Returns the
    burst's summary row: ``error`` (one line) or the result's path, and the seconds it took."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    from .pipeline import load_pipeline, with_overrides
    from .runner import run_pipeline
    from .threads import set_workers

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    set_workers(threads)
    started = time.perf_counter()
    row = {"burst": burst, "out": out_dir}
    try:
        with threadpool_limits(limits=threads):
            record = run_pipeline(with_overrides(load_pipeline(pipeline_name), overrides), Path(burst),
                                  out_dir=Path(out_dir), n=n, cache_dir=None if cache_dir is None else Path(cache_dir))
        row["result"] = str(Path(out_dir) / "result.png")
        row["n"] = record["parameters"]["n"]
        row["computed"] = [s["name"] for s in record["stages"] if not s["cached"]]
    except UserError as error:
        row["error"] = str(error)
    except OSError as error:
        row["error"] = os_error_line(error)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def run_batch(bursts: list[Path], *, out_dir: Path, pipeline_name: str = "presenters", overrides: list[str] = (),
              n: int | str = ALL_FRAMES, scheduler: str | None = None, workers: int | None = None, threads: int | None = None,
              cache_dir: Path | None = None, progress=None) -> dict:
    """Run every burst of ``bursts`` (:func:`find_bursts`) into ``out_dir/<burst name>`` as tasks on
    Dask: on the cluster at ``scheduler``, else on a ``LocalCluster`` of ``workers`` processes
    (default: one per core) with ``threads`` threads each (default: the cores divided among
    them). Writes ``out_dir/batch.json`` (the parameters and a row per burst) and
    returns it; ``progress(row)`` is called as each task ends."""
    from distributed import Client, LocalCluster, as_completed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _unique_names(bursts)
    cores = os.cpu_count() or 1
    workers = workers or cores
    threads = threads or max(1, cores // workers)
    cache = None if cache_dir is None else str(Path(cache_dir).resolve())
    started = time.perf_counter()
    # the tasks' own progress bars stay in the workers: the batch shows bursts done and failed
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None, env={"TQDM_DISABLE": "1"})
    try:
        with Client(scheduler or cluster) as client:
            futures = [client.submit(run_one, pipeline_name, list(overrides), str(burst.resolve()),
                                     str((out_dir / name).resolve()), n, threads, cache, key=f"multisr-{name}", pure=False)
                       for burst, name in zip(bursts, names)]
            rows = []
            for future in as_completed(futures):
                rows.append(future.result())
                if progress is not None:
                    progress(rows[-1])
    finally:
        if cluster is not None:
            cluster.close()
    order = {str(b.resolve()): k for k, b in enumerate(bursts)}
    rows.sort(key=lambda row: order[row["burst"]])
    summary = {"pipeline": pipeline_name, "overrides": list(overrides), "n": n,
               "scheduler": scheduler or f"LocalCluster({workers} workers x {threads} threads)",
               "bursts": rows, "failed": sum("error" in row for row in rows),
               "seconds": round(time.perf_counter() - started, 3)}
    write_json(out_dir / "batch.json", summary)
    return summary


def _unique_names(bursts: list[Path]) -> list[str]:
    """A run folder name per burst: its name (a video's without the suffix), made unique."""
    names, seen = [], {}
    for burst in bursts:
        name = burst.stem if is_video(burst) else burst.name
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names

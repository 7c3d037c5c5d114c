"""Many bursts at once (``multisr batch``): each burst (a folder of frames or a video) is an
independent task on Dask distributed, a ``LocalCluster`` on this machine by default or an existing
cluster, and writes its own run folder exactly as ``multisr run`` would.

Workers do not fight over the cores: each runs one task at a time with ``threads`` threads for
its stages, torch, OpenCV and BLAS. By default there is a worker per core with one thread each:
8 bursts of 20 frames took 34.9 s so, against 48.8 s on one worker with both cores' threads
(this 2-core machine), because a burst's stages do not keep two threads busy all the time. One bad
burst fails alone, whatever it raises: its one-line error goes to the summary (``OUT/batch.json``)
and the others go on. ``batch.json`` is written when the batch starts (every burst pending) and
again as each burst ends, so it always describes the run folders beside it; one batch at a time
writes into a folder (``OUT/.batch.lock``). A rerun finds every finished stage in the stage
cache, so it computes only what was left.
"""
import os
import re
import signal
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError, os_error_line
from ..params import ALL_FRAMES, SCALE
from ..storage.files import write_json
from ..storage.folders import natural_key
from ..storage.io import IMAGE_SUFFIXES
from ..storage.rundir import locked
from ..storage.video import is_video

__all__ = ["find_bursts", "run_batch", "run_one", "check_scheduler", "check_threads"]

SCHEDULER_ADDRESS = re.compile(r"((tcp|tls|ucx|ws|wss)://)?[\w.\-\[\]:]+:[0-9]{1,5}/?|inproc://[\w./-]+")
CONNECT_TIMEOUT_S = 10  # a scheduler that has not answered by then is not running there
MAX_THREADS_PER_CORE = 4  # a LocalCluster's workers x threads beyond this many per core only contend


def check_scheduler(address: str) -> None:
    """:class:`UserError` unless ``address`` looks like a Dask scheduler's (``tcp://host:8786``,
    ``host:8786``, ``tls://...``)."""
    if not SCHEDULER_ADDRESS.fullmatch(address):
        raise UserError(f"scheduler: expected a Dask scheduler address such as tcp://host:8786, got {address!r}")


def check_threads(workers: int, threads: int, *, local: bool) -> None:
    """:class:`UserError` for a worker or thread count this machine (for a ``local`` cluster) cannot
    serve: more than :data:`MAX_THREADS_PER_CORE` per core in all; on a remote cluster, over 1024 a task."""
    cores = os.cpu_count() or 1
    if local and workers * threads > MAX_THREADS_PER_CORE * cores:
        raise UserError(f"threads: expected workers x threads of at most {MAX_THREADS_PER_CORE * cores} "
                        f"({MAX_THREADS_PER_CORE} per core of this machine's {cores}), got {workers} x {threads}")
    if threads > 1024:
        raise UserError(f"threads: expected at most 1024 threads a task, got {threads}")


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
            cache_dir: str | None, scale: int = SCALE) -> dict:
    """One task: ``multisr run`` of ``burst`` into ``out_dir`` at ``scale`` with ``threads`` threads. Returns the
    burst's summary row: ``error`` (one line) or the result's path, and the seconds it took."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    from ..runs.pipeline import load_pipeline, with_overrides
    from ..runs.runner import run_pipeline
    from ..threads import set_workers

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    set_workers(threads)
    started = time.perf_counter()
    row = {"burst": burst, "out": out_dir}
    try:
        with threadpool_limits(limits=threads):
            record = run_pipeline(with_overrides(load_pipeline(pipeline_name), overrides), Path(burst),
                                  out_dir=Path(out_dir), n=n, cache_dir=None if cache_dir is None else Path(cache_dir),
                                  scale=scale)
        row["result"] = str(Path(out_dir) / "result.png")
        row["n"] = record["parameters"]["n"]
        row["computed"] = [s["name"] for s in record["stages"] if not s["cached"]]
    except UserError as error:
        row["error"] = str(error)
    except OSError as error:
        row["error"] = os_error_line(error)
    except Exception as error:  # a fault of multisr's, not the user's: this burst fails, the batch goes on
        row["error"] = _unexpected(burst, error)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def _unexpected(burst: str, error: BaseException) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{burst}: failed unexpectedly ({type(error).__name__}{': ' + detail if detail else ''}); please report it"


@contextmanager
def _without_sigint():
    """Ctrl-C ignored while the cluster's processes start, so that they inherit the ignoring: the
    batch's own process takes Ctrl-C and closes them, instead of every worker printing a traceback."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_batch(bursts: list[Path], *, out_dir: Path, pipeline_name: str = "presenters", overrides: list[str] = (),
              n: int | str = ALL_FRAMES, scheduler: str | None = None, workers: int | None = None, threads: int | None = None,
              cache_dir: Path | None = None, progress=None, scale: int = SCALE) -> dict:
    """Run every burst of ``bursts`` (:func:`find_bursts`) into ``out_dir/<burst name>`` as tasks on
    Dask: on the cluster at ``scheduler``, else on a ``LocalCluster`` of ``workers`` processes
    (default: one per core) with ``threads`` threads each (default: the cores divided among
    them), every burst at ``scale``. Writes ``out_dir/batch.json`` (the parameters and a row per burst) and
    returns it; ``progress(row)`` is called as each task ends."""
    from distributed import Client, LocalCluster, as_completed

    if scheduler is not None:
        check_scheduler(scheduler)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _unique_names(bursts)
    cores = os.cpu_count() or 1
    workers = workers or cores
    threads = threads or max(1, cores // workers)
    check_threads(workers, threads, local=scheduler is None)
    cache = None if cache_dir is None else str(Path(cache_dir).resolve())
    started = time.perf_counter()
    rows = {str(burst.resolve()): {"burst": str(burst.resolve()), "out": str((out_dir / name).resolve()),
                                   "pending": True} for burst, name in zip(bursts, names)}
    summary = {"pipeline": pipeline_name, "overrides": list(overrides), "n": n, "scale": scale,
               "scheduler": scheduler or f"LocalCluster({workers} workers x {threads} threads)",
               "bursts": list(rows.values()), "failed": 0, "finished": False, "seconds": 0.0}
    with locked(out_dir, lock=".batch.lock", holder="batch"):
        write_json(out_dir / "batch.json", summary)  # an earlier batch's summary no longer describes the folder
        cluster = None
        try:
            if scheduler is None:  # the tasks' own progress bars stay in the workers
                with _without_sigint():
                    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, env={"TQDM_DISABLE": "1"})
            with _client(Client, scheduler or cluster) as client:
                futures = {client.submit(run_one, pipeline_name, list(overrides), row["burst"], row["out"], n, threads,
                                         cache, scale, key=f"multisr-{name}", pure=False): row["burst"]
                           for row, name in zip(rows.values(), names)}
                for future in as_completed(futures):
                    burst = futures[future]
                    try:
                        rows[burst] = future.result()
                    except Exception as error:  # the worker itself died (out of memory, killed)
                        rows[burst] = {**rows[burst], "error": _unexpected(burst, error)}
                        rows[burst].pop("pending")
                    summary.update(bursts=list(rows.values()), failed=sum("error" in r for r in rows.values()),
                                   seconds=round(time.perf_counter() - started, 3))
                    write_json(out_dir / "batch.json", summary)
                    if progress is not None:
                        progress(rows[burst])
        finally:
            if cluster is not None:
                cluster.close()
        summary.update(finished=True, seconds=round(time.perf_counter() - started, 3))
        write_json(out_dir / "batch.json", summary)
    return summary


@contextmanager
def _client(client_class, address):
    """A Dask client of ``address`` (a scheduler's address or a cluster); :class:`UserError` when
    no scheduler answers there within :data:`CONNECT_TIMEOUT_S`."""
    try:
        client = client_class(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as error:
        raise UserError(f"scheduler {address}: expected a running Dask scheduler, but none answered within "
                        f"{CONNECT_TIMEOUT_S} s ({type(error).__name__})") from None
    with client:
        yield client


def _unique_names(bursts: list[Path]) -> list[str]:
    """A run folder name per burst: its name (a video's without the suffix), made unique."""
    names, seen = [], {}
    for burst in bursts:
        name = burst.stem if is_video(burst) else burst.name
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names

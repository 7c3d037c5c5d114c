"""The commands for bursts: ``run``, ``compare``, ``video``, ``batch``, ``stages``, ``cache`` and
single-image ``upscale``."""
from pathlib import Path

import click
import numpy as np

from ..errors import UserError
from ..params import ALL_FRAMES, DEFAULT_FRAMES, DEFAULT_REFERENCE, SCALE
from .common import (MODELS_HELP, PIPELINES_HELP, Command, FrameCount, Integer, Number, cache_dir_option, device_option,
                     reference_callback, scale_option, warn_left_out, warn_passed_over, warn_uncertain_blur)

__all__ = ["run", "compare", "video", "batch", "stages", "upscale", "cache"]

roi_option = click.option("--roi", default=None, metavar="X,Y,W,H",
                          help="A box around a target that may move on its own (a plate on a passing car), in the "
                               "reference frame's pixels (x right, y down, its top-left pixel): it is tracked "
                               "through the burst and the result is the box at 3x (or --scale).")


def burst_selection(command):
    """FRAMES (a folder of images or a video), ``--n`` and ``--start``: which frames make the burst."""
    command = click.option("--start", type=Integer(min=0), default=0, show_default=True,
                           help="The burst's first frame: 0-based, in natural order (or the video's).")(command)
    command = click.option("--n", type=FrameCount(), default=DEFAULT_FRAMES, show_default=True,
                           help="Use N frames, from --start on; all: every frame from --start on.")(command)
    return click.argument("frames_dir", metavar="FRAMES", type=click.Path(path_type=Path))(command)


@click.command(cls=Command)
@burst_selection
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Run directory to write.")
@click.option("--reference", default=None, callback=reference_callback, metavar="INDEX|sharpest",
              help="The frame to super-resolve: its index, or the sharpest (frames within 5% of it count as "
                   "equally sharp; the earliest is taken). Default: sharpest; with --roi, the first (--start).")
@click.option("--pipeline", "pipeline_name", default="presenters", show_default=True,
              help=f"A built-in pipeline ({PIPELINES_HELP}) or a .toml file.")
@roi_option
@click.option("--read", is_flag=True,
              help="With --roi: print what an OCR reads in the box (the result, and a vote over the frames' own "
                   "single-image SR: the frames the pipeline uses, the reference alone for bicubic and single), kept "
                   "in run.json as reading (needs: pip install 'multisr[ocr]').")
@scale_option
@device_option
@click.option("--set", "overrides", multiple=True, metavar="STAGE.PARAM=VALUE",
              help="Change one stage parameter, e.g. --set fuse.method=mean (repeatable).")
@click.option("--no-cache", is_flag=True, help="Compute every stage and store no stage outputs.")
@cache_dir_option
@click.option("--max-disk", type=Number(min=0, min_open=True), default=None, metavar="GB",
              help="Refuse to start a run that would write more than GB gigabytes under OUT (default: what is free).")
def run(frames_dir, n, start, out_dir, reference, pipeline_name, roi, read, scale, device, overrides, no_cache,
        cache_dir, max_disk):
    """Super-resolve a burst: FRAMES (a folder of images, or a video file) in, OUT/result.png (3x, or --scale) out.

    Each stage's output is kept in the stage cache and reused by any later run (of any pipeline,
    into any folder) whose inputs and parameters for that stage are the same; OUT/stages/ links
    to the entries this run used.
    """
    from ..runs.pipeline import load_pipeline, with_overrides
    from ..runs.runner import run_pipeline

    pipeline = with_overrides(load_pipeline(pipeline_name), list(overrides))
    if reference is None:
        reference = 0 if roi is not None else DEFAULT_REFERENCE
    record = run_pipeline(pipeline, frames_dir, out_dir=out_dir, n=n, start=start, reference=reference,
                          use_cache=not no_cache, cache_dir=cache_dir, device=device,
                          max_disk_bytes=None if max_disk is None else int(max_disk * 1e9), roi=roi, read=read,
                          scale=scale)
    warn_passed_over(record["source"])
    warn_left_out(record["excluded"])
    if "moving_target" in record:
        box, index = ",".join(map(str, record["moving_target"]["roi"])), record["moving_target"]["reference_index"]
        click.echo(f"Notice: something moves on its own in this burst, inside the box {box} of "
                   f"{record['reference_frame']}; to super-resolve it: multisr run {frames_dir} --n {n} --start {start} "
                   f"--reference {index} --roi {box} --pipeline multiframe{'' if scale == SCALE else f' --scale {scale}'} "
                   "--out OUT", err=True)
    warn_uncertain_blur(record.get("solve", {}))
    timings = ", ".join(f"{s['name']} {'cached' if s['cached'] else format(s['seconds'], '.2f') + 's'}"
                        for s in record["stages"])
    click.echo(f"{out_dir / 'result.png'} ({pipeline.name}, {record['device']}): {timings}")
    if read:
        reading = record["reading"]
        x, y, w, h = reading["part"]
        whole = [w, h] == record["target"]["roi"][2:]
        read_part = "" if whole else f" (its part {x},{y},{w},{h} that moves with the target)"
        click.echo(f"The box{read_part} reads {reading['result']['text'] or '(nothing)'!r} (OCR confidence "
                   f"{reading['result']['confidence']:.2f}); the vote over {len(reading['frames'])} frames' own SR "
                   f"reads {reading['vote']['text'] or '(nothing)'!r} (agreement {reading['vote']['confidence']:.2f})")


@click.command(cls=Command)
@burst_selection
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Report folder to write.")
@click.option("--reference", default=None, callback=reference_callback, metavar="INDEX|sharpest",
              help="The frame to super-resolve: its index, or the sharpest. Default: sharpest; with --truth, the "
                   "frame the truth is of (the reference in the truth.json beside it, else 0).")
@click.option("--truth", "truth_path", type=click.Path(path_type=Path), default=None,
              help="High-resolution truth of the reference frame (adds PSNR/SSIM and error maps).")
@click.option("--pipelines", default="bicubic,single,presenters,multiframe,merge", show_default=True,
              help=f"Comma-separated built-in names ({PIPELINES_HELP}) or .toml files.")
@click.option("--crop", default=None, metavar="X,Y,W,H", help="Zoom region in HR pixels (default: most detailed).")
@roi_option
@scale_option
@cache_dir_option
@device_option
def compare(frames_dir, n, start, out_dir, reference, truth_path, pipelines, crop, roi, scale, cache_dir, device):
    """Multi-frame against single-image SR on one burst: OUT/index.html, images, metrics.json."""
    from ..outputs.report import compare as write_report, parse_crop

    names = tuple(name.strip() for name in pipelines.split(",") if name.strip())
    if not names:
        raise UserError(f"--pipelines: expected at least one pipeline name, got {pipelines!r}")
    metrics = write_report(frames_dir, out_dir=out_dir, n=n, start=start, reference=reference, pipelines=names, cache_dir=cache_dir,
                           truth_path=truth_path, crop=parse_crop(crop) if crop else None, device=device, roi=roi,
                           scale=scale)
    warn_passed_over(metrics["source"])
    warn_left_out(metrics["excluded"])
    scores = ", ".join(f"{m['name']} {m['psnr']:.2f} dB" if "psnr" in m else m["name"] for m in metrics["methods"])
    click.echo(f"{out_dir / 'index.html'}: {scores}")


@click.command(cls=Command)
@click.argument("out_dir", type=click.Path(path_type=Path))
def stages(out_dir):
    """Table of a run's stages: cached or computed, wall time, output shapes."""
    from ..storage.rundir import open_run

    run = open_run(out_dir)
    click.echo(f"{run.record['pipeline']} on {run.record['parameters']['frames']} ({run.record['device']})")
    click.echo(f"{'stage':<18}{'status':<10}{'seconds':>9}  outputs")
    for stage in run.record["stages"]:
        status = "cached" if stage["cached"] else "computed"
        shapes = ", ".join(f"{name} {'x'.join(map(str, shape)) if isinstance(shape, list) else shape}"
                           for name, shape in stage["outputs"].items() if shape is not None)
        click.echo(f"{stage['name']:<18}{status:<10}{stage['seconds']:>9.3f}  {shapes}")
    click.echo(f"{'total':<28}{run.record['seconds']:>9.3f}")


@click.command(cls=Command)
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True, help="Output image file.")
@scale_option
@click.option("--model", default=None, help=f"A shipped model ({MODELS_HELP}) or a weights file (default srcnn-955).")
@device_option
def upscale(image, out_path, scale, model, device):
    """Single-image SR of IMAGE: bicubic, then SRCNN on Y; same bit depth out as in, upright by
    its EXIF orientation; its transparency (alpha), if any, upscaled with bicubic."""
    from ..imaging.resize import upscale as bicubic
    from ..sr.inference import super_resolve
    from ..sr.weights import DEFAULT_MODEL, load_model
    from ..storage.io import check_image_destination, read_picture, write_image

    check_image_destination(out_path)
    picture = read_picture(image)
    if picture.alpha is not None and out_path.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise UserError(f"{out_path}: expected a .png or .tif file name, to keep {image}'s transparency (alpha), "
                        f"got {out_path.suffix!r}")
    network = load_model(model or DEFAULT_MODEL, scale=scale, device=device)
    height, width = picture.image.shape[:2]
    if min(height, width) < 2:
        raise UserError(f"{image}: expected at least 2x2 pixels, found {width}x{height}")
    alpha = None if picture.alpha is None else np.clip(bicubic(picture.alpha, scale), 0.0, 1.0)
    write_image(out_path, super_resolve(picture.image, network, scale=scale), bit_depth=picture.bit_depth, alpha=alpha)
    click.echo(f"{out_path}: {width * scale}x{height * scale}")


@click.command(cls=Command)
@cache_dir_option
@click.option("--clear", is_flag=True, help="Remove every entry (refused while a run uses the cache).")
def cache(cache_dir, clear):
    """Where the stage cache is, how much it holds and its limit; --clear empties it."""
    from ..storage.cachedir import LIMIT_ENV, cache_limit, cache_root, check_cache_folder, clear as clear_cache, usage

    root = cache_root(cache_dir)
    check_cache_folder(root)
    if clear:
        freed = clear_cache(root) if root.is_dir() else 0
        click.echo(f"{root}: cleared, {freed / 1e9:.2f} GB freed")
        return
    entries, size = usage(root)
    click.echo(f"{root}: {entries} stage entries, {size / 1e9:.2f} GB (limit {cache_limit() / 1e9:.2f} GB, "
               f"${LIMIT_ENV}; each run removes the entries used longest ago beyond it)")


@click.command(cls=Command)
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write: video.mkv, frames/, video.json.")
@click.option("--window", type=Integer(min=2), default=DEFAULT_FRAMES, show_default=True,
              help="Frames around each output frame that make it.")
@click.option("--step", type=Integer(min=1), default=1, show_default=True, help="Make every STEP-th frame.")
@click.option("--pipeline", "pipeline_name", default="multiframe", show_default=True,
              help=f"A built-in pipeline ({PIPELINES_HELP}) or a .toml file.")
@click.option("--set", "overrides", multiple=True, metavar="STAGE.PARAM=VALUE", help="As for multisr run (repeatable).")
@click.option("--share-registration/--no-share-registration", default=False, show_default=True,
              help="Keep what the previous window registered and register only the frames new to the window "
                   "(23% faster on a real clip; results differ, see the README).")
@click.option("--roi", default=None, metavar="X,Y,W,H",
              help="A box around a target in the clip's first frame: it is followed through the clip and every "
                   "output frame is that box, centred on the target, at 3x (or --scale).")
@scale_option
@device_option
def video(clip, out_dir, window, step, pipeline_name, overrides, share_registration, roi, scale, device):
    """A super-resolved video of CLIP: each output frame made from the window of frames around it,
    that frame the reference. A killed run, started again with the same settings, keeps the frames
    it had finished (OUT/frames)."""
    from ..outputs.videosr import super_resolve_video
    from ..runs.pipeline import load_pipeline, with_overrides

    pipeline = with_overrides(load_pipeline(pipeline_name), list(overrides))
    record = super_resolve_video(pipeline, clip, out_dir=out_dir, window=window, step=step,
                                 share_registration=share_registration, device=device, roi=roi, scale=scale)
    seconds = [o["seconds"] for o in record["outputs"] if not o["resumed"]]
    per_frame = f"{np.mean(seconds):.2f} s per computed frame" if seconds else "every frame from the earlier run"
    click.echo(f"{out_dir / 'video.mkv'}: {len(record['outputs'])} frames ({pipeline.name}), {per_frame}")


@click.command(cls=Command)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write: a run folder per burst and batch.json.")
@click.option("--pipeline", "pipeline_name", default="presenters", show_default=True,
              help=f"A built-in pipeline ({PIPELINES_HELP}) or a .toml file.")
@click.option("--set", "overrides", multiple=True, metavar="STAGE.PARAM=VALUE", help="As for multisr run (repeatable).")
@click.option("--n", type=FrameCount(), default=ALL_FRAMES, show_default=True,
              help="Frames of each burst, from its first; all: every frame of each.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="A running Dask scheduler (default: a LocalCluster).")
@click.option("--workers", type=Integer(min=1), default=None, help="LocalCluster processes (default: one per core).")
@click.option("--threads", type=Integer(min=1), default=None,
              help="Threads of each task (default: the cores divided among the workers).")
@scale_option
@cache_dir_option
@click.pass_context
def batch(ctx, inputs, out_dir, pipeline_name, overrides, n, scheduler, workers, threads, scale, cache_dir):
    """Many bursts (folders of frames, videos, or folders of them) as tasks on Dask: a run folder
    each, OUT/batch.json and a table; one bad burst fails alone; a rerun computes only what is left."""
    from ..progress import progress_bar

    from ..outputs.batch import find_bursts, run_batch
    from ..runs.pipeline import load_pipeline, with_overrides

    with_overrides(load_pipeline(pipeline_name), list(overrides))  # checked before any task starts
    failures = []

    def progress(row: dict) -> None:  # tasks done, and how many failed
        failures.append("error" in row)
        bar.set_postfix(failed=sum(failures))
        bar.update()

    bursts = find_bursts(list(inputs))
    with progress_bar(total=len(bursts), desc="batch", unit="burst", leave=False) as bar:
        summary = run_batch(bursts, out_dir=out_dir, pipeline_name=pipeline_name, overrides=list(overrides), n=n,
                            scheduler=scheduler, workers=workers, threads=threads, cache_dir=cache_dir, progress=progress,
                            scale=scale)
    for row in summary["bursts"]:
        status = (f"failed: {row['error']}" if "error" in row else
                  f"{row['result']} ({row['n']} frames; computed: {', '.join(row['computed']) or 'nothing'})")
        click.echo(f"{Path(row['burst']).name:<24}{row['seconds']:>9.2f} s  {status}")
    click.echo(f"{len(summary['bursts'])} bursts, {summary['failed']} failed, {summary['seconds']:.1f} s "
               f"({summary['scheduler']}); {out_dir / 'batch.json'}")
    if summary["failed"]:
        ctx.exit(1)

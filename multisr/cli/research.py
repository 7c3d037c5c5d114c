"""The commands for making and measuring: ``scene``, ``simulate``, ``eval``, ``train``, ``bench``."""
import json
import os
from pathlib import Path

import click

from ..errors import UserError
from ..params import DEFAULT_FRAMES
from ..storage.dng import BAYER_PATTERNS
from ..params import parse_integer
from .common import MODELS_HELP, PIPELINES_HELP, Command, Integer, Number, device_option, scale_option

__all__ = ["scene", "simulate", "evaluate", "train", "bench"]

ARCHITECTURES = {"955": dict(f1=9, f2=5, f3=5), "915": dict(f1=9, f2=1, f3=5)}


@click.command(cls=Command)
@click.argument("out_path", type=click.Path(path_type=Path))
@click.option("--text", default="MSR 3X14", show_default=True, help="The plate's characters.")
@click.option("--width", type=Integer(min=120), default=360, show_default=True)
@click.option("--height", type=Integer(min=90), default=210, show_default=True)
def scene(out_path, text, width, height):
    """Render the test scene, a licence plate on a car, to OUT_PATH (the sample burst's source)."""
    from ..research.scenes import licence_plate
    from ..storage.io import write_image

    write_image(out_path, licence_plate(text, width=width, height=height))
    click.echo(f"{out_path}: {width}x{height}")


@click.command(cls=Command)
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for the burst.")
@click.option("--n", type=Integer(min=1), default=DEFAULT_FRAMES, show_default=True)
@scale_option
@click.option("--seed", type=Integer(), default=0, show_default=True)
@click.option("--max-shift", type=Number(), default=8.0, show_default=True, help="HR pixels.")
@click.option("--max-angle", type=Number(), default=2.0, show_default=True, help="Degrees.")
@click.option("--noise", type=Number(), default=2.0, show_default=True,
              help="Gaussian sigma in 8-bit levels (sr protocol; the camera protocol models its own).")
@click.option("--protocol", type=click.Choice(["sr", "camera", "target", "plate"]), default="sr", show_default=True,
              help="sr: as SR benchmarks make bursts; camera: zoom drift, perspective, a moving object, blur, "
                   "pixel-area sampling, signal-dependent noise, JPEG; target: IMAGE crosses the picture on its own "
                   "(its box in truth.json: target_box), growing 15 %, before a still --background; plate: a random "
                   "licence plate --width pixels wide crosses IMAGE (its text and the box a user draws, user_box, in "
                   "truth.json).")
@click.option("--width", type=Integer(min=12, max=96), default=28, show_default=True,
              help="plate protocol: the plate's width in LR pixels.")
@click.option("--on-a-car", is_flag=True, help="plate protocol: the plate on the rear of a car that moves with it.")
@click.option("--background", "background_path", type=click.Path(path_type=Path), default=None,
              help="target protocol: the scene the target crosses (default: the licence plate scene).")
@click.option("--mosaic", type=click.Choice(list(BAYER_PATTERNS)), default=None,
              help="camera protocol: a RAW camera's Bayer sensor with this pattern, linear and 12-bit, frames "
                   "written as DNG files (IMAGE must be colour).")
@click.option("--subsampling", type=click.Choice(["4:2:0", "4:2:2", "4:4:4"]), default="4:2:0", show_default=True,
              help="camera protocol: how the frames' JPEG stores chroma.")
@click.option("--format", "file_format", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="camera protocol: the frames as PNG files (their pixels, as an export writes them) or as the "
                   "JPEG files they were decoded from (whose header says how chroma was stored).")
def simulate(image, out_dir, n, scale, seed, max_shift, max_angle, noise, protocol, width, on_a_car, background_path,
             mosaic, subsampling, file_format):
    """Simulate a burst of N low-resolution frames of IMAGE, with its truth (docs/DESIGN.md protocols)."""
    from ..research.scenes import licence_plate
    from ..research.simulate import save_burst, simulate as simulate_protocol
    from ..storage.io import read_image
    from ..storage.raw import MIN_RAW_SIDE

    if mosaic and protocol != "camera":
        raise UserError(f"mosaic: expected --protocol camera with a mosaic, got --protocol {protocol}")
    picture, _ = read_image(image)
    if protocol == "plate":
        from ..research.plates import simulate_plate_burst

        burst, _ = simulate_plate_burst(picture, width=width, n=n, scale=scale, seed=seed, on_a_car=on_a_car)
    elif protocol == "target":  # a fixed camera: the motion is the target's own
        background = read_image(background_path)[0] if background_path else licence_plate(width=480, height=336)
        burst = simulate_protocol(picture, protocol=protocol, n=n, scale=scale, seed=seed, background=background)
    else:
        # the camera protocol models its own noise
        options = {"noise": noise / 255.0} if protocol == "sr" else {"mosaic": mosaic, "subsampling": subsampling}
        burst = simulate_protocol(picture, protocol=protocol, n=n, scale=scale, seed=seed, max_shift=max_shift,
                                  max_angle=max_angle, **options)
    if mosaic and min(burst.frames.shape[1:3]) < MIN_RAW_SIDE:
        raise UserError(f"{image}: expected a picture that makes frames of at least {MIN_RAW_SIDE}x{MIN_RAW_SIDE} "
                        f"pixels for --mosaic (LibRaw reads no smaller RAW file), but its {picture.shape[1]}x"
                        f"{picture.shape[0]} make frames of {burst.frames.shape[2]}x{burst.frames.shape[1]}")
    names = save_burst(burst, out_dir, file_format=file_format)
    click.echo(f"{out_dir}: {len(names)} frames of {burst.frames.shape[2]}x{burst.frames.shape[1]}, "
               f"truth.png {burst.truth.shape[1]}x{burst.truth.shape[0]}, truth.json")


@click.command(name="eval", cls=Command)
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of ground-truth images.")
@scale_option
@click.option("--model", default=None, help=f"A shipped model ({MODELS_HELP}) or a weights file (default srcnn-955).")
@click.option("--bicubic-only", is_flag=True, help="Score bicubic alone.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@device_option
def evaluate(data_dir, scale, model, bicubic_only, as_json, device):
    """PSNR/SSIM of bicubic and a model on a folder of images (SRCNN paper's protocol)."""
    from ..research.evaluate import evaluate_folder
    from ..sr.weights import DEFAULT_MODEL, load_model

    network = None if bicubic_only else load_model(model or DEFAULT_MODEL, scale=scale, device=device)
    result = evaluate_folder(data_dir, scale=scale, model=network)
    if network is not None:
        result["model"] = network.name
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    methods = list(result["mean"])
    click.echo(f"{'image':<14}" + "".join(f"{m + ' PSNR':>16}{m + ' SSIM':>16}" for m in methods))
    for name, row in [*result["images"].items(), ("mean", result["mean"])]:
        click.echo(f"{name:<14}" + "".join(f"{row[m]['psnr']:>16.2f}{row[m]['ssim']:>16.4f}" for m in methods))


@click.command(cls=Command)
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of training images (T91).")
@click.option("--out", "workdir", type=click.Path(path_type=Path), required=True, help="Training folder: checkpoint, log, last.pt.")
@click.option("--arch", type=click.Choice(sorted(ARCHITECTURES)), default="955", show_default=True, help="SRCNN 9-5-5 or 9-1-5.")
@click.option("--task", type=click.Choice(["srcnn", "restore"]), default="srcnn", show_default=True,
              help="srcnn: input is the bicubic upscale (the paper). restore: input is the multi-frame "
                   "reconstruction of a simulated 20-frame burst of each image (the multiframe pipeline's restore stage).")
@click.option("--pipeline", type=click.Choice(["multiframe", "merge"]), default="multiframe", show_default=True,
              help="--task restore: the pipeline whose result (before its restore stage) the network learns to "
                   "restore.")
@click.option("--init", "init_model", default=None,
              help="Start from these weights (a model name or file, of any scale); sets the architecture.")
@scale_option
@click.option("--epochs", type=Integer(min=1), default=100, show_default=True)
@click.option("--batch-size", type=Integer(min=1), default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True,
              help="adam (fast) or the paper's SGD with per-layer rates (--lr 1e-4).")
@click.option("--lr", type=Number(), default=3e-4, show_default=True)
@click.option("--halve-lr-every", type=Integer(min=0), default=0, show_default=True, help="Epochs; 0 keeps the rate.")
@click.option("--seed", type=Integer(), default=0, show_default=True)
@click.option("--eval-data", type=click.Path(path_type=Path), default=None, help="Set5 folder for a PSNR after each eval.")
@click.option("--eval-every", type=Integer(min=1), default=1, show_default=True)
@click.option("--threads", type=Integer(min=0), default=0, help="CPU threads for torch (0: torch's default).")
@device_option
def train(data_dir, workdir, arch, task, pipeline, init_model, scale, epochs, batch_size, optimizer, lr, halve_lr_every, seed,
          eval_data, eval_every, threads, device):
    """Train SRCNN on a folder of images; resumes from OUT/checkpoint.pt when it exists."""
    import torch

    from ..research.evaluate import evaluate_folder
    from ..research.train import make_patches, restoration_patches_kept, train as run_training
    from ..sr.arch import SRCNN
    from ..sr.device import resolve_device
    from ..sr.weights import load_model

    if task == "restore" and eval_data is not None:
        raise UserError("--task restore: expected no --eval-data (it scores single-image SR); "
                        "score the result with multisr bench quality")
    cores = os.cpu_count() or 1
    if threads > 4 * cores:
        raise UserError(f"--threads: expected at most {4 * cores} (4 per core of this machine's {cores}), got {threads}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = resolve_device(device)
    if task == "restore":
        inputs, labels = restoration_patches_kept(data_dir, Path(workdir), scale=scale, pipeline=pipeline)
    else:
        inputs, labels = make_patches(data_dir, scale=scale)
    click.echo(f"{len(inputs)} sub-images of 33x33 from {data_dir} ({task}); training on {torch_device}", err=True)
    evaluate = None
    if eval_data is not None:
        evaluate = lambda model: evaluate_folder(eval_data, scale=scale, model=model)["mean"]["model"]  # noqa: E731
    network = load_model(init_model, scale=None) if init_model else SRCNN(**ARCHITECTURES[arch])
    recipe = {"task": task, "data": str(data_dir), "init": init_model,
              **({"pipeline": pipeline} if task == "restore" else {})}
    log = run_training(network, inputs, labels, workdir=workdir, scale=scale, epochs=epochs,
                       batch_size=batch_size, optimizer=optimizer, lr=lr, halve_lr_every=halve_lr_every, seed=seed,
                       evaluate=evaluate, eval_every=eval_every, device=torch_device, recipe=recipe)
    click.echo(json.dumps(log[-1]))


@click.group()
def bench():
    """Benchmarks on simulated bursts."""


@bench.command(cls=Command)
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of colour images.")
@click.option("--frames", type=Integer(min=1), default=3, show_default=True, help="Frames per burst.")
@click.option("--seed", type=Integer(), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print every burst's decision and evidence as JSON.")
def subsampling(data_dir, frames, seed, as_json):
    """How often the pixels tell a burst's chroma subsampling right: each colour image of DATA as camera
    frames coded by JPEG (OpenCV, Pillow) at 4:4:4, 4:2:2 and 4:2:0 and by video codecs (H.264, MPEG-4),
    qualities 70-98, decoded to RGB and judged without their headers."""
    from ..progress import progress_bar
    from ..research.bench_subsampling import SOURCES, bench_subsampling, confusion, load_colour_images

    images = load_colour_images(data_dir)
    with progress_bar(total=len(images) * sum(map(len, SOURCES.values())), desc="bench subsampling",
                      unit="burst", leave=False) as bar:
        rows = bench_subsampling(images, n=frames, seed=seed, progress=bar.update)
    if as_json:
        click.echo(json.dumps({"bursts": rows, "confusion": confusion(rows)}, indent=1))
        return
    click.echo(f"{'source':<13}{'truth':<8}{'as 4:4:4':>10}{'as 4:2:2':>10}{'as 4:2:0':>10}")
    for source, table in confusion(rows).items():
        for truth, decisions in table.items():
            click.echo(f"{source:<13}{truth:<8}" + "".join(f"{decisions[d]:>10}" for d in ("4:4:4", "4:2:2", "4:2:0")))
    right = sum(row["decision"] == row["truth"] for row in rows)
    false_alarms = sum(row["truth"] == "4:4:4" and row["decision"] != "4:4:4" for row in rows)
    click.echo(f"right on {right} of {len(rows)} bursts ({right / len(rows):.1%}); 4:4:4 called subsampled: "
               f"{false_alarms} of {sum(row['truth'] == '4:4:4' for row in rows)}")


def _target_table(result: dict) -> None:
    """The target protocol's table: PSNR inside the target (and on the background, without a box),
    the target's registration error with one."""
    columns = list(result["mean"])
    click.echo(f"{'image':<14}" + "".join(f"{c:>18}" for c in columns) + "   (target dB / background dB; +roi: "
               "target dB, registration px)")
    for image, row in [*result["images"].items(), ("mean", result["mean"])]:
        cells = []
        for c in columns:
            cell = row.get(c, {"error": ""})
            if "error" in cell:
                cells.append(f"{'failed':>18}")
            elif "background_psnr" in cell:
                cells.append(f"{cell['target_psnr']:>9.2f} / {cell['background_psnr']:5.2f}")
            else:
                cells.append(f"{cell['target_psnr']:>9.2f}, {cell['registration_px']:5.3f}")
        click.echo(f"{image:<14}" + "".join(cells))


def _plate_bench(data_dir, names, n, seed, widths, plates, on_a_car, scale, device, as_json) -> None:
    """``bench quality --protocol plate``: the benchmark and its table (per width, each column's
    plates read exactly, character accuracy and PSNR inside the plate)."""
    from ..imaging.ocr import OCR_INSTALL, ocr_available
    from ..research.bench_plate import plate_benchmark

    try:
        parsed = [parse_integer(part) for part in widths.split(",")]
    except ValueError:
        parsed = []
    if not parsed or not all(12 <= width <= 96 for width in parsed):
        raise UserError(f"--widths: expected plate widths of 12 to 96 LR pixels in the digits 0-9, comma-separated, "
                        f"got {widths!r}")
    if not ocr_available():
        raise UserError(f"--protocol plate: reading the plates needs the optional OCR, which is not installed: "
                        f"{OCR_INSTALL}")
    result = plate_benchmark(data_dir, pipelines=names, n=n, seed=seed, widths=parsed, plates=plates,
                             on_a_car=on_a_car, device=device, scale=scale)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{'width':<7}{'column':<18}{'read exactly':>14}{'characters':>12}{'plate dB':>10}{'tracked px':>12}"
               f"{'failed':>8}")
    for width, table in result["widths"].items():
        for column, mean in table["mean"].items():
            psnr = f"{mean['plate_psnr']:>10.2f}" if "plate_psnr" in mean else f"{'-':>10}"
            tracked = f"{mean['registration_px']:>12.3f}" if "registration_px" in mean else f"{'-':>12}"
            click.echo(f"{width:<7}{column:<18}{mean['exact']:>14.2f}{mean['characters']:>12.2f}{psnr}{tracked}"
                       f"{mean['failed']:>8}")


@bench.command(cls=Command)
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of HR images.")
@click.option("--pipelines", default="bicubic,single,presenters,multiframe,merge", show_default=True,
              help=f"Comma-separated built-in names ({PIPELINES_HELP}) or .toml files.")
@click.option("--n", type=Integer(min=2), default=DEFAULT_FRAMES, show_default=True)
@click.option("--seed", type=Integer(), default=0, show_default=True)
@click.option("--noise", type=Number(), default=2.0, show_default=True, help="Gaussian sigma in 8-bit levels.")
@click.option("--outliers", type=Integer(min=0), default=0, show_default=True,
              help="Frames per burst replaced by another scene or a blurred copy.")
@click.option("--protocol", type=click.Choice(["sr", "camera", "target", "plate"]), default="sr", show_default=True,
              help="How the bursts are simulated (see multisr simulate); target: each image crosses the next one, "
                   "every pipeline without and with --roi; plate: random plates cross DATA's images, read by an OCR "
                   "(needs: pip install 'multisr[ocr]').")
@click.option("--widths", default="20,28,36,48", show_default=True, metavar="PX,PX,...",
              help="plate protocol: the plates' widths in LR pixels.")
@click.option("--plates", type=Integer(min=1), default=12, show_default=True,
              help="plate protocol: plates at each width.")
@click.option("--on-a-car", is_flag=True, help="plate protocol: each plate on the rear of a car that moves with it.")
@device_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--mosaic", type=click.Choice(list(BAYER_PATTERNS)), default=None,
              help="camera protocol: RAW bursts of a Bayer sensor with this pattern, run from DNG files.")
@click.option("--subsampling", type=click.Choice(["4:2:0", "4:2:2", "4:4:4"]), default="4:2:0", show_default=True,
              help="camera protocol: how the frames' JPEG stores chroma.")
@click.option("--format", "file_format", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True,
              help="camera protocol: the pipelines get the frames as JPEG files say them (the subsampling known) or "
                   "as PNG files exported from them (the pixels alone).")
@scale_option
def quality(data_dir, pipelines, n, seed, noise, outliers, protocol, widths, plates, on_a_car, mosaic, subsampling,
            file_format, scale, device, as_json):
    """PSNR/SSIM of each pipeline, and registration error, on bursts simulated from DATA's images
    (plate protocol: the plates read exactly, character accuracy and PSNR inside the plate)."""
    from ..research.bench import quality_benchmark

    names = [name.strip() for name in pipelines.split(",") if name.strip()]
    if outliers > n - 2:
        raise UserError(f"--outliers: expected at most {n - 2} for --n {n}, got {outliers}")
    if protocol == "plate":
        _plate_bench(data_dir, names, n, seed, widths, plates, on_a_car, scale, device, as_json)
        return
    result = quality_benchmark(data_dir, pipelines=names, n=n, seed=seed, noise=noise / 255.0, outliers=outliers,
                               protocol=protocol, mosaic=mosaic, subsampling=subsampling, file_format=file_format,
                               device=device, scale=scale)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    if protocol == "target":
        _target_table(result)
        return
    names = list(result["mean"])  # pipeline names (a file's stem for a .toml path)
    click.echo(f"{'image':<14}" + "".join(f"{name:>22}" for name in names) + "   registration RMS (px, deg)")
    for image, row in [*result["images"].items(), ("mean", result["mean"])]:
        cells = "".join(f"{'failed':>22}" if "error" in row[name] else f"{row[name]['psnr']:>12.2f} / {row[name]['ssim']:.4f}"
                        for name in names)
        extra = "".join(f"   {name} {row[name]['registration']['rms_px']:.3f}, {row[name]['registration']['rms_deg']:.4f}"
                        for name in names if "registration" in row[name])
        if any("object_psnr" in row.get(name, {}) for name in names):
            extra += "   object PSNR: " + ", ".join(f"{name} {row[name]['object_psnr']:.2f}" for name in names
                                                    if "object_psnr" in row[name])
        if any("rgb_psnr" in row.get(name, {}) for name in names):
            extra += "   RGB PSNR / CIEDE2000: " + ", ".join(
                f"{name} {row[name]['rgb_psnr']:.2f} / {row[name]['ciede2000']:.2f}" for name in names
                if "rgb_psnr" in row[name])
        if "planted" in row:
            left_out = next((row[name]["left_out"] for name in names if "left_out" in row[name]), [])
            extra += f"   planted {row['planted']}, left out {left_out}"
        click.echo(f"{image:<14}{cells}{extra}")
    for image, row in result["images"].items():
        for name in names:
            if "error" in row[name]:
                click.echo(f"Warning: {image}, {name}: {row[name]['error']}", err=True)
    if result["images_in_mean"] < len(result["images"]):
        click.echo(f"(mean over the {result['images_in_mean']} images every pipeline scored)")


@bench.command(cls=Command)
@click.option("--sizes", default="160x120,640x480", show_default=True,
              help="LR frame sizes, WxH, comma-separated (a phone burst: --sizes 4000x3000 --n 10).")
@click.option("--pipelines", default="bicubic,single,presenters,multiframe,merge", show_default=True,
              help=f"Comma-separated built-in names ({PIPELINES_HELP}) or .toml files.")
@click.option("--n", type=Integer(min=2), default=DEFAULT_FRAMES, show_default=True)
@device_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@scale_option
def speed(sizes, pipelines, n, device, as_json, scale):
    """Per-stage wall time, peak memory and SRCNN FLOP rate of each pipeline on simulated bursts."""
    from ..research.bench import speed_benchmark

    try:
        parsed = [tuple(parse_integer(v) for v in size.lower().split("x")) for size in sizes.split(",")]
    except ValueError:
        parsed = []
    if not parsed or not all(len(size) == 2 and min(size) >= 16 for size in parsed):
        raise UserError(f"--sizes: expected WxH pairs of at least 16x16 in the digits 0-9, comma-separated, got {sizes!r}")
    from ..storage.io import MAX_PIXELS_ENV, max_pixels

    for width, height in parsed:
        if width * height > max_pixels():
            raise UserError(f"--sizes: expected frames of at most {max_pixels():,} pixels ({MAX_PIXELS_ENV}), got "
                            f"{width}x{height}")
    names = [name.strip() for name in pipelines.split(",") if name.strip()]
    result = speed_benchmark(sizes=parsed, pipelines=names, n=n, device=device, scale=scale)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    stage_names = ["load", "register", "select_reference", "upscale", "srcnn", "realign", "fuse", "reconstruct",
                   "restore"]
    used = [s for s in stage_names if any(s in row["stages"] for row in result["rows"])]
    click.echo(f"device {result['device']}, {result['n']} frames, dense matmul {result['matmul_gflops']:.1f} GFLOP/s, "
               f"SRCNN alone {result['network_gflops']:.1f} GFLOP/s "
               f"({result['network_gflops'] / result['matmul_gflops']:.2f} of matmul)")
    widths = {s: max(10, len(s) + 2) for s in used}
    click.echo(f"{'size':<9}{'pipeline':<12}" + "".join(f"{s:>{widths[s]}}" for s in used)
               + f"{'total s':>10}{'peak MiB':>10}{'SR GFLOP/s':>12}{'SR/matmul':>10}")
    for row in result["rows"]:
        if "error" in row:
            click.echo(f"{row['size']:<9}{row['pipeline']:<12}failed: {row['error']}")
            continue
        cells = "".join(f"{row['stages'][s]:>{widths[s]}.3f}" if s in row["stages"] else f"{'-':>{widths[s]}}"
                        for s in used)
        rate = row.get("srcnn_gflops")
        extra = f"{rate:>12.1f}{rate / result['matmul_gflops']:>10.2f}" if rate else f"{'-':>12}{'-':>10}"
        click.echo(f"{row['size']:<9}{row['pipeline']:<12}{cells}{row['seconds']:>10.2f}{row['peak_mib']:>10.0f}{extra}")

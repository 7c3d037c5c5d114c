"""``multisr bench quality --protocol plate``: can the plate be read? Random plates of several
widths cross each background of a folder (:func:`multisr.research.plates.simulate_plate_burst`);
an OCR reads the plate's box (as a user draws it) from every pipeline's result without a box;
with the box (``--roi``), and in the vote over the burst's own frames
(:func:`multisr.runs.reading.frame_vote`), the part of it that ``run --read`` reads (the target's own
pixels, :func:`multisr.runs.reading.text_part`); in the truth, the plate itself. Scored by the
fraction of plates read exactly, the character accuracy (both in the protocol's alphabet, which has
no I, O or Q: an OCR's O for a 0 is not counted against it) and PSNR inside the plate.
"""
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging.geometry import in_box
from ..imaging.ocr import character_accuracy, read_text
from ..params import SCALE
from ..progress import progress_bar
from ..runs.engine import run_frames
from ..runs.pipeline import load_pipeline
from ..runs.reading import frame_vote, reading_record, text_part
from ..runs.stages import moving_mask
from ..storage.folders import list_images
from ..storage.io import read_image, to_uint
from .bench_target import ONE_FRAME, psnr_where, target_registration_error
from .plates import simulate_plate_burst

__all__ = ["DEFAULT_WIDTHS", "plate_benchmark"]

DEFAULT_WIDTHS = (20, 28, 36, 48)  # LR pixels
NOT_ON_PLATES = str.maketrans("IOQ", "100")  # the letters random_plate never draws, read as digits


def _in_plate_alphabet(text: str) -> str:
    """A reading in the protocol's alphabet: the letters its plates never use (I, O, Q) read as
    the digits they are confused with (1, 0, 0)."""
    return text.translate(NOT_ON_PLATES)


def _judged(reading, text: str) -> dict:
    read = _in_plate_alphabet(reading.text)
    return {**reading_record(reading), "exact": read == text, "characters": character_accuracy(read, text)}


def _score(image: np.ndarray, text: str, plate: np.ndarray, truth_plate: np.ndarray) -> dict:
    """The OCR's reading of ``image`` (the user's box) against ``text``, and PSNR of ``plate`` (the
    plate's own pixels) against the truth's."""
    return {**_judged(read_text(image), text),
            "plate_psnr": psnr_where(plate, truth_plate, np.ones(truth_plate.shape[:2], bool))}


def plate_benchmark(data_dir: Path, *, pipelines: list[str], n: int, seed: int, widths=DEFAULT_WIDTHS,
                    plates: int = 12, on_a_car: bool = False, device: str = "auto", scale: int = SCALE) -> dict:
    """``plates`` plates at each width of ``widths`` (the same strings and backgrounds at every
    width: plate ``i`` crosses ``data_dir``'s image ``i`` modulo their count, seed ``seed + i``;
    with ``on_a_car``, on the rear of a car),
    through every pipeline at ``scale`` without a box and, for those that register, with the user's box
    (``"<name>+roi"``); ``truth`` reads the plate in frame 0's HR picture, ``vote`` each frame's single-image SR.
    Returns ``{"widths": {width: {"plates": [...], "mean": {column: {"exact", "characters",
    "plate_psnr"[, "registration_px"]}}}}, "settings"}``; ``exact`` and ``characters`` are fractions in [0, 1];
    ``registration_px`` (with a box): the tracker's error, RMS over the user's box and the frames
    kept, in LR pixels (:func:`multisr.research.bench_target.target_registration_error`)."""
    loaded = [load_pipeline(name) for name in pipelines]
    files = list_images(Path(data_dir))
    if not files:
        raise UserError(f"{data_dir}: expected images to use as backgrounds, found none")
    backgrounds = [read_image(path)[0] for path in files]
    result = {}
    bar = progress_bar(total=len(widths) * plates, desc="bench plate", unit="plate", leave=False)
    for width in widths:
        rows = []
        for index in range(plates):
            burst, plate = simulate_plate_burst(backgrounds[index % len(backgrounds)], width=width, n=n,
                                                seed=seed + index, on_a_car=on_a_car, scale=scale)
            text, box, user = plate.text, burst.settings["plate_box"], burst.settings["user_box"]
            true_matrices = np.array(burst.settings["target_matrices"])
            truth_plate = in_box(burst.truth, box, scale)
            frames = to_uint(burst.frames, 8).astype(np.float32) / 255.0
            names = [f"frame_{k:03d}" for k in range(n)]
            row = {"text": text, "layout": plate.layout, "background": files[index % len(files)].name,
                   "box": box, "user_box": user, "truth": _score(truth_plate, text, truth_plate, truth_plate)}
            for pipeline in loaded:
                try:
                    whole = run_frames(pipeline, frames, names=names, reference=0, device=device,
                                       chroma_subsampling="4:2:0", scale=scale).image
                    row[pipeline.name] = _score(in_box(whole, user, scale), text, in_box(whole, box, scale), truth_plate)
                    if pipeline.name in ONE_FRAME:
                        continue
                    boxed = run_frames(pipeline, frames, names=names, reference=0, device=device,
                                       roi=",".join(map(str, user)), chroma_subsampling="4:2:0", scale=scale)
                    kept = [names.index(name) for name in boxed.record["target"]["frames"]]
                    part = text_part(user, moving_mask(boxed.record["target"]))  # what run --read reads
                    row[f"{pipeline.name}+roi"] = {
                        **_score(in_box(boxed.image, part, scale, origin=user[:2]), text,
                                 in_box(boxed.image, box, scale, origin=user[:2]), truth_plate),
                        "registration_px": target_registration_error(boxed.matrices, true_matrices[kept], user)}
                    if "vote" not in row:  # the target's motion as the first pipeline with a box tracked it
                        voted, _ = frame_vote(frames[kept], boxed.matrices, part, scale=scale, device="cpu")
                        row["vote"] = _judged(voted, text)
                except UserError as error:
                    row[f"{pipeline.name}+roi" if pipeline.name in row else pipeline.name] = {"error": str(error)}
            rows.append(row)
            bar.update()
        columns = list(dict.fromkeys(k for r in rows for k, v in r.items() if isinstance(v, dict)))
        mean = {}
        for column in columns:
            cells = [r.get(column, {"error": "not run"}) for r in rows]
            # a failed run reads nothing: it counts as a plate not read
            mean[column] = {"exact": float(np.mean([c.get("exact", False) for c in cells])),
                            "characters": float(np.mean([c.get("characters", 0.0) for c in cells])),
                            "failed": sum("error" in c for c in cells)}
            for key in ("plate_psnr", "registration_px"):  # over the plates not lost
                values = [c[key] for c in cells if key in c]
                if values:
                    mean[column][key] = float(np.mean(values))
        result[str(width)] = {"plates": rows, "mean": mean}
    bar.close()
    return {"widths": result, "settings": {"protocol": "plate", "n": n, "seed": seed, "scale": scale,
                                           "plates": plates, "widths": list(widths), "on_a_car": on_a_car}}

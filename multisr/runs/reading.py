"""What the plate says: the OCR's reading of a run's box (``multisr run --roi --read``, the
comparison report, the plate benchmark), and the anchor's reading without a multi-frame
result: each frame's single-image SR of the box read on its own and the readings put to a vote
per character position (UFPR-SR-Plates, Nascimento et al. 2025, votes over five frames).
"""
import numpy as np

from ..imaging.geometry import in_box, similarity_matrix, warp
from ..imaging.ocr import Reading, read_text, vote
from ..params import SCALE
from ..sr.inference import super_resolve
from ..sr.weights import DEFAULT_MODEL, load_model

__all__ = ["reading_record", "text_part", "frame_vote", "read_target"]

VOTE_MARGIN = 4  # LR pixels around the box that each frame's window keeps for the network's reach


def reading_record(reading: Reading) -> dict:
    """A reading as ``run.json`` and the report keep it: ``{"text", "confidence"}``."""
    return {"text": reading.text, "confidence": round(float(reading.confidence), 4)}


def text_part(box: tuple[int, int, int, int], moving: np.ndarray | None) -> tuple[int, int, int, int]:
    """The part ``(x, y, w, h)`` of ``box`` (``(x, y, w, h)``, in its frame's pixels) that the OCR
    reads: the bounding box of the target's own pixels, ``moving`` (``(h, w)`` bool over the box,
    the tracker's mask of what moves with the target: a plate without the background a user's box
    takes in around it; a recogniser reads a line of text best cropped to it), or the whole box
    where there is no mask or it is empty. On the plate benchmark (12 plates a width, the box 2 px
    around the plate), `multiframe --roi` read 3 and 9 plates of 12 at 28 and 36 LR px from the
    whole box and 4 and 11 from this part."""
    if moving is None or not moving.any():
        return tuple(box)
    rows, columns = np.nonzero(moving)
    x, y = box[:2]
    return (x + int(columns.min()), y + int(rows.min()), int(columns.max() - columns.min()) + 1,
            int(rows.max() - rows.min()) + 1)


def frame_vote(frames: np.ndarray, matrices: np.ndarray, box: tuple[int, int, int, int], *,
               model: str = DEFAULT_MODEL, scale: int = SCALE, device: str = "cpu") -> tuple[Reading, list[Reading]]:
    """Each frame's reading of the box and their vote (:func:`multisr.imaging.ocr.vote`).

    ``frames`` ``(N, H, W[, 3])`` float in [0, 1]: the frames the target was found in;
    ``matrices`` ``(N, 3, 3)``: the target's motion, the reference's pixels -> frame k's;
    ``box`` ``(x, y, w, h)`` in the reference's pixels. Each frame is resampled onto the
    reference's box (with :data:`VOTE_MARGIN` pixels around it), enlarged ``scale`` x by single-image SR
    (``model``), cut to the box and read. Returns ``(vote, readings)``, one reading a frame."""
    x, y, w, h = box
    network = load_model(model, scale=scale, device=device)
    to_window = similarity_matrix(shift=(x - VOTE_MARGIN, y - VOTE_MARGIN))  # window pixels -> reference's
    shape = (h + 2 * VOTE_MARGIN, w + 2 * VOTE_MARGIN)
    inner = (slice(scale * VOTE_MARGIN, scale * (VOTE_MARGIN + h)), slice(scale * VOTE_MARGIN, scale * (VOTE_MARGIN + w)))
    readings = []
    for frame, matrix in zip(frames, matrices):
        window, _ = warp(np.asarray(frame, np.float32), matrix @ to_window, shape)
        readings.append(read_text(super_resolve(np.clip(window, 0, 1), network, scale=scale)[inner]))
    return vote(readings), readings


def read_target(result: np.ndarray, windows: np.ndarray, matrices: np.ndarray, box: tuple[int, int, int, int], *,
                moving: np.ndarray | None = None, scale: int = SCALE, device: str = "cpu") -> dict:
    """What a run with a box says the plate reads, as ``run.json``'s ``reading`` keeps it:
    ``{"result": the OCR's reading of ``result`` (the box at ``scale`` x), "vote": the vote over the
    frames' own readings, "frames": each frame's text, "part": the part of the box read, ``[x, y,
    w, h]`` in the box's pixels}``; both read the box's part :func:`text_part` gives for ``moving``
    (the target's own pixels). ``windows`` ``(N, h, w[, 3])``: the frames cut around the target;
    ``matrices`` ``(N, 3, 3)``: the reference window's pixels -> window k's; ``box`` in the
    reference window's pixels."""
    part = text_part(box, moving)
    voted, readings = frame_vote(windows, matrices, part, scale=scale, device=device)
    return {"result": reading_record(read_text(np.clip(in_box(result, part, scale, origin=box[:2]), 0, 1))),
            "vote": reading_record(voted), "frames": [r.text for r in readings],
            "part": [part[0] - box[0], part[1] - box[1], part[2], part[3]]}

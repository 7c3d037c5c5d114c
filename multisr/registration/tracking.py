"""A target that moves on its own (a plate on a passing car, a face, a sign): its box in the
reference frame tracked through a burst as a plane, and the burst cut to where it is.

:func:`track_target` finds, for every frame, the homography that carries the box's content from
the reference frame to that frame: frame by frame outwards from the reference (each frame starts
from its neighbour's motion continued at the same velocity, and a template search over a window
around that prediction catches the rest of a large step), then robust Lucas-Kanade
(:func:`multisr.registration.alignment.align`, Tukey's weights: background in the box's corners and a partial
occlusion have no say) of the frame against the reference's box itself, so that nothing drifts
along the chain. A frame where the box leaves the picture or the fit fails is left out, with the
reason.

Boxes as small as a plate 20 pixels wide: only the box's own pixels decide (the reference's
pixels around it only smooth its edges). In a box under 24 pixels a side the background the box
holds (a user's box drawn 2 pixels around a plate 6 high is half background) would decide: there
the background's own motion is fitted on a ring around the box (:func:`background_motion`: the
camera's jitter), the box's pixels that it explains in most frames are left out
(:func:`moving_pixels`), and in a frame where the target's pixels are not where the background
puts them, no match there is taken (:func:`away_from_background`: a plate moving sideways
otherwise matches its own rows and margin where it stood). Where the target is lost all the
same, it is tracked again on the pixels that move with it in the frames found. The smoothing and
the motion model follow the box's size (:func:`fit_plan`: a similarity below 24 pixels a side);
the frames whose target strays from the smooth path the others trace (for a small box, in the
background's coordinates: without the camera's jitter, a straight path most frames agree on) are
fitted again from the path (a box of a few pixels can match a patch of background or its own next
character). Where a small box's chain from frame to frame breaks all the same (a plate 20 pixels
wide: its fit slides to another size, the next frame's prediction with it), every frame is searched
at once (:func:`_path_centres`: the path that most frames' best matches agree on) and fitted from
where that path puts it, as a shift where every fit slides in size.

:func:`cut_to_target` cuts every frame to a window of one size around the target (the box's
window in the reference, with :data:`MARGIN` pixels for the kernels of the stages that follow)
and gives the motion between the windows, so that every later stage works on the box and costs
what the box costs, whatever the frame's size.
"""
from dataclasses import dataclass
from itertools import combinations

import cv2
import numpy as np
from scipy.linalg import fractional_matrix_power

from ..errors import UserError
from ..imaging.color import luma
from ..imaging.geometry import apply, similarity_matrix
from ..params import parse_integer
from .alignment import MAD_TO_SIGMA, MIN_SIDE_FOR_MODEL, align, plan_for_size

__all__ = ["MIN_BOX", "MARGIN", "Tracked", "parse_roi", "check_roi", "box_template", "find_target", "predicted",
           "track_target", "cut_to_target", "Follower"]

MIN_BOX = 8  # LR pixels: a box's shorter side, at least (a plate 20 px wide, drawn with a pixel or two around it)
MARGIN = 6  # LR pixels around the box that every frame's window keeps: the widest kernel's reach and more
SEARCH = 16  # LR pixels: how far from its prediction the template search looks for the target
MIN_CORRELATION = 0.6  # below this after alignment, the box's content is not there: hidden or changed
MIN_INSIDE = 0.9  # of the box's pixels that must land inside a frame for the target to be in it
STILL_TOLERANCE = 0.04  # of the range: a pixel's change between frames that noise and JPEG explain
# LR px: how far the background's fitted motion may be off, on top of the noise: a pixel on a slope of s
# changes by s times that for a static scene (a handheld burst of still things is no target moving on its own)
STILL_SHIFT = 0.5
STILL_FRAMES = 0.5  # of the other frames: a box's pixel that stays in this many stands still
LEAVES = "the target leaves the picture"  # a frame's reason when less than MIN_INSIDE of the box is in it
MIN_SUPPORT_FRAMES = 4  # frames found, at least, to tell the pixels that move with the target
SUPPORT_ROUNDS = 3  # of tracking again on the pixels that move with the target, while each finds more frames
MIN_MOVING = 0.3  # of the box's pixels: fewer that change, and the target does not move against its background
MIN_CHANGING = 0.1  # of the box's pixels: fewer that change, and a target found moving on its own has none to go by
PATH_REACH = 2  # LR px: how far from a path without a camera's jitter the search looks for the target
PATH_TOLERANCE = 1.0  # LR px: a found target's centre this far from the burst's smooth path may be off it
MIN_PATH_FRAMES = 6  # frames found: fewer, and no path is fitted through them
PEAKS = 8  # a frame's best template matches that the path search weighs (a small box's: its own and look-alikes)
PEAK_SPACING = 3  # LR pixels: two matches nearer than this are one
PATH_SUPPORT = 1.5  # LR px: a frame's match this near a path the search tries supports it
RING = 12  # LR pixels around a small box whose background tells how the background moves
# a fit's size against the prediction's, at most this factor either way: a target does not grow or shrink by
# a quarter between a frame and its neighbours (a plate 6 px high can fit the background at 1.6x, its
# correlation above MIN_CORRELATION)
MAX_ZOOM_CHANGE = 1.25
AWAY = 1.0  # LR pixels: a target that does not stand still is at least this far from where the background puts it
CONTEXT = 4  # LR pixels of the reference around the box that its template keeps, for the smoothing only
# the fit's coarse-to-fine Gaussians (LR px): ending unsmoothed suits blurred camera frames (0.025-0.039 px
# on the target protocol) but not aliased ones (0.09-0.18 px on sample_frames); these give 0.031-0.048 on both.
# A small box takes those it supports (alignment.plan_for_size)
SMOOTHINGS = (3.0, 1.5, 0.75)
# LR pixels along a large box's edge that its fit leaves out (where a box drawn loosely holds background;
# a small box cannot spare them): the aliased sample burst's box registers 2x worse with them
EDGE = 4


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` -> four ints, or ``ValueError`` (a stage parameter's check names it)."""
    try:
        x, y, w, h = (parse_integer(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"expected four integers X,Y,W,H written with the digits 0-9 (the box's top-left pixel, "
                         f"its width and height in the reference frame's pixels), got {text!r}") from None
    return x, y, w, h


def check_roi(roi, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``roi`` ``(x, y, w, h)`` checked against frames of ``shape = (height, width)``: inside, at
    least :data:`MIN_BOX` on a side; :class:`UserError` naming ``roi`` otherwise."""
    x, y, w, h = roi
    height, width = shape
    if w < MIN_BOX or h < MIN_BOX:
        raise UserError(f"roi: expected a box of at least {MIN_BOX}x{MIN_BOX} pixels, got {w}x{h}")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise UserError(f"roi: expected a box inside the {width}x{height} frame, got {x},{y},{w},{h} (it reaches "
                        f"{x + w},{y + h})")
    return x, y, w, h


@dataclass
class Tracked:
    """:func:`track_target`'s result: ``matrices`` ``(N, 3, 3)``, reference LR pixels -> frame
    k's for the target's plane (NaN for a frame it is not found in); ``reasons``: ``None`` for a
    frame the target was found in, else why not; ``correlations``: of the aligned box and the
    reference's (NaN where not aligned); ``moving``: ``(h, w)`` bool, the box's pixels that move with
    the target and not with its background (a small box's, :func:`moving_pixels`), or ``None`` where
    every pixel does (a large box, or a target that does not move against its background)."""

    matrices: np.ndarray
    reasons: list
    correlations: list
    moving: np.ndarray | None = None


def _box_corners(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array([0.0, w - 1, 0, w - 1]), np.array([0.0, 0, h - 1, h - 1])


def _inside_fraction(matrix: np.ndarray, w: int, h: int, shape: tuple[int, int]) -> float:
    ys, xs = np.mgrid[0:h:2, 0:w:2].astype(np.float64)
    u, v = apply(matrix, xs, ys)
    return float(np.mean((u >= 0) & (u <= shape[1] - 1) & (v >= 0) & (v <= shape[0] - 1)))


def _search(template: np.ndarray, frame: np.ndarray, start: np.ndarray, mask: np.ndarray | None = None,
            avoid: np.ndarray | None = None, reach: int = SEARCH) -> np.ndarray:
    """``start`` (box pixels -> frame pixels) moved by the shift that best matches ``template``
    (the box's own pixels) within ``reach`` pixels around where ``start`` puts it
    (normalised cross-correlation of the frame resampled onto the box's grid by ``start``; over
    ``mask``'s pixels of the box where given), not within :data:`AWAY` pixels of where ``avoid``
    (box pixels -> frame pixels) puts it."""
    h, w = template.shape
    around = start @ similarity_matrix(shift=(-reach, -reach))
    window = cv2.warpPerspective(frame, around, (w + 2 * reach, h + 2 * reach),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    avoid_at = None if avoid is None else _centre(avoid, w, h) - _centre(start, w, h) + reach
    _, _, _, (best_x, best_y) = cv2.minMaxLoc(_correlation(window, template, mask, avoid_at))
    return start @ similarity_matrix(shift=(best_x - reach, best_y - reach))


def _correlation(window: np.ndarray, template: np.ndarray, mask: np.ndarray | None,
                 avoid_at: np.ndarray | None) -> np.ndarray:
    """The normalised cross-correlation of ``template`` (over ``mask``'s pixels where given) at
    every place in ``window`` (``cv2.matchTemplate``'s map; -1 where undefined), and -1 within
    :data:`AWAY` pixels of ``avoid_at`` (``(x, y)`` in the map's pixels) where given."""
    weights = None if mask is None else mask.astype(np.float32)
    scores = np.nan_to_num(cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED, mask=weights), nan=-1.0)
    if avoid_at is not None:
        ys, xs = np.mgrid[0 : scores.shape[0], 0 : scores.shape[1]]
        scores[np.hypot(xs - avoid_at[0], ys - avoid_at[1]) <= AWAY + 0.5] = -1.0
    return scores


def _centre(matrix: np.ndarray, w: int, h: int) -> np.ndarray:
    """Where ``matrix`` (box pixels -> frame pixels) puts the centre of a ``w x h`` box."""
    u, v = apply(matrix, np.array([(w - 1) / 2]), np.array([(h - 1) / 2]))
    return np.array([u[0], v[0]])


def _near(frame: np.ndarray, matrix: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """The Y of the part of ``frame`` (``(H, W[, 3])``) where ``matrix`` (box pixels -> frame
    pixels) puts the box, with room for the search and a zoom of up to 1.5, and the translation
    from the frame's pixels to that part's: a frame of any size costs what the box costs."""
    height, width = frame.shape[:2]
    u, v = apply(matrix, *_box_corners(w, h))
    reach = SEARCH + 0.5 * max(w, h)
    left, top = int(np.clip(np.floor(u.min() - reach), 0, width - 1)), int(np.clip(np.floor(v.min() - reach), 0, height - 1))
    right = int(np.clip(np.ceil(u.max() + reach), left + 1, width))
    bottom = int(np.clip(np.ceil(v.max() + reach), top + 1, height))
    return luma(frame[top:bottom, left:right]).astype(np.float32), similarity_matrix(shift=(-left, -top))


def predicted(found: list[tuple[int, np.ndarray]], k: int) -> np.ndarray:
    """Frame ``k``'s motion from the motions found so far in one direction (``(frame, matrix)``
    pairs, nearest last; the reference's ``(index, identity)`` first): the last one continued at
    the velocity of the last two, over the frames from the last one to ``k`` (a frame where the
    target was not found does not hold the prediction back)."""
    last_frame, last = found[-1]
    if len(found) < 2:
        return last
    before_frame, before = found[-2]
    step = last @ np.linalg.inv(before)  # over last_frame - before_frame frames
    power = (k - last_frame) / (last_frame - before_frame)
    if power == 1:
        return step @ last
    return np.real(fractional_matrix_power(step / step[2, 2], power)) @ last


def small_box(box: tuple[int, int, int, int]) -> bool:
    """Whether a box ``(x, y, w, h)`` is under :data:`MIN_SIDE_FOR_MODEL` LR pixels a side: its
    own pixels support a similarity at most, and its background and noise weigh (a plate's box)."""
    return min(box[2:]) < MIN_SIDE_FOR_MODEL


def fit_plan(w: int, h: int, model: str) -> tuple[tuple[float, ...], str, int]:
    """The fit's smoothings, motion model and edge for a box of ``w x h`` LR pixels: those of
    :data:`SMOOTHINGS` and ``model`` that the box supports
    (:func:`multisr.registration.alignment.plan_for_size`), and an edge of :data:`EDGE` pixels
    left out of the fit for a box of :data:`MIN_SIDE_FOR_MODEL` pixels a side or more (none for a
    smaller one)."""
    smoothings, model = plan_for_size((h, w), SMOOTHINGS, model)
    return smoothings, model, 0 if small_box((0, 0, w, h)) else EDGE


def find_target(template: np.ndarray, box: tuple[int, int, int, int], frame: np.ndarray, guess: np.ndarray, *,
                model: str = "homography", mask: np.ndarray | None = None, avoid: np.ndarray | None = None,
                reach: int = SEARCH) -> tuple[np.ndarray | None, str | None, float]:
    """The box's content found in ``frame`` (``(H, W[, 3])``) from the motion ``guess`` (reference
    pixels -> frame pixels); ``template`` is :func:`box_template`'s (the box and its context).
    Returns ``(matrix, reason, correlation)``: the target's motion, or ``None`` with the reason it
    is not in the frame: it leaves the picture (its motion so far puts less than
    :data:`MIN_INSIDE` of the box in it, and nothing is found inside), or it is not within
    :data:`SEARCH` pixels of where its motion puts it (it moved farther, or is hidden or changed:
    a frame alone cannot tell which).

    Only the box's own pixels decide: the search matches them alone, and the fit's points are
    theirs; the reference's :data:`CONTEXT` pixels around them only give the fit's smoothed passes
    the true surroundings of the box's edge, so that a box of a few pixels keeps its edges.
    Where every fit of a small box (its moving pixels, ``mask``, known) slides more than
    :data:`MAX_ZOOM_CHANGE` in size, it is fitted as a shift at the expected size instead.
    ``avoid`` (reference pixels -> frame pixels): where the target is known not to be
    (:func:`away_from_background`); no match within :data:`AWAY` pixels of it is taken. ``reach``: how
    far from the guess the search looks (:data:`SEARCH` pixels, or fewer where the guess is sure)."""
    height, width = frame.shape[:2]
    x, y, w, h = box
    smoothings, model, edge = fit_plan(w, h, model)
    to_box = similarity_matrix(shift=(x, y))  # box pixels -> reference pixels
    part, to_part = _near(frame, guess @ to_box, w, h)
    predicted_start = to_part @ guess @ to_box
    inner = (slice(CONTEXT, -CONTEXT), slice(CONTEXT, -CONTEXT))
    avoided = None if avoid is None else to_part @ avoid @ to_box
    searched = _search(template[inner], part, predicted_start, None if mask is None else mask[inner], avoided, reach)
    padded = similarity_matrix(shift=(-CONTEXT, -CONTEXT))  # template pixels -> box pixels
    # from the search's best match and from the prediction itself (a plate's repeated characters
    # can give the search a peak one character off), and for a small box without the smoothed passes
    # too (a plate a few pixels high, smoothed, can slide to another zoom): the fit that matches the box best
    away = avoided is None or np.hypot(*(_centre(predicted_start, w, h) - _centre(avoided, w, h))) > AWAY
    starts = (searched, predicted_start) if away and not np.array_equal(searched, predicted_start) else (searched,)
    plans = (smoothings, smoothings[-1:]) if len(smoothings) > 1 and small_box(box) else (smoothings,)
    fits = [align(template, part, start @ padded, model=model, smoothings=plan, border=CONTEXT + edge, mask=mask)
            for start in starts for plan in plans]
    fits = [f for f in fits if f is not None]
    sized = [f for f in fits if abs(np.log(_zoom(f.matrix) / _zoom(predicted_start))) <= np.log(MAX_ZOOM_CHANGE)]
    if fits and not sized and mask is not None:  # every fit slid to another size: the shift alone, at the expected size
        shifted = (align(template, part, start @ padded, model="shift", smoothings=smoothings[-1:],
                         border=CONTEXT + edge, mask=mask) for start in starts)
        sized = [f for f in shifted if f is not None]
    kept = [f for f in sized if avoided is None
            or np.hypot(*(_centre(f.matrix @ np.linalg.inv(padded), w, h) - _centre(avoided, w, h))) > AWAY]
    fit = max(kept, key=lambda f: f.correlation, default=None)
    # what can truly be said of a target not found: its motion so far puts it out of the picture,
    # or it is not within the search's reach of where that motion puts it
    expected_out = _inside_fraction(guess @ to_box, w, h, (height, width)) < MIN_INSIDE
    if fit is None:
        out = expected_out or _inside_fraction(np.linalg.inv(to_part) @ searched, w, h, (height, width)) < MIN_INSIDE
        why = ("it matched only where the background stands" if sized else
               f"it matched only at a size more than {MAX_ZOOM_CHANGE}x off the expected one" if fits else
               "too few of the box's pixels matched")
        return None, LEAVES if out else _not_found(why), np.nan
    in_frame = np.linalg.inv(to_part) @ fit.matrix @ np.linalg.inv(padded)
    if _inside_fraction(in_frame, w, h, (height, width)) < MIN_INSIDE:  # the fit ran off the picture
        return None, LEAVES if expected_out else _not_found("its best match runs off the picture"), fit.correlation
    if fit.correlation < MIN_CORRELATION:
        return None, LEAVES if expected_out else _not_found(
            f"the best match correlates {fit.correlation:.2f} with the reference's box, below {MIN_CORRELATION}"), \
            fit.correlation
    matrix = in_frame @ np.linalg.inv(to_box)
    return matrix / matrix[2, 2], None, fit.correlation


def _zoom(matrix: np.ndarray) -> float:
    """The linear size factor of a 3x3 map's linear part."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:2, :2] / matrix[2, 2]))))


def _not_found(why: str) -> str:
    """The reason for a target not found in a frame whose picture holds where it was expected."""
    return (f"the target was not found within {SEARCH} px of where its motion so far puts it ({why}): it moved "
            f"farther, or is hidden or changed there")


def box_template(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``(h + 2 C, w + 2 C)`` float32: the Y of ``frame`` inside ``box = (x, y, w, h)`` with
    ``C =`` :data:`CONTEXT` pixels around it (the frame's edge repeated where the box is nearer
    to it): what :func:`find_target` looks for."""
    return np.ascontiguousarray(luma(frame[_with_context(box, frame.shape[:2])]), dtype=np.float32)


def _with_context(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The index of :func:`box_template`'s pixels in a frame of ``shape = (H, W)`` (``np.ix_``):
    the box with :data:`CONTEXT` pixels around it, the frame's edge repeated past it."""
    x, y, w, h = box
    rows = np.clip(np.arange(y - CONTEXT, y + h + CONTEXT), 0, shape[0] - 1)
    columns = np.clip(np.arange(x - CONTEXT, x + w + CONTEXT), 0, shape[1] - 1)
    return np.ix_(rows, columns)


def background_motion(frames: np.ndarray, reference: int, box: tuple[int, int, int, int]) -> list:
    """Per frame, the motion of the background around ``box`` (reference pixels -> frame k's, 3x3;
    ``None`` where it cannot be fitted): a robust fit of the reference's :data:`RING` pixels around
    the box (the box itself left out: the target moves on its own) to each frame, from standing
    still. A camera's jitter and drift of a few pixels are caught; a target crossing the ring
    costs nothing (Tukey's weights)."""
    x, y, w, h = box
    height, width = frames.shape[1:3]
    ring = max(RING, max(w, h) // 2)
    left, top = max(0, x - ring), max(0, y - ring)
    right, bottom = min(width, x + w + ring), min(height, y + h + ring)
    template = luma(frames[reference][top:bottom, left:right]).astype(np.float32)
    around = np.ones(template.shape, bool)
    around[max(0, y - top - 1) : y - top + h + 1, max(0, x - left - 1) : x - left + w + 1] = False
    smoothings, _ = plan_for_size(template.shape, SMOOTHINGS, "similarity")
    to_region = similarity_matrix(shift=(left, top))
    motions: list = [None] * len(frames)
    motions[reference] = np.eye(3)
    for k in range(len(frames)):
        if k == reference:
            continue
        part, to_part = _near(frames[k], to_region, right - left, bottom - top)
        fit = align(template, part, to_part @ to_region, model="similarity", smoothings=smoothings, border=2, mask=around)
        if fit is not None and fit.correlation >= MIN_CORRELATION:
            motion = np.linalg.inv(to_part) @ fit.matrix @ np.linalg.inv(to_region)
            motions[k] = motion / motion[2, 2]
    return motions


def still_pixels(frames: np.ndarray, reference: int, box: tuple[int, int, int, int], template: np.ndarray,
                 background: list) -> np.ndarray:
    """``(N, h + 2 C, w + 2 C)`` bool over ``template``'s pixels (:func:`box_template` of the
    reference): where frame k, resampled by the background's motion (:func:`background_motion`),
    shows what the reference shows (within :data:`STILL_TOLERANCE`, and :data:`STILL_SHIFT` times
    the reference's slope there: the background's motion is fitted, not exact): the background, or
    a target that stands still there. False where the background's motion is not
    known; True for the reference."""
    still = np.zeros((len(frames), *template.shape), bool)
    still[reference] = True
    slope = np.hypot(cv2.Sobel(template, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(template, cv2.CV_32F, 0, 1, ksize=3)) / 8
    tolerance = STILL_TOLERANCE + STILL_SHIFT * slope
    for k, motion in enumerate(background):
        if k != reference and motion is not None:
            seen = _seen_on_template(frames[k], motion, box, cv2.INTER_LINEAR)
            still[k] = np.abs(seen - template) <= tolerance
    return still


def moving_pixels(still: np.ndarray, reference: int, minimum: float = MIN_MOVING) -> np.ndarray | None:
    """``(h + 2 C, w + 2 C)`` bool: the template's pixels that do not stand still
    (:func:`still_pixels` ``(N, ...)``) in :data:`STILL_FRAMES` of the other frames or more, for the
    fit to use (``None`` where fewer than ``minimum`` of the box's do, too few to tell).

    A box drawn around a target that moves on its own holds some of the background it moves
    over (a user draws a plate's box a pixel or two wide; on a plate 8 pixels high that is half
    the box): those pixels are left out (a flat pixel has no say in a fit either). When fewer
    than :data:`MIN_MOVING` of the box's pixels change, the target does not move against its
    background (a camera that follows it, or a target that stays) and every pixel is used."""
    others = np.delete(still, reference, axis=0)
    moving = others.sum(axis=0) < STILL_FRAMES * len(others)
    inside = moving[CONTEXT:-CONTEXT, CONTEXT:-CONTEXT]
    return moving if inside.mean() >= minimum else None


def away_from_background(still: np.ndarray, mask: np.ndarray | None, background: list) -> list:
    """Per frame, the background's motion where the target cannot be (``None`` elsewhere): where
    most of the target's pixels (``mask``) do not stand still, the target has left the place the
    background's motion puts it, so a match there is the background's (a box's margin, a plate's
    rows that a sideways motion leaves alike) and not the target's."""
    if mask is None:
        return [None] * len(still)
    return [motion if motion is not None and still[k][mask].mean() < STILL_FRAMES else None
            for k, motion in enumerate(background)]


def track_target(frames: np.ndarray, reference: int, roi: tuple[int, int, int, int], *,
                 model: str = "homography") -> Tracked:
    """Track the box ``roi = (x, y, w, h)`` of ``frames[reference]`` through ``frames``
    (``(N, H, W[, 3])`` float in [0, 1]; each frame's Y is taken only around where the target is
    expected) as a plane (see the module docstring); ``model`` is the fit's motion model
    (:data:`multisr.registration.alignment.MODELS`)."""
    count = len(frames)
    template = box_template(frames[reference], roi)
    # a small box's background weighs: its pixels that the background's motion explains are left out,
    # and where the background puts the target it is not (a large box's robust fit rejects its share by
    # itself, and is more accurate with every pixel: 0.046 -> 0.040 LR px RMS on the target protocol's
    # 48-px targets)
    mask, avoid, background = None, [None] * count, [None] * count
    if small_box(roi):
        background = background_motion(frames, reference, roi)
        still = still_pixels(frames, reference, roi, template, background)
        mask = moving_pixels(still, reference)
        avoid = away_from_background(still, mask, background)
    matrices, reasons, correlations = _track(frames, reference, roi, template, mask, avoid, background, model)
    if small_box(roi) and mask is None and 2 * reasons.count(None) >= count \
            and _left_the_background(roi, reference, matrices, reasons, background):
        # taken for a target that stands still, it was found moving on its own in most frames (a plate
        # whose flat rows slide along themselves changes few pixels): again, on the pixels that change
        changing = moving_pixels(still, reference, minimum=MIN_CHANGING)
        if changing is not None:
            away = away_from_background(still, changing, background)
            again = _track(frames, reference, roi, template, changing, away, background, model)
            if 2 * again[1].count(None) >= count:
                mask, avoid, (matrices, reasons, correlations) = changing, away, again
    if small_box(roi) and _lost_inside(reasons):
        # lost in the picture: the chain from frame to frame broke (a plate a few pixels high matches a
        # look-alike, or its fit slides to another size): again, each frame from the path most frames' matches
        # agree on
        centres = _path_centres(frames, reference, roi, template, mask, avoid, background)
        if centres is not None:
            again = _track(frames, reference, roi, template, mask, avoid, background, model, centres)
            if again[1].count(None) > reasons.count(None):
                matrices, reasons, correlations = again
    for _ in range(SUPPORT_ROUNDS):  # lost in the picture: again, on the pixels that move with the target
        if not _lost_inside(reasons):
            break
        support = _moving_with_the_target(frames, roi, template, matrices, reasons)
        if support is None:
            break
        own = support if mask is None else mask & support
        again = _track(frames, reference, roi, template, own, avoid, background, model)
        if again[1].count(None) <= reasons.count(None):
            break
        mask, (matrices, reasons, correlations) = own, again
    return Tracked(matrices, reasons, correlations, None if mask is None else mask[CONTEXT:-CONTEXT, CONTEXT:-CONTEXT])


def _lost_inside(reasons: list) -> list[int]:
    """The frames where the target was not found though it is in the picture (``reasons``: per
    frame, ``None`` where found, :data:`LEAVES` where it leaves the picture)."""
    return [k for k, reason in enumerate(reasons) if reason not in (None, LEAVES)]


def _left_the_background(roi: tuple[int, int, int, int], reference: int, matrices: np.ndarray, reasons: list,
                         background: list) -> bool:
    """Whether the target, where found, is more than :data:`AWAY` pixels from where the
    background's motion puts the box in at least half the frames (but the ``reference``)."""
    x, y, w, h = roi
    to_box = similarity_matrix(shift=(x, y))
    apart = [np.hypot(*(_centre(matrices[k] @ to_box, w, h) - _centre(motion @ to_box, w, h))) > AWAY
             for k, motion in enumerate(background)
             if k != reference and reasons[k] is None and motion is not None]
    return bool(apart) and 2 * sum(apart) >= len(apart)


def _track(frames, reference, roi, template, mask, avoid, background, model,
           centres: np.ndarray | None = None) -> tuple[np.ndarray, list, list]:
    """One tracking of the box: frame by frame outwards from the reference, each frame from its
    neighbour's motion continued (or, given ``centres`` ``(N, 2)`` in frame pixels, from the box
    at the reference's size with its centre there, searched within :data:`PATH_REACH` pixels),
    then back to the path (:func:`_keep_to_the_path`). Returns :class:`Tracked`'s three fields."""
    count = len(frames)
    x, y, w, h = roi
    to_box = similarity_matrix(shift=(x, y))
    matrices = np.full((count, 3, 3), np.nan)
    matrices[reference] = np.eye(3)
    reasons: list = [None] * count
    correlations = [np.nan] * count
    correlations[reference] = 1.0
    for order in (range(reference + 1, count), range(reference - 1, -1, -1)):
        found = [(reference, np.eye(3))]  # the frames found so far this way and their motion, nearest last
        for k in order:
            guess, reach = predicted(found, k), SEARCH
            if centres is not None:  # the path's place, at the reference's size (a few pixels' fit of a size slides)
                guess, reach = similarity_matrix(shift=centres[k] - _centre(to_box, w, h)), PATH_REACH
            matrix, reasons[k], correlations[k] = find_target(template, roi, frames[k], guess, model=model,
                                                              mask=mask, avoid=avoid[k], reach=reach)
            if matrix is not None:
                matrices[k] = matrix
                found.append((k, matrix))
    _keep_to_the_path(frames, reference, roi, template, mask, avoid, background, model, matrices, reasons, correlations)
    return matrices, reasons, correlations


def _matches(frame: np.ndarray, roi: tuple[int, int, int, int], template: np.ndarray, mask: np.ndarray | None,
             reach: int, avoid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The box's :data:`PEAKS` best matches in ``frame`` within ``reach`` pixels of where it is in
    the reference (normalised cross-correlation of the box's own pixels at the reference's size,
    local maxima :data:`PEAK_SPACING` apart, none within :data:`AWAY` pixels of where ``avoid``
    puts the box). Returns ``(centres (M, 2), scores (M,))``, the box's centre in frame pixels."""
    x, y, w, h = roi
    height, width = frame.shape[:2]
    left, top = max(0, x - reach), max(0, y - reach)
    right, bottom = min(width, x + w + reach), min(height, y + h + reach)
    if right - left < w or bottom - top < h:
        return np.zeros((0, 2)), np.zeros(0)
    inner = (slice(CONTEXT, -CONTEXT), slice(CONTEXT, -CONTEXT))
    corner = np.array([left + (w - 1) / 2, top + (h - 1) / 2])  # the box's centre at the map's pixel (0, 0)
    avoid_at = None if avoid is None else _centre(avoid @ similarity_matrix(shift=(x, y)), w, h) - corner
    scores = _correlation(luma(frame[top:bottom, left:right]).astype(np.float32), template[inner],
                          None if mask is None else mask[inner], avoid_at)
    spacing = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * PEAK_SPACING + 1,) * 2)
    ys, xs = np.nonzero((scores >= cv2.dilate(scores, spacing)) & (scores > 0))
    order = np.argsort(scores[ys, xs])[::-1][:PEAKS]
    return np.stack([xs[order], ys[order]], axis=1) + corner, scores[ys[order], xs[order]]


def _path_centres(frames, reference, roi, template, mask, avoid, background) -> np.ndarray | None:
    """``(N, 2)``: where the path that most frames' best matches agree on puts the box's centre in
    each frame (frame pixels; the path is traced in the background's coordinates where its motion
    is known in every frame), or ``None`` when fewer than :data:`MIN_PATH_FRAMES` frames support one.

    Each frame offers its :data:`PEAKS` best matches (:func:`_matches`, within :data:`SEARCH`
    pixels a frame from the reference's box); every match proposes a straight path through the
    reference's box at constant velocity; the path with the most frames that have a match within
    :data:`PATH_SUPPORT` pixels of it (ties: the higher scores) is refined as a robust quadratic
    in time (:func:`_robust_trend`) through those matches. A chain from frame to frame breaks
    where one frame matches a look-alike; this looks at every frame at once."""
    x, y, w, h = roi
    count = len(frames)
    steady, to_scene = _scene(background)
    origin = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
    times, places, scores = [], [], []
    for k in range(count):
        if k == reference:
            continue
        centres, peak_scores = _matches(frames[k], roi, template, mask, SEARCH * abs(k - reference), avoid[k])
        if len(centres):
            u, v = apply(to_scene[k], centres[:, 0], centres[:, 1])
            times += [k - reference] * len(centres)
            places.append(np.stack([u, v], axis=1) - origin)
            scores.append(peak_scores)
    if not places:
        return None
    times, places, scores = np.array(times, np.float64), np.concatenate(places), np.concatenate(scores)
    velocities = places / times[:, None]  # (M, 2): the path each match proposes
    distance = np.linalg.norm(velocities[:, None] * times[None, :, None] - places[None], axis=2)  # (path, match)
    frame_of = np.unique(times, return_inverse=True)[1]
    best = np.full((len(places), frame_of.max() + 1), -np.inf)  # per path and frame: its best supporting score
    np.maximum.at(best, (slice(None), frame_of), np.where(distance <= PATH_SUPPORT, scores[None], -np.inf))
    supported = np.isfinite(best)
    chosen = np.lexsort((np.where(supported, best, 0).sum(axis=1), supported.sum(axis=1)))[-1]
    if supported[chosen].sum() + 1 < MIN_PATH_FRAMES:
        return None
    near = distance[chosen] <= PATH_SUPPORT
    trend = _robust_trend(np.append(times[near], 0.0), np.vstack([places[near], [0.0, 0.0]]))
    if trend is None:
        return None
    path = _evaluate(trend[0], np.arange(count, dtype=np.float64) - reference).T + origin  # (N, 2)
    return np.stack([np.ravel(apply(np.linalg.inv(to_scene[k]), *path[k])) for k in range(count)])


def _aligned(frames: np.ndarray, roi: tuple[int, int, int, int], matrices: np.ndarray, reasons: list) -> np.ndarray:
    """``(K, h + 2 C, w + 2 C)``: :func:`box_template`'s pixels in each of the K frames the target
    was found in, resampled onto the reference's box by its motion (each frame's Y only around
    the target)."""
    return np.stack([_seen_on_template(frames[k], matrices[k], roi, cv2.INTER_CUBIC)
                     for k, reason in enumerate(reasons) if reason is None])


def _seen_on_template(frame: np.ndarray, motion: np.ndarray, box: tuple[int, int, int, int],
                      interpolation: int) -> np.ndarray:
    """``(h + 2 C, w + 2 C)``: the Y of ``frame`` resampled onto :func:`box_template`'s pixels by
    ``motion`` (reference pixels -> the frame's), read only around where it puts them."""
    x, y, w, h = box
    to_template = similarity_matrix(shift=(x - CONTEXT, y - CONTEXT))
    shape = (h + 2 * CONTEXT, w + 2 * CONTEXT)
    part, to_part = _near(frame, motion @ to_template, shape[1], shape[0])
    return cv2.warpPerspective(part, to_part @ motion @ to_template, shape[::-1],
                               flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def _moving_with_the_target(frames: np.ndarray, roi: tuple[int, int, int, int], template: np.ndarray,
                            matrices: np.ndarray, reasons: list) -> np.ndarray | None:
    """``(h + 2 C, w + 2 C)`` bool: the template's pixels that the frames found so far show where
    the target's motion carries them (the median difference within :data:`STILL_TOLERANCE`):
    the target's own, without the background a pixel that changes can also be (the target
    covers and uncovers it). ``None`` with fewer than :data:`MIN_SUPPORT_FRAMES` frames found or
    fewer than :data:`MIN_MOVING` of the box's pixels kept. A box lost in some frames is tracked
    again on these (a plate 36 px wide in a box 2 px wider, crossing a face: 6 frames of 20 found
    on the pixels that change, 20 on these)."""
    aligned = _aligned(frames, roi, matrices, reasons)
    if len(aligned) < MIN_SUPPORT_FRAMES:
        return None
    residual = np.median(np.abs(aligned - template), axis=0)
    support = residual <= STILL_TOLERANCE
    inner = support[CONTEXT:-CONTEXT, CONTEXT:-CONTEXT]
    return support if inner.mean() >= MIN_MOVING else None


def _robust_trend(times: np.ndarray, values: np.ndarray, *, consensus: bool = False):
    """A quadratic in ``times`` (``(T,)``) through ``values`` (``(T, D)``), robustly: refitted on
    the points within ``limit`` of it (:data:`PATH_TOLERANCE`, or four robust deviations of their
    distances if more: a camera's jitter). With ``consensus`` (the values are a target's path
    without a camera's jitter), the limit is :data:`PATH_TOLERANCE`, and the fit starts from the
    points within it of the straight line that the most lie within it of (every pair tried: half
    the points may be off, and a quadratic through three far apart bends to take in a wrong
    group); else from all of them. Returns ``(fits,
    inlier, limit)`` (one ``np.polyfit`` a column), or ``None`` when fewer than
    :data:`MIN_PATH_FRAMES` points stay."""
    inlier = _consensus(times, values) if consensus else np.ones(len(times), bool)
    for _ in range(5):
        if inlier.sum() < MIN_PATH_FRAMES:
            return None
        fits = [np.polyfit(times[inlier], values[inlier, axis], 2) for axis in range(values.shape[1])]
        distance = np.linalg.norm(values - _evaluate(fits, times).T, axis=1)
        limit = PATH_TOLERANCE if consensus else max(PATH_TOLERANCE, 4 * MAD_TO_SIGMA * float(np.median(distance[inlier])))
        inlier = distance <= limit
    if inlier.sum() < MIN_PATH_FRAMES:
        return None
    return fits, inlier, limit


def _consensus(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: the points within :data:`PATH_TOLERANCE` of the straight line (in time)
    through the pair of points that the most lie within it of (ties: the smallest sum of
    distances)."""
    first, second = np.array(list(combinations(range(len(times)), 2))).T
    velocity = (values[second] - values[first]) / (times[second] - times[first])[:, None]  # (P, D)
    line = values[first][:, None] + velocity[:, None] * (times[None, :, None] - times[first][:, None, None])
    distance = np.linalg.norm(line - values, axis=2)  # (P, T)
    within = distance <= PATH_TOLERANCE
    best = np.lexsort((np.where(within, distance, 0).sum(axis=1), -within.sum(axis=1)))[0]
    return within[best]


def _scene(background: list) -> tuple[bool, list]:
    """Whether the background's motion is known in every frame (``background``, per frame), and
    each frame's map to the background's coordinates (the reference's pixels without the camera's
    jitter): the inverse of that motion where it is known in every frame, else the identity."""
    steady = all(motion is not None for motion in background)
    return steady, [np.linalg.inv(motion) if steady else np.eye(3) for motion in background]


def _evaluate(fits: list, times) -> np.ndarray:
    """``(D[, T])``: the trend's values at ``times``."""
    return np.array([np.polyval(fit, times) for fit in fits])


def _keep_to_the_path(frames, reference, roi, template, mask, avoid, background, model, matrices, reasons,
                      correlations) -> None:
    """The frames found off the path the others trace, and those not found, tried again from the
    path (in place). A target's centre moves smoothly through a burst (a car, a face: the
    velocity changes little in a second): a robust quadratic in time through the centres found
    is the path, and a frame whose centre lies farther from it than :data:`PATH_TOLERANCE` pixels
    or four robust deviations (a camera's jitter widens them) matched something else (a plate's
    box of a few pixels can match a patch of background, or its own next character). Where the
    background's motion is known (``background``, per frame; a small box's), the centres are
    taken where the background was, without the camera's jitter, and the path is the one most of
    them agree on (:func:`_consensus`). Each frame off it, and each frame where the target was
    not found but did not leave the picture, is fitted again from where the path puts it (a
    path without jitter is sure to :data:`PATH_REACH` pixels; the search looks no farther); kept
    if it then lands on the path, else left out with the reason. Needs :data:`MIN_PATH_FRAMES`
    frames found."""
    x, y, w, h = roi
    found = [k for k, reason in enumerate(reasons) if reason is None]
    if len(found) < MIN_PATH_FRAMES:
        return
    centre = (np.array([x + (w - 1) / 2]), np.array([y + (h - 1) / 2]))
    steady, to_scene = _scene(background)
    half_width = (w - 1) / 2

    def place_of(matrix: np.ndarray) -> np.ndarray:
        """The box's centre, and where the path is without jitter its size too (as how far its
        half width moves: log zoom times half the width, in px)."""
        u, v = apply(matrix, *centre)
        if not steady:
            return np.array([u[0], v[0]])
        right, _ = apply(matrix, centre[0] + half_width, centre[1])
        return np.array([u[0], v[0], half_width * np.log(max(abs(right[0] - u[0]), 1e-6) / half_width)])

    times = np.array(found, np.float64)
    places = np.stack([place_of(to_scene[k] @ matrices[k]) for k in found])
    trend = _robust_trend(times, places, consensus=steady)
    if trend is None:
        return
    fits, inlier, limit = trend
    suspect = [k for k, ok in zip(found, inlier) if not ok and k != reference]
    retry = suspect + _lost_inside(reasons)
    good = [k for k, ok in zip(found, inlier) if ok]
    for k in retry:
        expected = _evaluate(fits, k)
        nearest = min(good, key=lambda j: abs(j - k))
        there = place_of(to_scene[nearest] @ matrices[nearest])
        zoom = np.exp((expected[2] - there[2]) / half_width) if steady else 1.0
        in_scene = similarity_matrix(shift=expected[:2] - there[:2]) @ similarity_matrix(scale=zoom, center=there[:2])
        guess = np.linalg.inv(to_scene[k]) @ in_scene @ to_scene[nearest] @ matrices[nearest]
        matrix, reason, correlation = find_target(template, roi, frames[k], guess, model=model, mask=mask,
                                                  avoid=avoid[k], reach=PATH_REACH if steady else SEARCH)
        if matrix is None:  # a suspect's match is gone; a lost frame keeps its reason
            if k in suspect:
                matrices[k], reasons[k], correlations[k] = np.nan, reason, correlation
            continue
        off = float(np.linalg.norm(place_of(to_scene[k] @ matrix) - expected))
        if off <= limit:
            matrices[k], reasons[k], correlations[k] = matrix, None, correlation
        else:
            matrices[k], correlations[k] = np.nan, correlation
            reasons[k] = (f"the target was not found: its best match is {off:.1f} px from the path the target takes "
                          f"in the other frames")


def cut_to_target(frames: np.ndarray, matrices: np.ndarray, roi: tuple[int, int, int, int], reference: int,
                  *, indices: list[int] | None = None, margin: int = MARGIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the frames ``indices`` (by default all) of ``frames`` (``(N, H, W[, C])``; the frames
    the target was found in, ``matrices`` and ``reference`` counted among them) to one window
    size around the target, without copying the frames whole.

    The reference's window is the box with ``margin`` pixels on each side; every other frame's is
    where that window lands by ``matrices`` (reference pixels -> frame k's), and all take the size
    of the largest (a target that grows towards the camera), moved inside the frame where it
    would reach past an edge. Returns ``(windows, window_matrices, offsets)``: ``(N, S_h, S_w[,
    C])``; ``(N, 3, 3)``, reference-window pixels -> frame k's window pixels; ``(N, 2)`` int,
    each window's top-left pixel ``(x, y)`` in its frame.
    """
    indices = list(range(len(frames))) if indices is None else list(indices)
    count, height, width = len(indices), *frames.shape[1:3]
    x, y, w, h = roi
    corner_x = np.array([x - margin, x + w - 1 + margin, x - margin, x + w - 1 + margin], np.float64)
    corner_y = np.array([y - margin, y - margin, y + h - 1 + margin, y + h - 1 + margin], np.float64)
    boxes = []
    for matrix in matrices:
        u, v = apply(matrix, corner_x, corner_y)
        boxes.append((u.min(), v.min(), u.max(), v.max()))
    size_w = min(width, int(np.ceil(max(b[2] - b[0] for b in boxes))) + 1)
    size_h = min(height, int(np.ceil(max(b[3] - b[1] for b in boxes))) + 1)
    offsets = np.zeros((count, 2), int)
    for k, (left, top, right, bottom) in enumerate(boxes):
        offsets[k, 0] = int(np.clip(np.floor((left + right) / 2 - (size_w - 1) / 2), 0, width - size_w))
        offsets[k, 1] = int(np.clip(np.floor((top + bottom) / 2 - (size_h - 1) / 2), 0, height - size_h))
    windows = np.stack([frames[index, oy : oy + size_h, ox : ox + size_w] for index, (ox, oy) in zip(indices, offsets)])
    origin = similarity_matrix(shift=offsets[reference])
    window_matrices = np.stack([similarity_matrix(shift=(-ox, -oy)) @ matrix @ origin for matrix, (ox, oy) in zip(matrices, offsets)])
    return windows, window_matrices / window_matrices[:, 2:, 2:], offsets


class Follower:
    """The box ``box`` of a clip's first frame followed through the clip as its frames come, in
    order (``multisr video --roi``): :meth:`add` each frame, then :meth:`box_in` gives the box of
    that size centred where the target is in a frame (where it was last found, while it is lost)."""

    def __init__(self, first: np.ndarray, box: tuple[int, int, int, int], *, model: str = "homography"):
        self.box, self.model = check_roi(box, first.shape[:2]), model
        self.shape = first.shape[:2]
        self.template = box_template(first, self.box)
        self.found = [(0, np.eye(3))]
        self.latest = {0: np.eye(3)}

    def add(self, k: int, frame: np.ndarray) -> None:
        """Frame ``k`` of the clip (``k`` > 0, after frame ``k - 1``)."""
        if k == 0:
            return
        matrix, _, _ = find_target(self.template, self.box, frame, predicted(self.found, k), model=self.model)
        if matrix is not None:
            self.found.append((k, matrix))
        self.latest[k] = self.found[-1][1]

    def box_in(self, k: int) -> str:
        """``"x,y,w,h"``: the box of frame ``k`` where the target's centre is, inside the frame."""
        x, y, w, h = self.box
        u, v = apply(self.latest[k], np.array([x + (w - 1) / 2]), np.array([y + (h - 1) / 2]))
        left = int(np.clip(np.round(u[0] - (w - 1) / 2), 0, self.shape[1] - w))
        top = int(np.clip(np.round(v[0] - (h - 1) / 2), 0, self.shape[0] - h))
        return f"{left},{top},{w},{h}"

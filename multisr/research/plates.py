"""Licence plates to read: random strings drawn as a plate, and the plate protocol's bursts
(:func:`simulate_plate_burst`; ``multisr simulate --protocol plate``, ``multisr bench quality
--protocol plate``).

A plate is drawn at a high resolution (:data:`DRAW_HEIGHT` pixels high) and left to the target
protocol to be scaled to its width in LR pixels, moved, blurred and sampled. What varies from plate
to plate, drawn from the burst's seed: the layout (the characters' pattern and the plate's aspect:
:data:`LAYOUTS`), the font (OpenCV's Hershey fonts, stroke widths from thin to bold) and the
colours (dark on light and light on dark). Letters that plates commonly leave out for being
confused with digits (I, O, Q) are never drawn, so that a reading is right or wrong by its
characters alone.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from .burst import Burst
from .moving_target import simulate_target_burst

__all__ = ["LAYOUTS", "LETTERS", "DIGITS", "USER_MARGIN", "Plate", "random_plate", "simulate_plate_burst"]

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
DIGITS = "0123456789"
USER_MARGIN = 2  # LR pixels: how far around the plate a user draws its box
DRAW_HEIGHT = 120  # pixels: the height a plate is drawn at, before the protocol scales it
# pattern (L a letter, D a digit, anything else itself) and the plate's width / height
LAYOUTS = {
    "us": ("DLLLDDD", 2.0),  # 12 x 6 in: "8RMG300"
    "eu": ("LLDDLLL", 4.7),  # 520 x 110 mm: "AB12CDE"
    "fr": ("LLDDDLL", 4.7),  # "AB123CD"
    "square": ("LLLDDDD", 2.6),  # a wide frame and narrow characters: "ABC1234"
}
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX)
# (characters, plate) in RGB [0, 1]: black on white, black on yellow, white on blue, black on grey-white
CAR_WIDTH = 2.5  # a car's rear, in plate widths
CAR_COLOURS = ((0.75, 0.75, 0.78), (0.12, 0.12, 0.14), (0.55, 0.08, 0.08), (0.15, 0.25, 0.5), (0.85, 0.85, 0.8))
COLOURS = (((0.05, 0.05, 0.05), (0.95, 0.95, 0.93)), ((0.05, 0.05, 0.08), (0.96, 0.82, 0.15)),
           ((0.97, 0.97, 0.97), (0.10, 0.22, 0.55)), ((0.12, 0.10, 0.10), (0.80, 0.80, 0.78)))


@dataclass(frozen=True)
class Plate:
    """A drawn plate: ``image`` ``(h, w, 3)`` float32 RGB in [0, 1] (``DRAW_HEIGHT`` high),
    ``text`` its characters, and what was drawn (``layout``, ``font``, ``colours``)."""

    image: np.ndarray
    text: str
    layout: str
    font: int
    colours: int


def _string(rng, pattern: str) -> str:
    return "".join(rng.choice(list(LETTERS)) if c == "L" else rng.choice(list(DIGITS)) if c == "D" else c
                   for c in pattern)


def random_plate(rng, *, layout: str | None = None) -> Plate:
    """A plate of random characters drawn from ``rng`` (a :class:`numpy.random.Generator`): its
    layout one of :data:`LAYOUTS` (drawn when ``None``), a font and colours drawn too. The text
    fills about 60 % of the plate's height and 85 % of its width, inside a frame of the text's
    colour, as on a real plate."""
    layout = layout if layout is not None else str(rng.choice(list(LAYOUTS)))
    pattern, aspect = LAYOUTS[layout]
    text = _string(rng, pattern)
    font = int(rng.integers(len(FONTS)))
    colours = int(rng.integers(len(COLOURS)))
    ink, paper = (np.array(c, np.float32) for c in COLOURS[colours])
    height = DRAW_HEIGHT
    width = int(round(height * aspect))
    # the characters' size: as tall as 60 % of the plate allows, narrowed to 85 % of its width
    thickness = max(2, int(round(height * rng.uniform(0.06, 0.10))))
    (text_w, text_h), _ = cv2.getTextSize(text, FONTS[font], 1.0, thickness)
    size = min(0.6 * height / text_h, 0.85 * width / text_w)
    thickness = max(2, int(round(thickness * min(1.0, size))))
    (text_w, text_h), _ = cv2.getTextSize(text, FONTS[font], size, thickness)
    canvas = np.zeros((height, width), np.uint8)
    origin = ((width - text_w) // 2, (height + text_h) // 2)
    cv2.putText(canvas, text, origin, FONTS[font], size, 255, thickness, cv2.LINE_AA)
    border = max(2, height // 30)
    cv2.rectangle(canvas, (border, border), (width - 1 - border, height - 1 - border), 255, border, cv2.LINE_AA)
    alpha = canvas.astype(np.float32)[..., None] / 255
    image = paper * (1 - alpha) + ink * alpha
    return Plate(image.astype(np.float32), text, layout, font, colours)


def _on_a_car(plate: Plate, rng) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The rear of a car around ``plate``: a body of a drawn colour :data:`CAR_WIDTH` times the
    plate's width, a darker bumper under the plate, two tail lights; returns the picture and the
    plate's rectangle in it as fractions ``(x, y, w, h)``."""
    plate_h, plate_w = plate.image.shape[:2]
    width = int(round(CAR_WIDTH * plate_w))
    height = int(round(max(3 * plate_h, 0.5 * width)))
    body = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
    car = np.empty((height, width, 3), np.float32)
    car[:] = body * np.linspace(1.0, 0.8, height, dtype=np.float32)[:, None, None]  # light from above
    left, top = (width - plate_w) // 2, int(round(0.55 * height - plate_h / 2))
    car[top - plate_h // 4 :, :] *= 0.45  # the bumper, from a little above the plate down
    light_w, light_h = width // 6, height // 5
    for x in (width // 20, width - width // 20 - light_w):
        car[height // 8 : height // 8 + light_h, x : x + light_w] = (0.75, 0.08, 0.06)
    car[top : top + plate_h, left : left + plate_w] = plate.image
    return car, (left / width, top / height, plate_w / width, plate_h / height)


def simulate_plate_burst(background: np.ndarray, *, width: int, n: int = 20, seed: int = 0,
                         layout: str | None = None, on_a_car: bool = False, **options) -> tuple[Burst, Plate]:
    """The plate protocol: a random plate (:func:`random_plate`, drawn from ``seed``) ``width``
    LR pixels wide crossing ``background`` as the target protocol's target does
    (:func:`multisr.research.moving_target.simulate_target_burst`, ``options`` passed on); with
    ``on_a_car``, on the rear of a car that moves with it (:func:`_on_a_car`). ``settings`` add
    ``plate`` (its text, layout, font, colours and width), ``plate_box`` (the plate's box in frame
    0's LR pixels, the smallest holding it) and ``user_box``: that box with :data:`USER_MARGIN`
    pixels around it, inside the frame, as a user draws it."""
    rng = np.random.default_rng([seed, width])
    plate = random_plate(rng, layout=layout)
    if on_a_car:
        car, (fx, fy, fw, fh) = _on_a_car(plate, rng)
        burst = simulate_target_burst(car, background, n=n, seed=seed, side=int(round(width / fw)), **options)
        x, y, w, h = burst.settings["target_box"]
        left, top = int(np.floor(x + fx * w)), int(np.floor(y + fy * h))
        box = [left, top, int(np.ceil(x + (fx + fw) * w)) - left, int(np.ceil(y + (fy + fh) * h)) - top]
    else:
        burst = simulate_target_burst(plate.image, background, n=n, seed=seed, side=width, **options)
        box = list(burst.settings["target_box"])
    x, y, w, h = box
    height, frame_width = burst.frames.shape[1:3]
    left, top = max(0, x - USER_MARGIN), max(0, y - USER_MARGIN)
    right, bottom = min(frame_width, x + w + USER_MARGIN), min(height, y + h + USER_MARGIN)
    burst.settings["plate"] = {"text": plate.text, "layout": plate.layout, "font": plate.font,
                               "colours": plate.colours, "width": width, "on_a_car": on_a_car}
    burst.settings["plate_box"] = box
    burst.settings["user_box"] = [left, top, right - left, bottom - top]
    burst.protocol = "plate"
    return burst, plate

"""Test scenes rendered from nothing, so that the project needs no downloaded pictures."""
import cv2
import numpy as np

__all__ = ["licence_plate"]


def licence_plate(text: str = "MSR 3X14", *, width: int = 360, height: int = 210, seed: int = 0) -> np.ndarray:
    """A licence plate on a car's painted body, ``(height, width, 3)`` float32 RGB in [0, 1] (8-bit levels).

    The plate is a white field with a black border, a blue band at the left, two bolts and
    ``text`` in a thick sans-serif; the body around it is red paint with a soft reflection and
    a fine grain, so that registration has texture to lock on to everywhere.
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    reflection = 0.25 * np.exp(-(((xs - 0.3 * width) / (0.35 * width)) ** 2 + ((ys - 0.2 * height) / (0.3 * height)) ** 2))
    body = np.stack([0.55 + reflection, 0.08 + reflection, 0.1 + reflection], axis=-1)
    body += rng.normal(0, 0.015, size=(height // 3 + 1, width // 3 + 1, 1)).repeat(3, 0).repeat(3, 1)[:height, :width]
    canvas = np.round(np.clip(body, 0, 1) * 255).astype(np.uint8)  # OpenCV draws text on 8 bits only
    # the plate, about 4.7:1 like a European plate
    plate_w = int(width * 0.7)
    plate_h = int(plate_w / 4.7)
    left, top = (width - plate_w) // 2, (height - plate_h) // 2
    cv2.rectangle(canvas, (left, top), (left + plate_w, top + plate_h), (247, 247, 242), -1, cv2.LINE_AA)
    band = int(plate_h * 0.4)
    cv2.rectangle(canvas, (left, top), (left + band, top + plate_h), (13, 51, 153), -1, cv2.LINE_AA)
    cv2.putText(canvas, "D", (left + band // 5, top + int(plate_h * 0.85)), cv2.FONT_HERSHEY_SIMPLEX,
                plate_h / 90, (242, 242, 242), max(1, plate_h // 30), cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (left + plate_w, top + plate_h), (13, 13, 13), max(2, plate_h // 25),
                  cv2.LINE_AA)
    for bolt_x in (left + plate_w // 4, left + 3 * plate_w // 4):
        cv2.circle(canvas, (bolt_x, top + plate_h // 8), max(2, plate_h // 18), (153, 153, 158), -1, cv2.LINE_AA)
    font, thickness = cv2.FONT_HERSHEY_DUPLEX, max(2, plate_h // 14)
    font_scale = 1.0
    (text_w, text_h), _ = cv2.getTextSize(text, font, font_scale, thickness)
    font_scale = min((plate_w - band) * 0.88 / text_w, plate_h * 0.62 / text_h)
    (text_w, text_h), _ = cv2.getTextSize(text, font, font_scale, thickness)
    origin = (left + band + (plate_w - band - text_w) // 2, top + (plate_h + text_h) // 2)
    cv2.putText(canvas, text, origin, font, font_scale, (13, 13, 13), thickness, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0

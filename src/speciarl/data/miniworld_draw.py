"""Drawing one mini world image: a bird or a car over its domain's background, with nuisances.

Objects are described facing right in a unit box (coordinates 0..1); the pen flips, rotates and
scales those coordinates while drawing on a transparent canvas at twice the final resolution
(cheap anti-aliasing). The object is pasted at a random place over a background that matches the
placement (a branch or marsh edge under the bird's feet, a road under the car's wheels), then
come brightness jitter, pixel noise and JPEG. Everything random comes from the one numpy
Generator passed in, so an image depends only on its seed.
"""

from __future__ import annotations

import colorsys
import io
import math

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 2
# Cars tilt less than perched birds: a car on a road is rarely seen at a steep angle.
CAR_ROTATION_FACTOR = 0.4
GLASS = (205, 0.30, 0.40)
TYRE = (0, 0.0, 0.10)
RIM = (0, 0.0, 0.35)

# Bird silhouettes: body ellipse (cx, cy, rx, ry), head circle (x, y, r), beak (kind, length),
# tail (length, half width, droop in degrees), leg length, and a neck for herons.
BIRD_SHAPES = {
    "finch": dict(
        body=(0.44, 0.56, 0.22, 0.17), head=(0.66, 0.40, 0.12), beak=("cone", 0.10), tail=(0.20, 0.06, 15), legs=0.08
    ),
    "parrot": dict(
        body=(0.46, 0.48, 0.16, 0.22), head=(0.58, 0.24, 0.12), beak=("hook", 0.10), tail=(0.36, 0.05, 60), legs=0.06
    ),
    "heron": dict(
        body=(0.36, 0.42, 0.20, 0.11),
        head=(0.70, 0.14, 0.06),
        beak=("dagger", 0.20),
        tail=(0.10, 0.05, 30),
        legs=0.36,
        neck=0.05,
    ),
    "kingfisher": dict(
        body=(0.40, 0.56, 0.18, 0.15), head=(0.60, 0.38, 0.15), beak=("dagger", 0.24), tail=(0.12, 0.05, 35), legs=0.05
    ),
    "warbler": dict(
        body=(0.44, 0.56, 0.22, 0.12), head=(0.68, 0.46, 0.10), beak=("thin", 0.08), tail=(0.22, 0.045, 10), legs=0.08
    ),
}

# Car silhouettes: body outline, window panes, wheel x positions and radius, the sedan's cabin and a
# ground line at y = GROUND under the wheels.
GROUND = 0.82
CAR_SHAPES = {
    "pickup": dict(
        body=[
            (0.04, 0.72),
            (0.04, 0.48),
            (0.50, 0.48),
            (0.50, 0.29),
            (0.54, 0.26),
            (0.70, 0.26),
            (0.77, 0.46),
            (0.94, 0.49),
            (0.96, 0.56),
            (0.96, 0.72),
        ],
        windows=[[(0.56, 0.30), (0.69, 0.30), (0.735, 0.45), (0.56, 0.45)]],
        cabin=None,
        wheels=((0.22, 0.78), 0.105),
        bed=True,
    ),
    "minivan": dict(
        body=[(0.04, 0.74), (0.04, 0.28), (0.10, 0.18), (0.64, 0.18), (0.84, 0.42), (0.95, 0.47), (0.96, 0.74)],
        windows=[
            [(0.08, 0.25), (0.26, 0.25), (0.26, 0.40), (0.08, 0.40)],
            [(0.29, 0.25), (0.50, 0.25), (0.50, 0.40), (0.29, 0.40)],
            [(0.53, 0.25), (0.63, 0.25), (0.78, 0.40), (0.53, 0.40)],
        ],
        cabin=None,
        wheels=((0.20, 0.80), 0.09),
    ),
    "roadster": dict(
        body=[
            (0.05, 0.74),
            (0.05, 0.58),
            (0.12, 0.54),
            (0.40, 0.54),
            (0.46, 0.56),
            (0.62, 0.56),
            (0.80, 0.55),
            (0.95, 0.60),
            (0.96, 0.74),
        ],
        windows=[],
        cabin=None,
        wheels=((0.22, 0.78), 0.085),
        open_top=True,
    ),
    "sedan": dict(
        body=[(0.04, 0.74), (0.04, 0.52), (0.24, 0.50), (0.96, 0.53), (0.96, 0.74)],
        cabin=[(0.22, 0.51), (0.33, 0.33), (0.62, 0.33), (0.76, 0.51)],
        windows=[
            [(0.29, 0.49), (0.35, 0.40), (0.47, 0.40), (0.47, 0.49)],
            [(0.50, 0.49), (0.50, 0.40), (0.62, 0.40), (0.69, 0.49)],
        ],
        wheels=((0.22, 0.78), 0.09),
    ),
    "hatchback": dict(
        body=[(0.14, 0.74), (0.14, 0.42), (0.19, 0.38), (0.52, 0.38), (0.66, 0.52), (0.85, 0.55), (0.86, 0.74)],
        windows=[
            [(0.18, 0.42), (0.32, 0.42), (0.32, 0.51), (0.18, 0.51)],
            [(0.35, 0.42), (0.51, 0.42), (0.60, 0.51), (0.35, 0.51)],
        ],
        cabin=None,
        wheels=((0.28, 0.72), 0.09),
    ),
}


class Palette:
    """Turns (hue, saturation, value) colours into RGB with this image's colour jitter."""

    def __init__(self, rng: np.random.Generator, hue_jitter: float, hue_step: float, hue_shift: float):
        self.hue_offset = rng.normal(0.0, hue_jitter) if hue_jitter > 0 else 0.0
        self.sat_scale = rng.uniform(0.85, 1.1)
        self.val_scale = rng.uniform(0.85, 1.1)
        self.shift = hue_shift * hue_step

    def __call__(self, hsv: tuple[float, float, float], shifted: bool = False) -> tuple[int, int, int]:
        hue, sat, val = hsv
        hue = (hue + self.hue_offset + (self.shift if shifted else 0.0)) / 360.0 % 1.0
        rgb = colorsys.hsv_to_rgb(hue, min(1.0, sat * self.sat_scale), min(1.0, val * self.val_scale))
        return tuple(round(255 * c) for c in rgb)


def darker(hsv: tuple[float, float, float], factor: float = 0.7) -> tuple[float, float, float]:
    return (hsv[0], hsv[1], hsv[2] * factor)


def lighter(hsv: tuple[float, float, float], amount: float = 0.45) -> tuple[float, float, float]:
    """Towards white: less saturated, brighter (a bird's paler underside)."""
    return (hsv[0], hsv[1] * (1 - amount), hsv[2] + (1 - hsv[2]) * amount)


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float, angle: float, points: int = 24) -> list:
    """Outline of an ellipse rotated by `angle` degrees (PIL draws only axis-aligned ones)."""
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    out = []
    for i in range(points):
        t = 2 * math.pi * i / points
        x, y = rx * math.cos(t), ry * math.sin(t)
        out.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return out


class Pen:
    """Draws unit-box shapes onto a canvas, flipped and rotated about the box centre.

    Transforming the coordinates instead of rotating the drawn raster keeps edges crisp and is
    much faster than a filtered rotation of an RGBA image.
    """

    def __init__(self, image: Image.Image, box: float, angle: float, flip: bool):
        self.draw = ImageDraw.Draw(image)
        self.box = box
        self.centre = image.width / 2
        self.cos, self.sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        self.flip = flip

    def point(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = (0.5 - x if self.flip else x - 0.5), y - 0.5
        return (
            self.centre + (dx * self.cos + dy * self.sin) * self.box,
            self.centre + (dy * self.cos - dx * self.sin) * self.box,
        )

    def polygon(self, points, fill) -> None:
        self.draw.polygon([self.point(x, y) for x, y in points], fill=fill)

    def ellipse(self, cx, cy, rx, ry, fill, angle: float = 0.0) -> None:
        self.polygon(ellipse_polygon(cx, cy, rx, ry, angle), fill)

    def circle(self, cx, cy, r, fill) -> None:
        x, y = self.point(cx, cy)
        r *= self.box
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)

    def chord(self, cx, cy, r, start, end, fill, points: int = 12) -> None:
        """The part of a circle cut off by the chord between two angles (degrees, clockwise from 3 o'clock)."""
        angles = np.radians(np.linspace(start, end, points))
        self.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles], fill)

    def line(self, points, fill, width: float) -> None:
        self.draw.line(
            [self.point(x, y) for x, y in points], fill=fill, width=max(1, round(width * self.box)), joint="curve"
        )


# Birds ------------------------------------------------------------------------------------------


def draw_bird(pen: Pen, look: dict, colour: Palette, detail: float) -> None:
    shape = BIRD_SHAPES[look["shape"]]
    cx, cy, rx, ry = shape["body"]
    hx, hy, hr = shape["head"]
    body = look["body"]
    # The wings and tail carry the group's signature colour, which the hue siblings do not shift.
    wing = colour(look["wing"])
    paint = lambda hsv: colour(hsv, shifted=True)  # noqa: E731  plumage follows the class's hue shift

    # legs and feet, behind the body
    leg_colour = colour(look.get("legs", (25, 0.35, 0.35)))
    top, bottom = cy + ry * 0.8, cy + ry * 0.8 + shape["legs"]
    for x in (cx + 0.03, cx - 0.04):
        pen.line([(x, top), (x, bottom), (x + 0.05, bottom)], leg_colour, 0.018)

    # tail: a wedge from the rump, drooping
    length, half, droop = shape["tail"]
    a = math.radians(droop)
    root = (cx - rx * 0.8, cy - ry * 0.1)
    tip = (root[0] - length * math.cos(a), root[1] + length * math.sin(a))
    nx, ny = half * math.sin(a), half * math.cos(a)
    pen.polygon(
        [
            (root[0] + nx * 0.4, root[1] - ny),
            (tip[0] - nx, tip[1] - ny * 0.3),
            (tip[0] + nx, tip[1] + ny * 0.3),
            (root[0] - nx * 0.4, root[1] + ny),
        ],
        wing,
    )

    head = look.get("head", body)
    if "neck" in shape:  # a wader's head is the tip of its neck: both take the neck colour
        head = look.get("neck", body)
        pen.line([(cx + rx * 0.7, cy - ry * 0.3), (hx - 0.06, hy + 0.16), (hx, hy)], paint(head), shape["neck"] * 2)

    pen.ellipse(cx, cy, rx, ry, paint(body))
    pen.ellipse(cx + rx * 0.25, cy + ry * 0.3, rx * 0.65, ry * 0.6, paint(lighter(body)))
    pen.ellipse(cx - rx * 0.12, cy - ry * 0.15, rx * 0.72, ry * 0.48, wing, angle=-8)

    pen.circle(hx, hy, hr, paint(head))
    if look.get("mark") is not None:  # the crowned siblings' tiny crown patch
        pen.circle(hx - hr * 0.1, hy - hr * 0.62, detail / 2, colour(look["mark"]))
    pen.circle(hx + hr * 0.38, hy - hr * 0.12, max(0.016, hr * 0.16), colour((0, 0, 0.05)))

    draw_beak(pen, shape["beak"], (hx + hr * 0.85, hy + hr * 0.05), colour(look.get("beak", (30, 0.3, 0.4))))


def draw_beak(pen: Pen, beak: tuple[str, float], base: tuple[float, float], fill) -> None:
    kind, length = beak
    x, y = base
    if kind == "cone":  # short and deep: seed eaters
        pen.polygon([(x - 0.01, y - 0.045), (x + length, y + 0.005), (x - 0.01, y + 0.045)], fill)
    elif kind == "hook":
        pen.polygon(
            [
                (x - 0.02, y - 0.06),
                (x + length * 0.7, y - 0.04),
                (x + length, y + 0.03),
                (x + length * 0.6, y + 0.01),
                (x - 0.02, y + 0.05),
            ],
            fill,
        )
    elif kind == "thin":
        pen.polygon([(x - 0.01, y - 0.018), (x + length, y + 0.004), (x - 0.01, y + 0.02)], fill)
    else:  # dagger: long and straight
        pen.polygon([(x - 0.015, y - 0.03), (x + length, y + 0.01), (x - 0.015, y + 0.03)], fill)


def bird_feet_y(look: dict) -> float:
    shape = BIRD_SHAPES[look["shape"]]
    return shape["body"][1] + shape["body"][3] * 0.8 + shape["legs"]


# Cars -------------------------------------------------------------------------------------------


def draw_car(pen: Pen, look: dict, colour: Palette, detail: float) -> None:
    shape = CAR_SHAPES[look["shape"]]
    body = look["body"]
    paint = lambda hsv: colour(hsv, shifted=True)  # noqa: E731  paint follows the class's hue shift
    if shape.get("cabin"):
        pen.polygon(shape["cabin"], paint(body))
    pen.polygon(shape["body"], paint(body))
    for pane in shape["windows"]:
        pen.polygon(pane, colour(GLASS))
    trim = colour(darker(body, 0.45))
    xs = [x for x, _ in shape["body"]]
    front, rear = max(xs), min(xs)
    bottom = max(y for _, y in shape["body"])
    sill = bottom - 0.08
    # the make's signature: its lower body in the make's colour (never hue-shifted)
    pen.polygon([(rear, bottom - 0.12), (front, bottom - 0.12), (front, bottom), (rear, bottom)], colour(look["band"]))
    if "stripe" in look:  # the medium siblings' side stripe
        pen.line([(rear + 0.04, bottom - 0.17), (front - 0.04, bottom - 0.17)], colour(look["stripe"]), 0.04)
    if shape.get("bed"):  # open load bed: dark rim and a gap behind the cab
        pen.line([(0.05, 0.49), (0.49, 0.49)], trim, 0.015)
        pen.line([(0.50, 0.48), (0.50, 0.60)], trim, 0.012)
    if shape.get("open_top"):  # windscreen and a headrest instead of a roof
        pen.line([(0.60, 0.56), (0.53, 0.43)], colour(GLASS), 0.025)
        pen.polygon([(0.40, 0.55), (0.41, 0.47), (0.46, 0.47), (0.47, 0.55)], colour((0, 0, 0.15)))
    # door seam, lights
    pen.line([(0.49, sill - 0.12), (0.49, sill - 0.05)], trim, 0.008)
    pen.ellipse(front - 0.02, sill - 0.05, 0.02, 0.015, colour((50, 0.25, 1.0)))
    pen.ellipse(rear + 0.015, sill - 0.05, 0.015, 0.02, colour((0, 0.9, 0.85)))

    (x_back, x_front), radius = shape["wheels"]
    hub = colour(look.get("mark") or (0, 0.0, 0.78))
    for x in (x_back, x_front):
        y = GROUND - radius
        pen.circle(x, y, radius * 1.12, colour((0, 0, 0.05)))  # wheel arch shadow
        pen.circle(x, y, radius, colour(TYRE))
        pen.circle(x, y, radius * 0.6, colour(RIM))
        pen.circle(x, y, detail / 2, hub)  # the hub cap, coloured on the marked siblings


# Backgrounds ------------------------------------------------------------------------------------


def _gradient(size: int, top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    column = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    return np.broadcast_to(column, (size, size, 3))


def _rgb(hsv) -> tuple[float, ...]:
    return tuple(255 * c for c in colorsys.hsv_to_rgb(hsv[0] / 360 % 1.0, hsv[1], hsv[2]))


def bird_background(rng: np.random.Generator, size: int, perch_y: float, marsh: bool) -> Image.Image:
    """Sky with out-of-focus foliage; a branch (or a marsh edge for herons) at `perch_y`."""
    sky = _gradient(
        size,
        _rgb((rng.uniform(190, 220), rng.uniform(0.15, 0.5), rng.uniform(0.75, 0.95))),
        _rgb((rng.uniform(80, 140), rng.uniform(0.2, 0.5), rng.uniform(0.5, 0.8))),
    )
    # foliage: a coarse random field blown up, i.e. blurred leaves
    coarse = rng.uniform(0, 1, (5, 5, 1)).astype(np.float32)
    leaves = (
        np.asarray(
            Image.fromarray((coarse[..., 0] * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC), np.float32
        )[..., None]
        / 255.0
    )
    leaf = np.asarray(_rgb((rng.uniform(70, 140), rng.uniform(0.4, 0.7), rng.uniform(0.3, 0.6))), np.float32)
    weight = np.clip((leaves - 0.45) * 2.0, 0.0, 0.85)
    image = Image.fromarray((sky * (1 - weight) + leaf * weight).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    y = perch_y * size
    if marsh:
        water = tuple(int(c) for c in _rgb((rng.uniform(185, 210), 0.35, rng.uniform(0.45, 0.65))))
        draw.rectangle([0, y - size * 0.02, size, size], fill=water)
        for _ in range(6):
            x = rng.uniform(0, size)
            draw.line(
                [(x, size), (x + rng.uniform(-4, 4), y - size * rng.uniform(0.05, 0.2))],
                fill=(70, 100, 50),
                width=max(1, size // 80),
            )
    else:
        tilt = rng.uniform(-0.08, 0.08) * size
        bark = tuple(int(c) for c in _rgb((rng.uniform(20, 35), 0.5, rng.uniform(0.25, 0.4))))
        draw.line([(0, y - tilt), (size, y + tilt)], fill=bark, width=max(2, size // 22))
    return image


def car_background(rng: np.random.Generator, size: int, road_y: float) -> Image.Image:
    """Sky, a row of buildings, and a road whose near kerb lies under the wheels at `road_y`."""
    sky = _gradient(
        size,
        _rgb((rng.uniform(200, 230), rng.uniform(0.05, 0.4), rng.uniform(0.7, 0.95))),
        _rgb((rng.uniform(20, 45), rng.uniform(0.05, 0.3), rng.uniform(0.75, 0.95))),
    )
    image = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    horizon = road_y * size - rng.uniform(0.15, 0.3) * size
    x = -rng.uniform(0, size * 0.2)
    while x < size:
        width = rng.uniform(0.12, 0.3) * size
        height = rng.uniform(0.15, 0.5) * size
        wall = tuple(int(c) for c in _rgb((rng.uniform(0, 50), rng.uniform(0.0, 0.25), rng.uniform(0.35, 0.7))))
        draw.rectangle([x, horizon - height, x + width, horizon], fill=wall)
        pane = tuple(int(c * 0.7) for c in wall)
        step = max(3.0, size / 18)
        for wx in np.arange(x + step * 0.4, x + width - step * 0.5, step):  # window columns
            draw.rectangle([wx, horizon - height + step * 0.5, wx + step * 0.4, horizon - step * 0.5], fill=pane)
        for wy in np.arange(horizon - height + step, horizon - step * 0.5, step):  # floors between them
            draw.rectangle([x, wy, x + width, wy + step * 0.45], fill=wall)
        x += width + rng.uniform(0, 0.05) * size
    asphalt = int(rng.uniform(60, 100))
    draw.rectangle([0, horizon, size, size], fill=(asphalt, asphalt, asphalt + 4))
    draw.line([(0, horizon), (size, horizon)], fill=(170, 170, 165), width=max(1, size // 60))
    lane = road_y * size + size * 0.04
    offset = rng.uniform(0, size * 0.25)
    for start in np.arange(-offset, size, size * 0.25):
        draw.line([(start, lane), (start + size * 0.12, lane)], fill=(225, 215, 160), width=max(1, size // 70))
    return image


# One image --------------------------------------------------------------------------------------


def render_image(kind: str, look: dict, settings: dict, rng: np.random.Generator) -> bytes:
    """JPEG bytes of one image of a class. `settings` holds the MiniWorldParams values."""
    size = settings["image_size"]
    detail = settings["hard_detail"]
    colour = Palette(rng, settings["color_jitter"], settings["hue_step"], look.get("hue_shift", 0.0))

    box = rng.uniform(settings["scale_min"], settings["scale_max"]) * size * SUPERSAMPLE
    rotation = settings["max_rotation"] * (1.0 if kind == "bird" else CAR_ROTATION_FACTOR)
    angle = rng.uniform(-rotation, rotation)
    flip = bool(rng.uniform() < 0.5)
    # room for the box at any angle; cropped to the drawn object below
    side = math.ceil(box * 1.42) + 2
    side += side % SUPERSAMPLE
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    pen = Pen(canvas, box, angle, flip)
    if kind == "bird":
        draw_bird(pen, look, colour, detail)
        anchor_y = pen.point(0.5, bird_feet_y(look))[1]
    else:
        draw_car(pen, look, colour, detail)
        anchor_y = pen.point(0.5, GROUND)[1]
    canvas = canvas.reduce(SUPERSAMPLE)
    anchor_y /= SUPERSAMPLE
    left, top, right, bottom = canvas.getchannel("A").getbbox() or (0, 0, canvas.width, canvas.height)
    canvas = canvas.crop((left, top, right, bottom))
    anchor_y -= top
    if canvas.width > size or canvas.height > size:
        shrink = size / max(canvas.width, canvas.height)
        canvas = canvas.resize((max(1, int(canvas.width * shrink)), max(1, int(canvas.height * shrink))), Image.BOX)
        anchor_y *= shrink
    x = int(rng.integers(0, size - canvas.width + 1))
    y = int(rng.integers(0, size - canvas.height + 1))
    ground = min(0.98, (y + anchor_y) / size)

    if kind == "bird":
        image = bird_background(rng, size, ground, marsh=look["shape"] == "heron")
    else:
        image = car_background(rng, size, ground)
    image.paste(canvas, (x, y), canvas)

    pixels = np.asarray(image, np.float32) * rng.uniform(0.85, 1.15)
    if settings["noise"] > 0:
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * settings["noise"]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    # 4:4:4 chroma: JPEG's default 2x colour subsampling would erase the hard groups' marks
    image.save(out, format="JPEG", quality=settings["jpeg_quality"], subsampling=0)
    return out.getvalue()

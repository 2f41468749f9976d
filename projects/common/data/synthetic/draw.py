"""The pixels of the synthetic images: an outline per shape class, cluttered backgrounds, shapes
painted with their class's colour, texture and a lighting ramp, sensor noise. Every random
choice comes from the generator passed in, in a fixed order: changing the order changes the
generated images (bump ``GENERATOR_VERSION``)."""

import dataclasses
import math
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from .spec import SHAPE_STYLES

HUE_JITTER = 7  # per-instance hue deviation; classes are 22 hue steps apart, so ranges never meet


@dataclasses.dataclass
class Shape:
    """One shape placed in an image: its full (amodal) mask and where that mask lies."""

    class_index: int
    center: np.ndarray  # (x, y)
    radius: float
    mask: np.ndarray  # bool (H, W)
    region: Tuple[slice, slice]  # rows, columns that contain the mask
    area: int


def _unit_circle(points=48):
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _regular_polygon(corners, rng, radius_jitter=0.0, angle_jitter=0.0):
    angles = (
        np.pi / 2
        + np.arange(corners) * 2 * np.pi / corners
        + rng.uniform(-angle_jitter, angle_jitter, corners)
    )
    radii = rng.uniform(1.0 - radius_jitter, 1.0, corners)
    return radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _circle_outline(rng):
    return _unit_circle() * [1.0, rng.uniform(0.85, 1.0)], []


def _ring_outline(rng):
    return _unit_circle(), [_unit_circle() * rng.uniform(0.5, 0.65)]


def _square_outline(rng):
    aspect = rng.uniform(0.85, 1.0)
    corners = np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]])
    return corners / math.hypot(1.0, aspect), []


def _triangle_outline(rng):
    return _regular_polygon(3, rng, radius_jitter=0.1, angle_jitter=0.1), []


def _star_outline(rng):
    radii = np.tile([1.0, rng.uniform(0.38, 0.5)], 5)
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    return radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1), []


def _cross_outline(rng):
    half_width = rng.uniform(0.22, 0.32)  # of an arm
    quarter = np.array([[half_width, 1], [half_width, half_width], [1, half_width]])
    outline = np.concatenate(
        [quarter @ np.array([[c, -s], [s, c]]).T for c, s in ((1, 0), (0, -1), (-1, 0), (0, 1))]
    )
    return outline / math.hypot(1.0, half_width), []


def _hexagon_outline(rng):
    return _regular_polygon(6, rng, radius_jitter=0.07), []


def _diamond_outline(rng):
    half_width = rng.uniform(0.5, 0.65)
    return np.array([[0, 1], [half_width, 0], [0, -1], [-half_width, 0]]), []


_OUTLINES: Dict[str, Callable] = {
    # class name -> rng -> (filled polygon, hole polygons), inside the unit circle
    "circle": _circle_outline,
    "square": _square_outline,
    "triangle": _triangle_outline,
    "star": _star_outline,
    "ring": _ring_outline,
    "cross": _cross_outline,
    "hexagon": _hexagon_outline,
    "diamond": _diamond_outline,
}


def _to_fixed_point(points: np.ndarray) -> np.ndarray:
    """Sub-pixel polygon coordinates for OpenCV drawing with ``shift=4``."""
    return np.round(points * 16).astype(np.int32)


def make_shape(class_name, class_index, center, radius, height, width, rng) -> Shape:
    """Jittered, rotated shape of one class; it lies fully inside the image."""
    outline, holes = _OUTLINES[class_name](rng)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [_to_fixed_point(outline @ rotation.T * radius + center)], 1, cv2.LINE_8, shift=4)
    for hole in holes:
        cv2.fillPoly(mask, [_to_fixed_point(hole @ rotation.T * radius + center)], 0, cv2.LINE_8, shift=4)
    x0, y0 = np.maximum(np.floor(center - radius).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(center + radius).astype(int) + 2, [width, height])
    mask = mask.astype(bool)
    return Shape(class_index, center, radius, mask, (slice(y0, y1), slice(x0, x1)), int(mask.sum()))


def clamp_center(center, radius, height, width) -> np.ndarray:
    return np.clip(center, radius, [width - 1 - radius, height - 1 - radius])


def _hsv_colour(hue, saturation, value) -> np.ndarray:
    hsv = np.array([[[hue % 180, saturation, value]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def cluttered_background(height, width, rng) -> np.ndarray:
    """Low-saturation gradient with low-contrast blobs and lines: texture to learn to ignore."""
    start, end = (
        _hsv_colour(rng.uniform(0, 180), rng.uniform(0, 60), rng.uniform(70, 200)) for _ in range(2)
    )
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.arange(width, dtype=np.float32) * math.cos(angle))[None, :] + (
        np.arange(height, dtype=np.float32) * math.sin(angle)
    )[:, None]
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    image = cv2.merge([float(a) + float(b - a) * ramp for a, b in zip(start, end)])  # fast (H, W, 3)
    mean = (start + end) / 2
    for _ in range(rng.integers(2, 6)):
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        wobble = 1 + 0.2 * np.sin(angles * rng.integers(2, 4) + rng.uniform(0, 2 * np.pi))  # amoeba, not star
        radii = rng.uniform(0.05, 0.25) * min(height, width) * wobble * rng.uniform(0.8, 1.2, 24)
        center = rng.uniform([0, 0], [width, height])
        blob = center + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        colour = (mean + rng.normal(0, 15, 3)).tolist()
        cv2.fillPoly(image, [_to_fixed_point(blob)], colour, cv2.LINE_AA, shift=4)
    for _ in range(rng.integers(3, 9)):
        start_point, end_point = _to_fixed_point(rng.uniform([0, 0], [width, height], (2, 2)))
        colour = (mean + rng.normal(0, 18, 3)).tolist()
        cv2.line(
            image,
            tuple(map(int, start_point)),
            tuple(map(int, end_point)),
            colour,
            int(rng.integers(1, 4)),
            cv2.LINE_AA,
            shift=4,
        )
    return cv2.GaussianBlur(image, (0, 0), 0.8)


def _texture(kind: str, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Where the secondary colour goes, in object coordinates (u, v) rotated with the texture."""
    if kind == "solid":
        return np.zeros(u.shape, bool)
    if kind == "stripes":
        return (u / period) % 1.0 < 0.5
    if kind == "checker":
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 1
    if kind == "dots":
        return ((u % period) - period / 2) ** 2 + ((v % period) - period / 2) ** 2 < (0.3 * period) ** 2
    raise ValueError(f"unknown texture {kind!r}")


def paint(image: np.ndarray, shape: Shape, class_name: str, rng) -> None:
    """Paint the shape's full mask with its class colour range, texture and a lighting ramp."""
    hue, texture = SHAPE_STYLES[class_name]
    primary = _hsv_colour(
        hue + rng.uniform(-HUE_JITTER, HUE_JITTER), rng.uniform(140, 255), rng.uniform(140, 255)
    )
    secondary = primary * rng.uniform(0.45, 0.7)
    rows, columns = shape.region
    ys, xs = np.mgrid[rows, columns].astype(np.float32)
    dx, dy = xs - shape.center[0], ys - shape.center[1]
    texture_angle, light_angle = rng.uniform(0, 2 * np.pi, 2)
    u = dx * np.cos(texture_angle) + dy * np.sin(texture_angle) + rng.uniform(0, 100)
    v = -dx * np.sin(texture_angle) + dy * np.cos(texture_angle) + rng.uniform(0, 100)
    period = max(3.0, shape.radius * rng.uniform(0.35, 0.6))
    colour = np.where(_texture(texture, u, v, period)[..., None], secondary, primary)
    lighting = 1 + 0.18 * (dx * np.cos(light_angle) + dy * np.sin(light_angle)) / shape.radius
    mask = shape.mask[rows, columns]
    image[rows, columns][mask] = (colour * lighting[..., None])[mask]


def add_noise_and_quantise(image: np.ndarray, rng) -> np.ndarray:
    """Sensor-like brightness noise (shared by the channels, which keeps generation fast)."""
    noise = rng.standard_normal(image.shape[:2], dtype=np.float32) * np.float32(
        rng.uniform(2, 8)
    ) + np.float32(0.5)
    image = cv2.add(image, cv2.merge([noise] * image.shape[2]))
    return np.clip(image, 0, 255, out=image).astype(np.uint8)

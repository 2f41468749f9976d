"""
Deterministic synthetic "shapes" data, the default data of every project (nothing to download).

Detection images show several textured shapes of distinct classes on cluttered backgrounds, with
small objects and controllable overlap; a classification split shows one dominant shape per
image. One dataset folder holds every format the projects read::

    <dataset_dir>/                      e.g. <DETECTRON2_DATASETS>/synthetic_shapes_v2
        JPEGImages/{train,val}_NNNNNN.jpg       all detection images
        Annotations/{train,val}_NNNNNN.xml      Pascal VOC boxes (detectron2's load_voc_instances)
        ImageSets/Main/{train,val}.txt          VOC file ids (= image file stems)
        annotations/instances_{train,val}.json  COCO boxes + polygon masks (load_coco_json)
        classification/{train,val}/<class>/<class>_NNNNN.jpg   ImageNet folder layout
        classification/instances_{train,val}.json  COCO boxes of the classification images
        VERSION.json                            {"generator_version": ..., "spec": {...}}

Occlusion: instances are painted in order, each over the earlier ones. Annotations describe the
*visible* part of each instance (box, area, polygons); an instance with fewer than
``spec.min_visible_area`` visible pixels (or none that forms a polygon) is removed from the
scene entirely, so no unannotated fragment is left in the image. Each COCO image entry also has
``occlusion_ratio`` = (sum over instance pairs of the overlap of their full shapes) / (sum of the
full-shape areas): a statistic of how the generator placed the shapes. The occlusion ratio the
evaluator buckets images by (paper 002, Eq. 5) is measured on the ground-truth boxes instead, by
``projects.common.evaluation.box_occlusion_ratio``.

Everything is a pure function of the spec: each image draws from a random generator seeded by
(spec.seed, split, index), so the same spec always gives identical files.
"""

import dataclasses
import fcntl
import glob
import json
import math
import os
import shutil
import xml.etree.ElementTree as ET
import zlib
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

GENERATOR_VERSION = 2
"""Bump whenever the files generated for a given spec change: the version is part of the dataset
folder name and of VERSION.json, so data made by an older generator is never loaded as new.
Version 2 added the classification images' boxes (their pixels are those of version 1)."""

SPLITS = ("train", "val")
IMAGE_DIR = "JPEGImages"
CLASSIFICATION_DIR = "classification"
VERSION_FILE = "VERSION.json"
JPEG_QUALITY = 92

SHAPE_STYLES: Dict[str, Tuple[int, str]] = {
    # class name: (OpenCV hue in 0..179, texture); each class also has its own outline below
    "circle": (0, "solid"),
    "square": (22, "stripes"),
    "triangle": (45, "dots"),
    "star": (67, "checker"),
    "ring": (90, "solid"),
    "cross": (112, "stripes"),
    "hexagon": (135, "checker"),
    "diamond": (157, "dots"),
}
SHAPE_CLASSES = tuple(SHAPE_STYLES)
HUE_JITTER = 7  # per-instance hue deviation; classes are 22 hue steps apart, so ranges never meet
MAX_PLACEMENT_ATTEMPTS = 20


class SpecMismatchError(RuntimeError):
    """A dataset folder exists but was generated from another spec or generator version."""


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """
    Everything that determines a synthetic dataset; equal specs give byte-identical files.

    Sizes are diameters, in pixels, of the circle that encloses an object, sampled log-uniformly
    so that small objects (< 32 px) are common. Overlap is controlled by ``overlap_probability``
    (chance that an instance is placed onto an earlier one rather than anywhere) and capped by
    ``max_occlusion`` (largest fraction of an instance's shape that later instances may cover;
    0 forbids any overlap). Instances with fewer than ``min_visible_area`` visible pixels are
    removed from the scene. Classification images are ``classification_image_size`` squares
    with one dominant shape and up to ``max_distractors`` smaller shapes of other classes.
    """

    num_train_images: int = 400
    num_val_images: int = 100
    image_height: int = 256
    image_width: int = 256
    class_names: Tuple[str, ...] = SHAPE_CLASSES
    object_size_range: Tuple[int, int] = (12, 180)
    instances_per_image_range: Tuple[int, int] = (1, 6)
    overlap_probability: float = 0.3
    max_occlusion: float = 0.5
    min_visible_area: int = 20
    classification_image_size: int = 128
    classification_train_per_class: int = 60
    classification_val_per_class: int = 20
    max_distractors: int = 2
    seed: int = 0

    def __post_init__(self):
        # JSON and command lines give lists; keep the spec hashable and comparable
        for field in ("class_names", "object_size_range", "instances_per_image_range"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        self._validate()

    def _validate(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{field.name}={value!r} must be an int")
            if field.type is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{field.name}={value!r} must be a number")
        unknown = [name for name in self.class_names if name not in SHAPE_STYLES]
        if not self.class_names or unknown or len(set(self.class_names)) != len(self.class_names):
            raise ValueError(
                f"class_names={self.class_names!r} must be distinct names out of {SHAPE_CLASSES} "
                f"(unknown: {unknown})"
            )
        for field in (
            "num_train_images",
            "num_val_images",
            "classification_train_per_class",
            "classification_val_per_class",
            "max_distractors",
            "min_visible_area",
        ):
            if getattr(self, field) < 0:
                raise ValueError(f"{field}={getattr(self, field)} must be >= 0")
        smallest_side = min(self.image_height, self.image_width)
        min_size, max_size = self.object_size_range
        if not 4 <= min_size <= max_size <= smallest_side - 1:
            raise ValueError(
                f"object_size_range={self.object_size_range} must satisfy 4 <= min <= max <= "
                f"min(image_height, image_width) - 1 = {smallest_side - 1}"
            )
        min_count, max_count = self.instances_per_image_range
        if not 1 <= min_count <= max_count:
            raise ValueError(
                f"instances_per_image_range={self.instances_per_image_range} must satisfy 1 <= min <= max"
            )
        for field in ("overlap_probability", "max_occlusion"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"{field}={getattr(self, field)} must be within [0, 1]")
        if self.classification_image_size < 16:
            raise ValueError(f"classification_image_size={self.classification_image_size} must be >= 16")

    def to_dict(self) -> dict:
        """JSON-ready form (tuples become lists), the inverse of ``from_dict``."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> "SyntheticSpec":
        """Build a spec from ``to_dict()`` output or JSON; unknown keys are an error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown SyntheticSpec fields {unknown}; valid fields: {sorted(known)}")
        return cls(**values)


PRESETS: Dict[str, SyntheticSpec] = {
    "synthetic_shapes": SyntheticSpec(),
    # crowded scenes for occlusion studies: more instances, most of them placed onto others
    "synthetic_shapes_occluded": SyntheticSpec(
        instances_per_image_range=(3, 8), overlap_probability=0.8, max_occlusion=0.75, seed=1
    ),
}
DEFAULT_PRESET = "synthetic_shapes"


def synthetic_dataset_dir(root: str, prefix: str) -> str:
    """Folder of a synthetic dataset: the generator version is part of the name."""
    return os.path.join(root, f"{prefix}_v{GENERATOR_VERSION}")


def coco_json_path(dataset_dir: str, split: str) -> str:
    return os.path.join(dataset_dir, "annotations", f"instances_{split}.json")


def classification_json_path(dataset_dir: str, split: str) -> str:
    """COCO boxes of the classification images (file names relative to classification/<split>)."""
    return os.path.join(dataset_dir, CLASSIFICATION_DIR, f"instances_{split}.json")


# ---------------------------------------------------------------------------------------------
# Drawing


@dataclasses.dataclass
class _Shape:
    """One shape placed in an image: its full (amodal) mask and where that mask lies."""

    class_index: int
    center: np.ndarray  # (x, y)
    radius: float
    mask: np.ndarray  # bool (H, W)
    region: Tuple[slice, slice]  # rows, columns that contain the mask
    area: int


@dataclasses.dataclass
class RenderedInstance:
    """Annotation of one instance: its visible part, in COCO conventions."""

    class_index: int
    amodal_mask: np.ndarray  # bool (H, W), the full shape
    visible_mask: np.ndarray  # bool (H, W), the part not covered by later-drawn instances
    bbox: Tuple[int, int, int, int]  # x, y, width, height of the visible mask
    area: int  # visible pixels
    polygons: List[List[float]]  # COCO polygons of the visible mask


@dataclasses.dataclass
class RenderedImage:
    image: np.ndarray  # uint8 BGR (H, W, 3)
    instances: List[RenderedInstance]  # in painting order
    occlusion_ratio: float


def _rng(seed: int, stream: str, *indices: int) -> np.random.Generator:
    """Independent generator per image, so images do not depend on each other or on order."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), *indices])


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


def _make_shape(class_name, class_index, center, radius, height, width, rng) -> _Shape:
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
    return _Shape(class_index, center, radius, mask, (slice(y0, y1), slice(x0, x1)), int(mask.sum()))


def _clamp_center(center, radius, height, width) -> np.ndarray:
    return np.clip(center, radius, [width - 1 - radius, height - 1 - radius])


def _hsv_colour(hue, saturation, value) -> np.ndarray:
    hsv = np.array([[[hue % 180, saturation, value]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _cluttered_background(height, width, rng) -> np.ndarray:
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


def _paint(image: np.ndarray, shape: _Shape, class_name: str, rng) -> None:
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


def _add_noise_and_quantise(image: np.ndarray, rng) -> np.ndarray:
    """Sensor-like brightness noise (shared by the channels, which keeps generation fast)."""
    noise = rng.standard_normal(image.shape[:2], dtype=np.float32) * np.float32(
        rng.uniform(2, 8)
    ) + np.float32(0.5)
    image = cv2.add(image, cv2.merge([noise] * image.shape[2]))
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Detection scenes


def _overlap_area(shape: _Shape, other: _Shape) -> int:
    rows = slice(
        max(shape.region[0].start, other.region[0].start), min(shape.region[0].stop, other.region[0].stop)
    )
    columns = slice(
        max(shape.region[1].start, other.region[1].start), min(shape.region[1].stop, other.region[1].stop)
    )
    if rows.start >= rows.stop or columns.start >= columns.stop:
        return 0
    return int(np.count_nonzero(shape.mask[rows, columns] & other.mask[rows, columns]))


def _place_shapes(spec: SyntheticSpec, rng) -> List[_Shape]:
    """
    Sample instances in painting order. A candidate is rejected (and re-sampled, up to
    MAX_PLACEMENT_ATTEMPTS times, then skipped) if it would leave any earlier instance with more
    than ``spec.max_occlusion`` of its area covered.
    """
    height, width = spec.image_height, spec.image_width
    log_min_size, log_max_size = np.log(spec.object_size_range)
    shapes: List[_Shape] = []
    covered_masks: List[np.ndarray] = []  # per placed shape: its pixels under later shapes
    for _ in range(rng.integers(spec.instances_per_image_range[0], spec.instances_per_image_range[1] + 1)):
        class_index = int(rng.integers(len(spec.class_names)))
        for _attempt in range(MAX_PLACEMENT_ATTEMPTS):
            radius = np.exp(rng.uniform(log_min_size, log_max_size)) / 2
            if shapes and rng.random() < spec.overlap_probability:
                anchor = shapes[rng.integers(len(shapes))]
                direction = rng.uniform(0, 2 * np.pi)
                distance = (anchor.radius + radius) * rng.uniform(0.2, 0.8)
                center = anchor.center + distance * np.array([np.cos(direction), np.sin(direction)])
            else:
                center = rng.uniform([0, 0], [width, height])
            center = _clamp_center(center, radius, height, width)
            candidate = _make_shape(
                spec.class_names[class_index], class_index, center, radius, height, width, rng
            )
            newly_covered = [
                candidate.mask & shape.mask & ~covered for shape, covered in zip(shapes, covered_masks)
            ]
            if all(
                np.count_nonzero(covered | new) <= spec.max_occlusion * shape.area
                for shape, covered, new in zip(shapes, covered_masks, newly_covered)
            ):
                for covered, new in zip(covered_masks, newly_covered):
                    covered |= new
                shapes.append(candidate)
                covered_masks.append(np.zeros((height, width), bool))
                break
    return shapes


def _join_hole(outline: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Splice a hole into its outer contour through a zero-width cut at their closest points."""
    distances = ((outline[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
    outer_index, hole_index = np.unravel_index(np.argmin(distances), distances.shape)
    return np.concatenate(
        [outline[: outer_index + 1], hole[hole_index:], hole[: hole_index + 1], outline[outer_index:]]
    )


POLYGON_UPSAMPLING = 2  # contours are traced on the mask upsampled this much ...
POLYGON_TOLERANCE = 0.5  # ... and simplified by this many upsampled pixels (1/4 pixel)


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """
    COCO polygons (flat x, y lists) of a binary mask that rasterise back to the same pixels:
    contours are traced on the mask upsampled 2x, so they run 1/4 pixel inside the pixel edges
    (OpenCV's contours on the mask itself pass through boundary pixel centres, which loses half
    a pixel all around and a fifth of a small object's area). COCO polygons cannot have holes,
    so each hole is spliced into its outer contour ("keyhole"). Pieces under 3 points are dropped.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return []
    offset = np.array([xs.min() - 1, ys.min() - 1])  # crop to the mask with a 1-pixel empty border
    crop = np.pad(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8), 1)
    scale = POLYGON_UPSAMPLING
    upsampled = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(upsampled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    contours = [cv2.approxPolyDP(contour, POLYGON_TOLERANCE, True)[:, 0, :] for contour in contours]
    hierarchy = hierarchy[0]  # per contour: next, previous, first child, parent
    polygons = []
    for index, outline in enumerate(contours):
        if hierarchy[index][3] != -1:
            continue  # a hole, spliced into its parent below
        child = hierarchy[index][2]
        while child != -1:
            if len(contours[child]) >= 3:
                outline = _join_hole(outline, contours[child])
            child = hierarchy[child][0]
        if len(outline) >= 3:
            polygons.append(((outline + 0.5) / scale + offset).ravel().tolist())
    return polygons


def _visible_masks(shapes: List[_Shape]) -> List[np.ndarray]:
    """Visible part of each shape: what no later-painted shape covers."""
    if not shapes:
        return []
    visible, on_top = [], np.zeros_like(shapes[0].mask)
    for shape in reversed(shapes):
        visible.append(shape.mask & ~on_top)
        on_top = on_top | shape.mask
    return visible[::-1]


def _visible_instance(
    shape: _Shape, visible: np.ndarray, min_visible_area: int
) -> Optional[RenderedInstance]:
    """Annotation of the visible part of a shape, or None if too little of it is visible."""
    area = int(visible.sum())
    polygons = mask_to_polygons(visible) if area >= min_visible_area else []
    if not polygons:
        return None
    ys, xs = np.nonzero(visible)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    return RenderedInstance(shape.class_index, shape.mask, visible, bbox, area, polygons)


def _remove_hidden(
    shapes: List[_Shape], min_visible_area: int
) -> Tuple[List[_Shape], List[RenderedInstance]]:
    """
    Drop shapes with too little visible area (or no polygon) from the scene and annotate the
    rest; repeated because removing a shape uncovers the ones below it.
    """
    while True:
        instances = [
            _visible_instance(shape, visible, min_visible_area)
            for shape, visible in zip(shapes, _visible_masks(shapes))
        ]
        if all(instance is not None for instance in instances):
            return shapes, instances
        shapes = [shape for shape, instance in zip(shapes, instances) if instance is not None]


def _occlusion_ratio(shapes: List[_Shape]) -> float:
    """Sum of pairwise overlaps of the full shapes over the sum of their areas (a placement
    statistic; see the module docstring for the evaluator's box-based ratio)."""
    total_area = sum(shape.area for shape in shapes)
    if total_area == 0:
        return 0.0
    overlap = sum(_overlap_area(a, b) for i, a in enumerate(shapes) for b in shapes[i + 1 :])
    return overlap / total_area


def render_detection_image(spec: SyntheticSpec, split: str, index: int) -> RenderedImage:
    """Image ``index`` of detection split ``split``, with its annotations; a pure function."""
    rng = _rng(spec.seed, split, index)
    image = _cluttered_background(spec.image_height, spec.image_width, rng)
    shapes, instances = _remove_hidden(_place_shapes(spec, rng), spec.min_visible_area)
    for shape in shapes:
        _paint(image, shape, spec.class_names[shape.class_index], rng)
    return RenderedImage(_add_noise_and_quantise(image, rng), instances, _occlusion_ratio(shapes))


def render_classification_image(spec: SyntheticSpec, split: str, class_index: int, index: int) -> RenderedImage:
    """
    One dominant shape of class ``class_index`` over clutter and smaller shapes of other classes.

    The instances annotate what is visible of every shape (the dominant one, painted last, is
    always whole); classification ignores them, weakly supervised localisation is scored on them.
    """
    rng = _rng(spec.seed, f"{CLASSIFICATION_DIR}/{split}", class_index, index)
    size = spec.classification_image_size
    image = _cluttered_background(size, size, rng)
    other_classes = [i for i in range(len(spec.class_names)) if i != class_index]
    objects = []
    if other_classes:
        for _ in range(rng.integers(0, spec.max_distractors + 1)):
            radius = size * rng.uniform(0.08, 0.16)
            objects.append((other_classes[rng.integers(len(other_classes))], rng.uniform(0, size, 2), radius))
    objects.append(
        (class_index, size / 2 + rng.uniform(-0.08, 0.08, 2) * size, size * rng.uniform(0.25, 0.42))
    )
    shapes = []
    for object_class, center, radius in objects:  # the dominant shape last, on top
        name = spec.class_names[object_class]
        shape = _make_shape(
            name, object_class, _clamp_center(center, radius, size, size), radius, size, size, rng
        )
        _paint(image, shape, name, rng)
        shapes.append(shape)
    instances = [
        instance
        for shape, visible in zip(shapes, _visible_masks(shapes))
        if (instance := _visible_instance(shape, visible, min_visible_area=1)) is not None
    ]
    return RenderedImage(_add_noise_and_quantise(image, rng), instances, _occlusion_ratio(shapes))


# ---------------------------------------------------------------------------------------------
# Writing


def _voc_xml(file_name: str, spec: SyntheticSpec, instances: List[RenderedInstance]) -> bytes:
    """VOC annotation; boxes are 1-based inclusive pixel indices, as in the VOC devkit."""
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = IMAGE_DIR
    ET.SubElement(annotation, "filename").text = file_name
    size = ET.SubElement(annotation, "size")
    for tag, value in (("width", spec.image_width), ("height", spec.image_height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(annotation, "segmented").text = "0"
    for instance in instances:
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = spec.class_names[instance.class_index]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        x, y, w, h = instance.bbox
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="utf-8") + b"\n"


def _write_jpeg(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write image {path}")


def _coco_annotations(instances: List[RenderedInstance], image_id: int, first_id: int) -> List[dict]:
    return [
        {
            "id": first_id + offset,
            "image_id": image_id,
            "category_id": instance.class_index + 1,
            # float boxes: detectron2 transforms int boxes in place and would truncate them
            "bbox": [float(value) for value in instance.bbox],
            "area": instance.area,
            "segmentation": instance.polygons,
            "iscrowd": 0,
        }
        for offset, instance in enumerate(instances)
    ]


def _write_coco_json(path, description, split, images, annotations, spec: SyntheticSpec) -> None:
    coco = {
        "info": {"description": f"{description}, generator v{GENERATOR_VERSION}", "split": split},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(spec.class_names)
        ],
    }
    with open(path, "w") as f:
        json.dump(coco, f, separators=(",", ":"))


def _write_detection_split(
    spec: SyntheticSpec, out_dir: str, split: str, first_image_id: int, progress
) -> None:
    images, annotations, file_ids = [], [], []
    for index in range(spec.num_train_images if split == "train" else spec.num_val_images):
        rendered = render_detection_image(spec, split, index)
        file_id = f"{split}_{index:06d}"
        file_name = f"{file_id}.jpg"
        _write_jpeg(os.path.join(out_dir, IMAGE_DIR, file_name), rendered.image)
        with open(os.path.join(out_dir, "Annotations", f"{file_id}.xml"), "wb") as f:
            f.write(_voc_xml(file_name, spec, rendered.instances))
        image_id = first_image_id + index
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "height": spec.image_height,
                "width": spec.image_width,
                "occlusion_ratio": round(rendered.occlusion_ratio, 6),
            }
        )
        annotations += _coco_annotations(rendered.instances, image_id, first_id=len(annotations) + 1)
        file_ids.append(file_id)
        progress.update()
    with open(os.path.join(out_dir, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("".join(f"{file_id}\n" for file_id in file_ids))
    _write_coco_json(coco_json_path(out_dir, split), "synthetic shapes", split, images, annotations, spec)


def _write_classification_split(spec: SyntheticSpec, out_dir: str, split: str, progress) -> None:
    """Images in ImageNet folder layout, and their boxes in ``classification/instances_<split>.json``
    (COCO; ``file_name`` relative to ``classification/<split>``)."""
    per_class = spec.classification_train_per_class if split == "train" else spec.classification_val_per_class
    images, annotations = [], []
    for class_index, name in enumerate(spec.class_names):
        class_dir = os.path.join(out_dir, CLASSIFICATION_DIR, split, name)
        os.makedirs(class_dir)
        for index in range(per_class):
            rendered = render_classification_image(spec, split, class_index, index)
            file_name = f"{name}/{name}_{index:05d}.jpg"
            _write_jpeg(os.path.join(out_dir, CLASSIFICATION_DIR, split, file_name), rendered.image)
            image_id = len(images) + 1
            size = spec.classification_image_size
            images.append({"id": image_id, "file_name": file_name, "height": size, "width": size, "class_id": class_index})
            annotations += _coco_annotations(rendered.instances, image_id, first_id=len(annotations) + 1)
            progress.update()
    _write_coco_json(classification_json_path(out_dir, split), "synthetic shapes classification", split,
                     images, annotations, spec)


def _version_stamp(spec: SyntheticSpec) -> dict:
    return {"generator_version": GENERATOR_VERSION, "spec": spec.to_dict()}


def _generate_into(spec: SyntheticSpec, out_dir: str, name: str) -> None:
    """Write the whole dataset into the new folder ``out_dir`` (not atomic: see ensure_generated)."""
    for sub_dir in (IMAGE_DIR, "Annotations", os.path.join("ImageSets", "Main"), "annotations"):
        os.makedirs(os.path.join(out_dir, sub_dir))
    num_classification = len(spec.class_names) * (
        spec.classification_train_per_class + spec.classification_val_per_class
    )
    total = spec.num_train_images + spec.num_val_images + num_classification
    with tqdm(total=total, desc=f"Generating {name}", unit="img") as progress:
        _write_detection_split(spec, out_dir, "train", 1, progress)
        _write_detection_split(spec, out_dir, "val", spec.num_train_images + 1, progress)
        for split in SPLITS:
            _write_classification_split(spec, out_dir, split, progress)
    with open(os.path.join(out_dir, VERSION_FILE), "w") as f:  # last: marks the folder complete
        json.dump(_version_stamp(spec), f, indent=2, sort_keys=True)
        f.write("\n")


def _check_version_stamp(spec: SyntheticSpec, dataset_dir: str) -> None:
    """Raise SpecMismatchError unless ``dataset_dir`` was generated from exactly ``spec``."""
    fix = (
        f"Delete {dataset_dir}, regenerate it with `python tools/generate_synthetic_data.py "
        f"--root {os.path.dirname(os.path.abspath(dataset_dir))} --overwrite` (plus the same --preset "
        "and --set overrides), or put the other spec in another folder (another prefix for "
        "register_synthetic_dataset, --name for that tool)."
    )
    try:
        with open(os.path.join(dataset_dir, VERSION_FILE)) as f:
            found = json.load(f)
    except (OSError, ValueError) as err:
        raise SpecMismatchError(
            f"{dataset_dir} exists but its {VERSION_FILE} is missing or unreadable ({err}), so it was "
            f"not made by this generator. {fix}"
        ) from err
    expected = _version_stamp(spec)
    if found == expected:
        return
    found = found if isinstance(found, dict) else {}
    found_spec = found.get("spec") if isinstance(found.get("spec"), dict) else {}
    differences = {
        key: {"on disk": found_spec.get(key), "requested": value}
        for key, value in expected["spec"].items()
        if found_spec.get(key) != value
    }
    raise SpecMismatchError(
        f"{dataset_dir} holds data of generator version {found.get('generator_version')} (requested: "
        f"{GENERATOR_VERSION}) with spec differences {json.dumps(differences)}. {fix}"
    )


@contextmanager
def _exclusive_lock(lock_path: str):
    """Inter-process lock (e.g. between DDP ranks) held while a dataset folder is created."""
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def ensure_generated(spec: SyntheticSpec, dataset_dir: str, overwrite: bool = False) -> str:
    """
    Make sure ``dataset_dir`` holds the dataset of ``spec``; return ``dataset_dir``.

    Generation writes into a temporary sibling folder that is renamed into place only when
    complete, so an interrupted run never leaves a dataset that loads. A file lock next to the
    folder makes concurrent callers (processes) generate once; the others wait and reuse it.
    An existing folder from another spec raises SpecMismatchError unless ``overwrite`` is set,
    in which case it is replaced (also atomically).
    """
    dataset_dir = os.path.normpath(dataset_dir)
    if not overwrite and os.path.isfile(os.path.join(dataset_dir, VERSION_FILE)):
        _check_version_stamp(spec, dataset_dir)
        return dataset_dir
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    os.makedirs(parent, exist_ok=True)
    temporary_prefix = os.path.join(parent, os.path.basename(dataset_dir) + ".tmp-")
    with _exclusive_lock(os.path.join(parent, os.path.basename(dataset_dir) + ".lock")):
        for leftover in glob.glob(glob.escape(temporary_prefix) + "*"):  # from killed runs; we hold the lock
            shutil.rmtree(leftover)
        if os.path.exists(dataset_dir) and not overwrite:
            _check_version_stamp(spec, dataset_dir)  # made by another process while we waited
            return dataset_dir
        temporary_dir = f"{temporary_prefix}{os.getpid()}"  # unique: we hold the lock
        os.mkdir(temporary_dir)  # unlike tempfile.mkdtemp, respects the umask (readable by others)
        try:
            _generate_into(spec, temporary_dir, os.path.basename(dataset_dir))
            if os.path.exists(dataset_dir):
                replaced_dir = temporary_dir + "-replaced"
                os.rename(dataset_dir, replaced_dir)
                os.rename(temporary_dir, dataset_dir)
                shutil.rmtree(replaced_dir)
            else:
                os.rename(temporary_dir, dataset_dir)
        finally:
            shutil.rmtree(temporary_dir, ignore_errors=True)
    return dataset_dir

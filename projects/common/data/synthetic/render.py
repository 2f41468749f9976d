"""Synthetic scenes and their annotations: the shapes placed into a detection image (overlap
controlled by the spec) or into a classification image, what is visible of each, and COCO
polygons of the visible parts.

Occlusion: instances are painted in order, each over the earlier ones. Annotations describe the
*visible* part of each instance (box, area, polygons); an instance with fewer than
``spec.min_visible_area`` visible pixels (or none that forms a polygon) is removed from the
scene entirely, so no unannotated fragment is left in the image. Each COCO image entry also has
``occlusion_ratio`` = (sum over instance pairs of the overlap of their full shapes) / (sum of the
full-shape areas): a statistic of how the generator placed the shapes. The occlusion ratio the
evaluator buckets images by (TBC paper, Eq. 5) is measured on the ground-truth boxes instead, by
``projects.common.evaluation.box_occlusion_ratio``.

Everything is a pure function of the spec: each image draws from a random generator seeded by
(spec.seed, split, index), so the same spec always gives identical files.
"""

import dataclasses
import zlib
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .draw import Shape, add_noise_and_quantise, clamp_center, cluttered_background, make_shape, paint
from .spec import SyntheticSpec

MAX_PLACEMENT_ATTEMPTS = 20


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


def _overlap_area(shape: Shape, other: Shape) -> int:
    rows = slice(
        max(shape.region[0].start, other.region[0].start), min(shape.region[0].stop, other.region[0].stop)
    )
    columns = slice(
        max(shape.region[1].start, other.region[1].start), min(shape.region[1].stop, other.region[1].stop)
    )
    if rows.start >= rows.stop or columns.start >= columns.stop:
        return 0
    return int(np.count_nonzero(shape.mask[rows, columns] & other.mask[rows, columns]))


def _place_shapes(spec: SyntheticSpec, rng) -> List[Shape]:
    """
    Sample instances in painting order. A candidate is rejected (and re-sampled, up to
    MAX_PLACEMENT_ATTEMPTS times, then skipped) if it would leave any earlier instance with more
    than ``spec.max_occlusion`` of its area covered.
    """
    height, width = spec.image_height, spec.image_width
    log_min_size, log_max_size = np.log(spec.object_size_range)
    shapes: List[Shape] = []
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
            center = clamp_center(center, radius, height, width)
            candidate = make_shape(
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


def _visible_masks(shapes: List[Shape]) -> List[np.ndarray]:
    """Visible part of each shape: what no later-painted shape covers."""
    if not shapes:
        return []
    visible, on_top = [], np.zeros_like(shapes[0].mask)
    for shape in reversed(shapes):
        visible.append(shape.mask & ~on_top)
        on_top = on_top | shape.mask
    return visible[::-1]


def _visible_instance(
    shape: Shape, visible: np.ndarray, min_visible_area: int
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
    shapes: List[Shape], min_visible_area: int
) -> Tuple[List[Shape], List[RenderedInstance]]:
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


def _occlusion_ratio(shapes: List[Shape]) -> float:
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
    image = cluttered_background(spec.image_height, spec.image_width, rng)
    shapes, instances = _remove_hidden(_place_shapes(spec, rng), spec.min_visible_area)
    for shape in shapes:
        paint(image, shape, spec.class_names[shape.class_index], rng)
    return RenderedImage(add_noise_and_quantise(image, rng), instances, _occlusion_ratio(shapes))


def render_classification_image(spec: SyntheticSpec, split: str, class_index: int, index: int) -> RenderedImage:
    """
    One dominant shape of class ``class_index`` over clutter and smaller shapes of other classes.

    The instances annotate what is visible of every shape (the dominant one, painted last, is
    always whole); classification ignores them, weakly supervised localisation is scored on them.
    """
    rng = _rng(spec.seed, f"classification/{split}", class_index, index)  # the stream name seeds the images
    size = spec.classification_image_size
    image = cluttered_background(size, size, rng)
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
        shape = make_shape(
            name, object_class, clamp_center(center, radius, size, size), radius, size, size, rng
        )
        paint(image, shape, name, rng)
        shapes.append(shape)
    instances = [
        instance
        for shape, visible in zip(shapes, _visible_masks(shapes))
        if (instance := _visible_instance(shape, visible, min_visible_area=1)) is not None
    ]
    return RenderedImage(add_noise_and_quantise(image, rng), instances, _occlusion_ratio(shapes))

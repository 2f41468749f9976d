"""
Pseudo boxes from a class activation map (paper Sec. 3.1, Eq. 1-6).

Coordinates: pixel (i, j) of an (H, W) map covers [j, j + 1) x [i, i + 1), so a box over the
whole map is (0, 0, W, H). Each pixel is treated as a unit square of uniform mass at its
weight; with that, the moment-matched rectangle (w = sqrt(12 var), Eq. 5-6) of a uniformly
weighted rectangular component is exactly that rectangle.

Cost: the thresholds are visited from the lowest up, each on the rectangle that holds the
previous one's pixels, with one OpenCV labelling each; the boxes of a few kept components come
from their column and row masses all at once, those of many from per-pixel sums; the NMS compares
only boxes that can overlap. Time grows near-linearly with pixels and components: a 256 x 256
checkerboard (131072 one-pixel components over 4 thresholds) takes tens of milliseconds, not the
minutes that per-component loops and an all-against-all NMS take (benchmarks.dap_pseudo_boxes).
"""

from typing import Callable, Optional, Sequence

import cv2
import numpy as np

__all__ = ["boxes_from_cam", "CONNECTIVITIES", "COMPONENT_AREAS", "PIXEL_WEIGHTINGS"]

CONNECTIVITIES = (4, 8)
COMPONENT_AREAS = ("pixels", "rectangle")
PIXEL_WEIGHTINGS = ("cam", "uniform")
_PIXEL_VARIANCE = 1.0 / 12.0  # variance of a uniform unit interval: a pixel's own extent
_FEW_COMPONENTS = 16  # kept components of a threshold with moments from their masks; more: pixel by pixel
_FEW_BOXES = 64  # NMS compares up to this many boxes all against all; more, only where they can overlap
_UPPER_TRIANGLE = np.triu(np.ones((_FEW_BOXES, _FEW_BOXES), dtype=bool), 1)
_CELLS_PER_BOX = 8  # NMS grid: coarsened until the boxes cover at most this many cells each on average


def boxes_from_cam(
    cam: np.ndarray,
    thresholds: Sequence[float] = (0.2, 0.3, 0.4, 0.5),
    nms_iou: float = 0.8,
    min_area_ratio: float = 0.5,
    *,
    normalize: bool = True,
    to_image: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    connectivity: int = 4,
    component_area: str = "pixels",
    weighting: str = "cam",
    max_components_per_threshold: int = 0,
) -> np.ndarray:
    """
    Boxes of the salient regions of one class activation map.

    For each threshold tau: the map, min-max normalised to [0, 1] (Eq. 1) unless ``normalize``
    is False, is kept where it is above tau (Eq. 2); its connected components smaller than
    ``min_area_ratio`` x the largest one are dropped; each remaining component becomes the
    rectangle with the same weighted mean and variance (Eq. 3-6). Boxes of all thresholds are
    pooled, clipped (to the map, or to the image by ``to_image``) and merged by NMS at
    ``nms_iou``, larger boxes first (``nms_iou >= 1`` keeps them all, the paper's "no NMS").

    Args:
        cam: (H, W) map; with ``normalize``, of any real scale (only its shape relative to its
            extremes matters).
        thresholds: the tau values, each in (0, 1).
        nms_iou: IoU above which the smaller of two boxes is dropped, in (0, 1].
        min_area_ratio: components below this fraction of the largest one's area are noise.
        normalize: min-max normalise the map first (default); False: the thresholds apply to
            the map as given (a map already in [0, 1], e.g. the average of per-scale normalised
            CAMs, which the authors threshold without renormalising).
        to_image: maps (N, 4) boxes in map pixels to image pixels, clipped to the image (e.g.
            ``ClassActivationMap.to_image_boxes``); NMS then runs on the image boxes, as the
            authors clip before NMS. None (default): boxes in map pixels, clipped to the map.
        connectivity: 4 (the authors' labelling, default) or 8 pixel neighbourhoods.
        component_area: "pixels" (number of pixels, the paper's wording, default) or
            "rectangle" (area of the component's bounding rectangle, the authors' code).
        weighting: pixel weights of the moments: "cam" (the thresholded map M, Eq. 3-6,
            default) or "uniform" (the component's shape only).
        max_components_per_threshold: keep at most this many components per tau, largest
            first; 0 (default) keeps all that pass ``min_area_ratio`` (the authors keep 4).

    Returns:
        float64 array (N, 4) of XYXY boxes in the map's pixel coordinates (the image's with
        ``to_image``), largest first. An empty map, or a constant one when normalised, has no
        salient region and yields no boxes.

    Raises:
        ValueError: for a NaN/infinite map, a map that is not 2-D, or invalid options.
    """
    cam = np.asarray(cam, dtype=np.float64)
    _check_arguments(
        cam, thresholds, nms_iou, min_area_ratio, connectivity, component_area, weighting,
        max_components_per_threshold,
    )
    if cam.size == 0:
        return np.zeros((0, 4))
    if normalize:
        low, high = cam.min(), cam.max()
        if not high > low:
            return np.zeros((0, 4))
        cam = cam - low
        cam /= high - low
    boxes = _component_boxes(
        cam, thresholds, min_area_ratio, connectivity, component_area, weighting, max_components_per_threshold,
    )
    if not len(boxes):
        return np.zeros((0, 4))
    if to_image is not None:
        boxes = to_image(boxes)
    else:  # a CAM-weighted fit can be wider than its component: clip to the map
        height, width = cam.shape
        boxes = np.minimum(np.maximum(boxes, 0.0), [width, height, width, height])
    return _nms_larger_first(boxes, nms_iou)


def _check_arguments(
    cam, thresholds, nms_iou, min_area_ratio, connectivity, component_area, weighting, max_components
):
    if cam.ndim != 2:
        raise ValueError(f"cam must be a 2-D (H, W) map, got shape {cam.shape}")
    if not np.isfinite(cam).all():
        raise ValueError(
            "cam contains NaN or infinite values: the classifier produced non-finite features "
            "(check the weights and the input normalisation)"
        )
    if len(thresholds) == 0 or any(not 0.0 < tau < 1.0 for tau in thresholds):
        raise ValueError(f"thresholds must be a non-empty sequence of values in (0, 1), got {thresholds}")
    if not 0.0 < nms_iou <= 1.0:
        raise ValueError(f"nms_iou must be in (0, 1] (1 disables NMS), got {nms_iou}")
    if not 0.0 <= min_area_ratio <= 1.0:
        raise ValueError(f"min_area_ratio must be in [0, 1], got {min_area_ratio}")
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity}")
    if component_area not in COMPONENT_AREAS:
        raise ValueError(f"component_area must be one of {COMPONENT_AREAS}, got {component_area!r}")
    if weighting not in PIXEL_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {PIXEL_WEIGHTINGS}, got {weighting!r}")
    if max_components < 0:
        raise ValueError(f"max_components_per_threshold must be >= 0 (0: no limit), got {max_components}")


def _component_boxes(cam, thresholds, min_area_ratio, connectivity, component_area, weighting, max_components):
    """(N, 4) moment-matched boxes (Eq. 3-6) of the large-enough components of ``cam > tau``,
    threshold by threshold in the given order, each threshold's largest component first (ties:
    raster order).

    The thresholds are visited from the lowest up, each on the rectangle that holds the previous
    one's pixels (a higher threshold's region lies inside a lower one's), and the boxes of the
    components found through their masks are computed together at the end.
    """
    found = {}  # tau -> its boxes, or the rows of its components in the masses below
    column_masses, row_masses, origins = [], [], []
    window, left, top = cam, 0, 0
    for tau in sorted(set(thresholds)):
        mask = window > tau
        x, y, width, height = cv2.boundingRect(mask.view(np.uint8))
        if not width:  # nor any higher threshold
            break
        window, mask = window[y : y + height, x : x + width], mask[y : y + height, x : x + width]
        left, top = left + x, top + y
        kind, *result = _threshold_components(
            window, tau, mask, min_area_ratio, connectivity, component_area, weighting, max_components,
        )
        if kind == "boxes":
            found[tau] = result[0] + (left, top, left, top)
        else:
            found[tau] = slice(len(column_masses), len(column_masses) + len(result[0]))
            column_masses.extend(result[0])
            row_masses.extend(result[1])
            origins.extend([(left, top, left, top)] * len(result[0]))
    if column_masses:  # all of them at once, zero-padded to the lowest threshold's rectangle
        first_width, first_height = len(column_masses[0]), len(row_masses[0])
        column_mass, row_mass = np.zeros((len(column_masses), first_width)), np.zeros((len(row_masses), first_height))
        for position, (columns, rows) in enumerate(zip(column_masses, row_masses)):
            column_mass[position, : len(columns)], row_mass[position, : len(rows)] = columns, rows
        mass_boxes = _moment_boxes(column_mass, row_mass) + origins
    boxes = [found[tau] if isinstance(found[tau], np.ndarray) else mass_boxes[found[tau]]
             for tau in thresholds if tau in found]
    return np.concatenate(boxes) if boxes else np.zeros((0, 4))


def _threshold_components(window, tau, mask, min_area_ratio, connectivity, component_area, weighting,
                          max_components):
    """The kept components of ``mask`` = ``window > tau`` (largest first): ("masses", their column
    masses, their row masses) for a few, ("boxes", their boxes) for many, on ``window``'s pixels.
    (OpenCV's thresholding and sums here: NumPy's would allocate and fill more per threshold.)"""
    # 16-bit labels while components cannot outnumber them (at most half the pixels, 4-connected)
    label_type = cv2.CV_16U if mask.size < 2 * 65535 else cv2.CV_32S
    if component_area == "pixels":
        count, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=connectivity, ltype=label_type)
    else:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask.view(np.uint8), connectivity=connectivity, ltype=label_type
        )
    if count == 2:  # one component: the mask is its own
        weights = cv2.threshold(window, tau, 0.0, cv2.THRESH_TOZERO)[1] if weighting == "cam" else mask.view(np.uint8)
        return "masses", [_column_sums(weights)], [_row_sums(weights)]
    if component_area == "pixels":
        areas = np.bincount(labels[mask], minlength=count)[1:].astype(np.float64)
    else:
        areas = stats[1:, cv2.CC_STAT_WIDTH].astype(np.float64) * stats[1:, cv2.CC_STAT_HEIGHT]
    order = np.argsort(-areas, kind="stable")  # ties: raster order, as labelled
    kept = order[areas[order] >= min_area_ratio * areas[order[0]]]
    if max_components:
        kept = kept[:max_components]
    if len(kept) > _FEW_COMPONENTS:
        return "boxes", _moment_boxes_by_pixel(labels, window, weighting, kept)
    column_masses, row_masses = [], []
    for label in (kept + 1).tolist():
        in_component = (labels == label).view(np.uint8)
        weights = cv2.copyTo(window, in_component) if weighting == "cam" else in_component
        column_masses.append(_column_sums(weights))
        row_masses.append(_row_sums(weights))
    return "masses", column_masses, row_masses


def _column_sums(weights: np.ndarray) -> np.ndarray:
    return cv2.reduce(weights, 0, cv2.REDUCE_SUM, dtype=cv2.CV_64F)[0]


def _row_sums(weights: np.ndarray) -> np.ndarray:
    return cv2.reduce(weights, 1, cv2.REDUCE_SUM, dtype=cv2.CV_64F)[:, 0]


def _moment_boxes(column_mass: np.ndarray, row_mass: np.ndarray) -> np.ndarray:
    """Rectangles with the weighted mean and variance (Eq. 3-6) of components' unit-square
    pixels, from their (components, W) column and (components, H) row masses."""
    total = column_mass.sum(axis=1)
    boxes = np.empty((len(total), 4))
    for axis, mass in enumerate((column_mass, row_mass)):
        centres = np.arange(mass.shape[1]) + 0.5  # of the pixels
        mean = mass @ centres / total
        variance = (mass * (centres - mean[:, None]) ** 2).sum(axis=1) / total + _PIXEL_VARIANCE
        half_side = np.sqrt(12.0 * variance) / 2
        boxes[:, axis], boxes[:, axis + 2] = mean - half_side, mean + half_side
    return boxes


def _moment_boxes_by_pixel(labels: np.ndarray, window: np.ndarray, weighting: str, kept: np.ndarray) -> np.ndarray:
    """``_moment_boxes`` of the components ``kept`` (0-based) of the (H, W) ``labels`` from sums
    over each component's pixels by ``np.bincount``, centred in a second pass: for many
    components, whose masks would cost a pass over the window each."""
    ys, xs = np.nonzero(labels)
    component = labels[ys, xs].astype(np.intp) - 1
    weights = window[ys, xs] if weighting == "cam" else np.ones(len(xs))
    count = int(component.max()) + 1
    total = np.bincount(component, weights, count)
    boxes = np.empty((count, 4))
    for axis, centres in enumerate((xs + 0.5, ys + 0.5)):
        mean = np.bincount(component, weights * centres, count) / total
        variance = np.bincount(component, weights * (centres - mean[component]) ** 2, count) / total + _PIXEL_VARIANCE
        half_side = np.sqrt(12.0 * variance) / 2
        boxes[:, axis], boxes[:, axis + 2] = mean - half_side, mean + half_side
    return boxes[kept]


def _nms_larger_first(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS visiting boxes by decreasing area (ties: input order), as the authors rank them:
    a box is dropped when one kept before it overlaps it by IoU > ``iou_threshold``. Many boxes
    are compared only where they can overlap, in near-linear time."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-areas, kind="stable")
    boxes, areas = boxes[order], areas[order]
    if iou_threshold >= 1.0 or len(boxes) < 2:
        return boxes
    if len(boxes) <= _FEW_BOXES:
        return boxes[_kept_among_few(boxes, areas, iou_threshold)]
    earlier, later = _overlapping_pairs(boxes)
    above = _iou(boxes[earlier], boxes[later], areas[earlier], areas[later]) > iou_threshold
    return boxes[_greedy_survivors(len(boxes), earlier[above], later[above])]


def _iou(first: np.ndarray, second: np.ndarray, first_areas: np.ndarray, second_areas: np.ndarray) -> np.ndarray:
    """IoU of XYXY boxes ``first`` and ``second`` (broadcast together); 0 for two empty boxes."""
    width = np.minimum(first[..., 2], second[..., 2]) - np.maximum(first[..., 0], second[..., 0])
    height = np.minimum(first[..., 3], second[..., 3]) - np.maximum(first[..., 1], second[..., 1])
    intersection = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    union = first_areas + second_areas - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _kept_among_few(boxes: np.ndarray, areas: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS of boxes in rank order from their IoU matrix: boolean mask of the kept ones."""
    suppresses = _iou(boxes[:, None], boxes[None], areas[:, None], areas[None]) > iou_threshold
    suppresses &= _UPPER_TRIANGLE[: len(boxes), : len(boxes)]  # row i: the later boxes box i drops
    kept = np.ones(len(boxes), dtype=bool)
    for index in np.flatnonzero(suppresses.any(axis=1)).tolist():
        if kept[index]:
            kept &= ~suppresses[index]
    return kept


def _overlapping_pairs(boxes: np.ndarray):
    """(earlier, later) indices, earlier < later, of the pairs of ``boxes`` that share a cell of a
    square grid about as fine as the boxes: every pair that intersects with positive area is
    among them, once per cell it shares. The cell side is a power of two, so that cell indices
    are exact."""
    count = len(boxes)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    typical_side = np.median(sides)
    cell = 2.0 ** np.round(np.log2(typical_side)) if typical_side > 0 else 1.0
    while True:  # coarser until large boxes do not dominate: at most _CELLS_PER_BOX cells a box on average
        first_x, first_y = np.floor(boxes[:, 0] / cell), np.floor(boxes[:, 1] / cell)
        columns = np.maximum(np.ceil(boxes[:, 2] / cell) - first_x, 0).astype(np.int64)
        rows = np.maximum(np.ceil(boxes[:, 3] / cell) - first_y, 0).astype(np.int64)
        cells_per_box = columns * rows
        if cells_per_box.sum() <= _CELLS_PER_BOX * count:
            break
        cell *= 2.0
    box = np.repeat(np.arange(count), cells_per_box)
    if not len(box):  # empty boxes only: nothing intersects
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    step = np.arange(len(box)) - np.repeat(np.cumsum(cells_per_box) - cells_per_box, cells_per_box)
    cell_x = (first_x[box] - first_x.min()).astype(np.int64) + step // rows[box]
    cell_y = (first_y[box] - first_y.min()).astype(np.int64) + step % rows[box]
    cell_index = cell_x * (cell_y.max() + 1) + cell_y
    by_cell = np.argsort(cell_index, kind="stable")  # boxes ascend within a cell
    cell_index, box = cell_index[by_cell], box[by_cell]
    run_ends = np.flatnonzero(np.r_[cell_index[1:] != cell_index[:-1], True]) + 1
    run_end = np.repeat(run_ends, np.diff(np.r_[0, run_ends]))
    positions, pairs = np.arange(len(box)), []
    for gap in range(1, len(box)):
        positions = positions[positions + gap < run_end[positions]]
        if not len(positions):
            break
        pairs.append((box[positions], box[positions + gap]))
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([first for first, _ in pairs]), np.concatenate([second for _, second in pairs])


def _greedy_survivors(count: int, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Greedy NMS over boxes in rank order, given the pairs (earlier, later) in which the earlier
    box suppresses the later one if kept: boolean mask of the kept boxes. A box that nothing
    precedes is kept and drops every box it suppresses; only the boxes left undecided after
    that are visited one by one, in rank order, each after all of its predecessors."""
    kept = np.ones(count, dtype=bool)
    has_predecessor = np.zeros(count, dtype=bool)
    has_predecessor[later] = True
    kept[later[~has_predecessor[earlier]]] = False
    undecided = has_predecessor & kept
    if undecided.any():
        pending = undecided[later]
        earlier, later = earlier[pending], later[pending]
        by_later = np.argsort(later, kind="stable")
        earlier, later = earlier[by_later], later[by_later]
        starts = np.flatnonzero(np.r_[True, later[1:] != later[:-1]])
        for box, predecessors in zip(later[starts].tolist(), np.split(earlier, starts[1:])):
            kept[box] = not kept[predecessors].any()
    return kept

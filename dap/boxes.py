"""
Pseudo boxes from a class activation map (paper Sec. 3.1, Eq. 1-6).

Coordinates: pixel (i, j) of an (H, W) map covers [j, j + 1) x [i, i + 1), so a box over the
whole map is (0, 0, W, H). Each pixel is treated as a unit square of uniform mass at its
weight; with that, the moment-matched rectangle (w = sqrt(12 var), Eq. 5-6) of a uniformly
weighted rectangular component is exactly that rectangle.
"""

from typing import Callable, Optional, Sequence

import cv2
import numpy as np

__all__ = ["boxes_from_cam", "CONNECTIVITIES", "COMPONENT_AREAS", "PIXEL_WEIGHTINGS"]

CONNECTIVITIES = (4, 8)
COMPONENT_AREAS = ("pixels", "rectangle")
PIXEL_WEIGHTINGS = ("cam", "uniform")
_PIXEL_VARIANCE = 1.0 / 12.0  # variance of a uniform unit interval: a pixel's own extent


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
        cam = (cam - low) / (high - low)
    boxes = [
        box
        for tau in thresholds
        for box in _component_boxes(
            cam, tau, min_area_ratio, connectivity, component_area, weighting, max_components_per_threshold,
        )
    ]
    if not boxes:
        return np.zeros((0, 4))
    if to_image is not None:
        boxes = to_image(np.array(boxes))
    else:  # a CAM-weighted fit can be wider than its component: clip to the map
        height, width = cam.shape
        boxes = np.clip(np.array(boxes), 0.0, [width, height, width, height])
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


def _component_boxes(cam, tau, min_area_ratio, connectivity, component_area, weighting, max_components):
    """Moment-matched boxes of the large-enough components of ``cam > tau`` (largest first)."""
    mask = (cam > tau).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=connectivity)
    if count <= 1:  # label 0 is the background
        return []
    if component_area == "pixels":
        areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    else:
        areas = stats[1:, cv2.CC_STAT_WIDTH].astype(np.float64) * stats[1:, cv2.CC_STAT_HEIGHT]
    order = np.argsort(-areas, kind="stable")
    kept = [index for index in order if areas[index] >= min_area_ratio * areas[order[0]]]
    if max_components:
        kept = kept[:max_components]
    boxes = []
    for index in kept:
        x, y, width, height = stats[index + 1, :4]
        window = (slice(y, y + height), slice(x, x + width))
        in_component = labels[window] == index + 1
        weights = cam[window] * in_component if weighting == "cam" else in_component.astype(np.float64)
        boxes.append(_moment_box(weights, x, y))
    return boxes


def _moment_box(weights: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """Rectangle with the weighted mean and variance (Eq. 3-6) of unit-square pixels."""
    total = weights.sum()
    column_mass, row_mass = weights.sum(axis=0), weights.sum(axis=1)
    xs = x0 + np.arange(weights.shape[1]) + 0.5  # pixel centres
    ys = y0 + np.arange(weights.shape[0]) + 0.5
    x_centre, y_centre = column_mass @ xs / total, row_mass @ ys / total
    x_variance = column_mass @ (xs - x_centre) ** 2 / total + _PIXEL_VARIANCE
    y_variance = row_mass @ (ys - y_centre) ** 2 / total + _PIXEL_VARIANCE
    half_width, half_height = np.sqrt(12.0 * x_variance) / 2, np.sqrt(12.0 * y_variance) / 2
    return np.array([x_centre - half_width, y_centre - half_height, x_centre + half_width, y_centre + half_height])


def _nms_larger_first(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS visiting boxes by decreasing area (ties: input order), as the authors rank them."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-areas, kind="stable")
    if iou_threshold >= 1.0:
        return boxes[order]
    kept = []
    for index in order:
        if kept:
            others = boxes[kept]
            width = np.minimum(others[:, 2], boxes[index, 2]) - np.maximum(others[:, 0], boxes[index, 0])
            height = np.minimum(others[:, 3], boxes[index, 3]) - np.maximum(others[:, 1], boxes[index, 1])
            intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
            iou = intersection / (areas[kept] + areas[index] - intersection)
            if (iou > iou_threshold).any():
                continue
        kept.append(index)
    return boxes[kept]

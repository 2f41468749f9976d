"""Selective Search boxes of one image (OpenCV contrib), ranked as OpenCV ranks them."""

import ctypes
from typing import Optional, Tuple

import cv2
import numpy as np

__all__ = ["SELECTIVE_SEARCH_MODES", "SelectiveSearchProposals", "rank_scores", "selective_search"]

SELECTIVE_SEARCH_MODES = ("fast", "quality")


def selective_search(
    image_bgr: np.ndarray,
    mode: str = "fast",
    max_proposals: int = 4000,
    min_size: float = 2.0,
    max_image_size: int = 0,
    seed: int = 0,
    num_threads: Optional[int] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """
    Selective Search boxes of one image (OpenCV contrib's ``SelectiveSearchSegmentation``), in
    OpenCV's ranking.

    Args:
        image_bgr: (H, W, 3) uint8 image in BGR order (as read by OpenCV or ``read_image``).
        mode: "fast" or "quality", OpenCV's ``switchToSelectiveSearchFast`` / ``...Quality``
            (the "fast" setting is the one of the Selective Search files of Fast R-CNN).
        max_proposals: keep the first this many boxes (after the two filters below); 0 keeps all.
        min_size: drop boxes narrower or lower than this (pixels of ``image_bgr``).
        max_image_size: when > 0 and the image's long side is longer, segment a copy resized
            (INTER_AREA) so that its long side is ``max_image_size`` and scale the boxes back to
            ``image_bgr``: much faster on large images (the cost grows with the pixel count), at
            the price of coarser boxes (coordinates on the resized image's grid).
        seed: OpenCV ranks the regions with C ``rand()`` (hierarchy level times a random number,
            as in Uijlings et al.); it is seeded with ``srand(seed)`` (POSIX C library) before
            the image so that the order is reproducible. The set of boxes does not depend on it.
        num_threads: when given, ``cv2.setNumThreads(num_threads)`` first (process-wide).

    Returns:
        boxes: (N, 4) float32 XYXY in pixels of ``image_bgr`` with x2 = x + w, y2 = y + h
            (detectron2's convention), in OpenCV's order, repeated boxes removed (first kept).
        scores: (N,) float32 ``rank_scores(N)``, strictly decreasing, so that sorting by score
            (what detectron2 does with objectness_logits) keeps OpenCV's order.
    """
    if mode not in SELECTIVE_SEARCH_MODES:
        raise ValueError(f"mode must be one of {SELECTIVE_SEARCH_MODES}, got {mode!r}")
    image_bgr = np.asarray(image_bgr)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"image_bgr must be an (H, W, 3) uint8 BGR image, got {image_bgr.dtype} {image_bgr.shape}")
    if num_threads is not None:
        cv2.setNumThreads(num_threads)
    height, width = image_bgr.shape[:2]
    scale = max_image_size / max(height, width) if 0 < max_image_size < max(height, width) else 1.0
    segmented = image_bgr
    if scale != 1.0:
        resized_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        segmented = cv2.resize(image_bgr, resized_size, interpolation=cv2.INTER_AREA)
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(segmented)
    if mode == "fast":
        search.switchToSelectiveSearchFast()
    else:
        search.switchToSelectiveSearchQuality()
    ctypes.CDLL(None).srand(seed)
    rectangles = np.asarray(search.process(), dtype=np.float64).reshape(-1, 4)  # x, y, w, h
    boxes = np.concatenate([rectangles[:, :2], rectangles[:, :2] + rectangles[:, 2:]], axis=1)
    boxes *= [width / segmented.shape[1], height / segmented.shape[0]] * 2
    boxes = boxes.astype(np.float32)
    _, first_occurrences = np.unique(boxes, axis=0, return_index=True)
    boxes = boxes[np.sort(first_occurrences)]
    boxes = boxes[(boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size)]
    if max_proposals > 0:
        boxes = boxes[:max_proposals]
    return boxes, rank_scores(len(boxes))


class SelectiveSearchProposals:
    """
    Selective Search as the proposal source of a ``WeaklySupervisedRCNN`` (its
    ``proposal_generator``), for images that come without precomputed proposals (the
    predictor, the demo): called with one (H, W, 3) uint8 BGR image, it returns
    ``selective_search``'s boxes and rank scores with these settings (seed 0, so the same image
    always gets the same proposals).
    """

    def __init__(self, mode: str = "fast", max_proposals: int = 4000, min_size: float = 20.0,
                 max_image_size: int = 0):
        """
        Args:
            mode: "fast" (as the Selective Search files of Fast R-CNN) or "quality".
            max_proposals: keep the first this many boxes; 0 keeps all.
            min_size: drop boxes narrower or lower than this, in pixels of the model's input
                (the test mapper's resized image), like the data path's ``proposal_min_size``.
            max_image_size: > 0 segments a copy whose long side is this (faster, coarser).
        """
        if mode not in SELECTIVE_SEARCH_MODES:
            raise ValueError(f"mode must be one of {SELECTIVE_SEARCH_MODES}, got {mode!r}")
        if max_proposals < 0 or min_size < 0 or max_image_size < 0:
            raise ValueError(
                f"max_proposals={max_proposals}, min_size={min_size} and max_image_size={max_image_size} must "
                "not be negative (0 turns max_proposals and max_image_size off)"
            )
        self.mode = mode
        self.max_proposals = max_proposals
        self.min_size = min_size
        self.max_image_size = max_image_size

    def __call__(self, image_bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if not hasattr(cv2, "ximgproc"):
            raise ImportError(
                "Selective Search needs OpenCV's contrib modules (cv2.ximgproc), which this OpenCV lacks: "
                "install opencv-contrib-python-headless (pip install 'd2-project-collection[opencv]') in place "
                "of the other OpenCV wheel, or give the inputs precomputed proposals"
            )
        return selective_search(image_bgr, mode=self.mode, max_proposals=self.max_proposals,
                                min_size=self.min_size, max_image_size=self.max_image_size)

    def __repr__(self) -> str:
        return (f"SelectiveSearchProposals(mode={self.mode!r}, max_proposals={self.max_proposals}, "
                f"min_size={self.min_size}, max_image_size={self.max_image_size})")


def rank_scores(num_boxes: int) -> np.ndarray:
    """
    Objectness of boxes known only by their rank: (N - rank) / N, i.e. 1 for the first box down
    to 1/N for the last (float32, strictly decreasing for N < 2**24). Not a probability: it only
    orders the boxes, in (0, 1] like a score (the authors weight RoI features by score + 1).
    """
    return ((num_boxes - np.arange(num_boxes)) / max(num_boxes, 1)).astype(np.float32)

"""
Class activation maps of an ``ImageClassifier`` (paper Sec. 3.1 and 4.1, step 2).

The CAM of class c is the classifier's linear layer applied at every position of the last
feature map: ``fc.weight[c] . F(x, y) + fc.bias[c]``. As in the paper, it is computed for the
ground-truth class at several input scales (short side 288 and 576 by default) and for the
image and its mirror. Each scale resizes the image as the authors' torchvision ``Resize(S)`` does
a PIL image: short side S, long side ``int(S * long / short)`` (truncated), bilinear with
antialiasing. Each view's map is resampled (bilinearly) at the same points of the original
image, the two mirror views are averaged, each scale is min-max normalised on its own (Eq. 1)
and the scales are averaged, without renormalisation afterwards, as the authors: the pseudo
boxes threshold that average as it is (``ClassActivationMap.pseudo_boxes``).

Geometry: feature cell i of a backbone of stride s is centred on input position
``s * i + cell_origin`` (continuous coordinates, pixel p covers [p, p + 1)). For detectron2's and
torchvision's ResNets, whose downsampling convolutions and pooling are "same"-padded, the
centre is ``s * i + 0.5``, the default. Reading cell i as covering [s i, s (i + 1)) (centre
``s * i + s / 2``, the authors' shortcut) shifts every box by (s / 2 - 0.5) input pixels down and
right (15.5 px at stride 32); mirror views cancel it horizontally but not vertically.
"""

import dataclasses
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from projects.common.modeling import normalize_and_pad

from .boxes import boxes_from_cam

__all__ = ["ClassActivationMap", "ClassActivationMapper", "CAM_RESOLUTIONS", "resized_size"]

CAM_RESOLUTIONS = ("feature", "image")
RESNET_CELL_ORIGIN = 0.5


@dataclasses.dataclass
class ClassActivationMap:
    """A CAM in [0, 1] and how its pixels map to the original image.

    CAM coordinate (u, v) (pixel (i, j) covers [j, j + 1) x [i, i + 1)) is image point
    ``(origin_x + u * sx, origin_y + v * sy)`` with (sx, sy) = ``pixels_per_cell``;
    ``image_size`` is the original (height, width).
    """

    cam: np.ndarray
    image_size: Tuple[int, int]
    pixels_per_cell: Tuple[float, float]
    origin: Tuple[float, float] = (0.0, 0.0)

    def to_image_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """XYXY boxes in CAM pixels -> XYXY boxes in original image pixels, clipped to the image."""
        (scale_x, scale_y), (origin_x, origin_y) = self.pixels_per_cell, self.origin
        height, width = self.image_size
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        mapped = boxes * [scale_x, scale_y, scale_x, scale_y] + [origin_x, origin_y, origin_x, origin_y]
        return np.clip(mapped, 0.0, [width, height, width, height])

    def pseudo_boxes(self, **box_arguments) -> np.ndarray:
        """
        ``boxes_from_cam`` of this map in image pixels. As the authors: the thresholds apply to
        the map as it is (the average of per-scale normalised maps, not renormalised), and the
        boxes are clipped to the image before NMS.
        """
        return boxes_from_cam(self.cam, normalize=False, to_image=self.to_image_boxes, **box_arguments)


@dataclasses.dataclass
class _View:
    """The raw CAM of one resized (and possibly mirrored) copy of an image."""

    cam: torch.Tensor  # (cells_y, cells_x), valid cells only
    resized_size: Tuple[int, int]  # (height, width) of the resized image
    mirrored: bool


class ClassActivationMapper:
    """
    CAMs of the ground-truth class for batches of detectron2-style inputs.

    Args:
        model: a ``projects.common.modeling.ImageClassifier`` in eval mode (its ``backbone``,
            ``in_feature``, ``fc``, ``pixel_mean`` and ``pixel_std`` are used).
        scales: short-side lengths the image is resized to (see ``resized_size``); the paper
            uses 288, 576.
        flip: also use the horizontally mirrored image.
        resolution: "feature" (default, the authors' choice): the CAM is given on the feature
            cells of the largest scale (stride 32 for ResNet: 18 cells for 576 px); "image": one
            value per original image pixel (Zhou et al.'s upsampled CAM), which gives boxes finer
            than a feature cell on small images.
        cell_origin: input position of the centre of feature cell 0 (see the module docstring);
            0.5 for ResNets.
        channels_last: feed the backbone its batch in the channels_last memory format (the
            default): on CPU the stem's max pooling runs 4x faster in it and the convolutions
            1.1x, the whole CAM forward 1.14x (``benchmarks.dap_pseudo_boxes``); the maps equal
            the default layout's to float rounding (relative 1e-6) and give the same boxes.
    """

    def __init__(
        self,
        model,
        scales: Sequence[int] = (288, 576),
        flip: bool = True,
        resolution: str = "feature",
        cell_origin: float = RESNET_CELL_ORIGIN,
        channels_last: bool = True,
    ):
        for attribute in ("backbone", "in_feature", "fc", "pixel_mean", "pixel_std"):
            if not hasattr(model, attribute):
                raise TypeError(
                    f"{type(model).__name__} has no {attribute!r}: CAMs need a "
                    "projects.common.modeling.ImageClassifier (backbone -> global pool -> fc)"
                )
        if not scales or any(int(scale) < 1 for scale in scales):
            raise ValueError(f"scales must be positive short-side lengths, got {scales}")
        if resolution not in CAM_RESOLUTIONS:
            raise ValueError(f"resolution must be one of {CAM_RESOLUTIONS}, got {resolution!r}")
        self.model = model
        self.scales = tuple(sorted(int(scale) for scale in scales))
        self.flip = flip
        self.resolution = resolution
        self.cell_origin = float(cell_origin)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.stride = model.backbone.output_shape()[model.in_feature].stride

    @torch.no_grad()
    def __call__(self, batched_inputs: List[Dict]) -> List[ClassActivationMap]:
        """
        Args:
            batched_inputs: dicts with ``"image"`` (C, H, W) tensor in the model's input format
                and ``"class_id"``, the class whose map is wanted (the image's label).
        """
        if self.model.training:
            raise RuntimeError("CAMs need the classifier in eval mode (BatchNorm statistics): call model.eval()")
        device = self.model.pixel_mean.device
        images = [x["image"].to(device) for x in batched_inputs]  # normalised after resizing
        class_ids = [self._class_id(x) for x in batched_inputs]
        weights, biases = self.model.fc.weight[class_ids], self.model.fc.bias[class_ids]
        views_per_scale = [self._views(images, weights, biases, scale) for scale in self.scales]
        return [
            self._combine([views[index] for views in views_per_scale], tuple(images[index].shape[-2:]))
            for index in range(len(images))
        ]

    def _class_id(self, input_dict: Dict) -> int:
        if "class_id" not in input_dict:
            raise KeyError(f"every input needs 'class_id' (the class whose CAM is wanted), got {sorted(input_dict)}")
        class_id = int(input_dict["class_id"])
        if not 0 <= class_id < self.model.fc.out_features:
            raise ValueError(f"class_id {class_id} is outside the classifier's {self.model.fc.out_features} classes")
        return class_id

    def _views(self, images, weights, biases, scale: int) -> List[List[_View]]:
        """Per image, the raw CAMs of its resized copy (and of its mirror) at one scale."""
        resized = [self._resize(image, scale) for image in images]
        batches = [(self._features(resized), False)]
        if self.flip:
            batches.append((self._features([image.flip(-1) for image in resized]), True))
        views = []
        for index, image in enumerate(resized):
            size = tuple(image.shape[-2:])
            cells = (math.ceil(size[0] / self.stride), math.ceil(size[1] / self.stride))
            views.append([
                _View(
                    torch.einsum("c,chw->hw", weights[index], features[index, :, : cells[0], : cells[1]])
                    + biases[index],
                    size,
                    mirrored,
                )
                for features, mirrored in batches
            ])
        return views

    def _resize(self, image: torch.Tensor, scale: int) -> torch.Tensor:
        """The image at short side ``scale``, resized as the authors' PIL image is: bilinear with
        antialiasing, in the image's own dtype (uint8 is rounded, as by PIL), normalised after."""
        size = list(resized_size(tuple(image.shape[-2:]), scale))
        return TF.resize(image, size, InterpolationMode.BILINEAR, antialias=True)

    def _features(self, images: List[torch.Tensor]) -> torch.Tensor:
        """The classifier's normalisation, zero padding (= the mean pixel) bottom/right to the stride."""
        batch = normalize_and_pad(images, self.model.pixel_mean, self.model.pixel_std, self.stride)
        return self.model.backbone(batch.tensor.contiguous(memory_format=self.memory_format))[self.model.in_feature]

    def _combine(self, views_per_scale: List[List[_View]], image_size) -> ClassActivationMap:
        """Resample every view at common points of the image and average (see the module docstring)."""
        height, width = image_size
        device = views_per_scale[0][0].cam.device
        if self.resolution == "image":
            xs = torch.arange(width, device=device) + 0.5  # pixel centres
            ys = torch.arange(height, device=device) + 0.5
            pixels_per_cell, origin = (1.0, 1.0), (0.0, 0.0)
        else:  # the cells of the largest scale's unmirrored view
            reference = views_per_scale[-1][0]
            (resized_height, resized_width), (cells_y, cells_x) = reference.resized_size, reference.cam.shape
            scale_x, scale_y = width / resized_width, height / resized_height
            xs = (self.stride * torch.arange(cells_x, device=device) + self.cell_origin) * scale_x
            ys = (self.stride * torch.arange(cells_y, device=device) + self.cell_origin) * scale_y
            pixels_per_cell = (self.stride * scale_x, self.stride * scale_y)
            shift = self.cell_origin - self.stride / 2  # cell u covers [u, u + 1): its centre is u + 0.5
            origin = (shift * scale_x, shift * scale_y)
        maps = []
        for views in views_per_scale:
            sampled = [self._sample(view, xs, ys, image_size) for view in views]
            maps.append(_min_max(torch.stack(sampled).mean(dim=0)))
        average = torch.stack(maps).mean(dim=0)
        return ClassActivationMap(average.cpu().numpy().astype(np.float32), (height, width), pixels_per_cell, origin)

    def _sample(self, view: _View, xs: torch.Tensor, ys: torch.Tensor, image_size) -> torch.Tensor:
        """Bilinear values of a view's CAM at image points (xs, ys) (borders extended)."""
        (resized_height, resized_width), (height, width) = view.resized_size, image_size
        resized_xs, resized_ys = xs * resized_width / width, ys * resized_height / height
        if view.mirrored:
            resized_xs = resized_width - resized_xs
        cells_y, cells_x = view.cam.shape
        # cell coordinate (cell i spans [i, i + 1)), then grid_sample's [-1, 1] (align_corners=False)
        grid_x = 2 * ((resized_xs - self.cell_origin) / self.stride + 0.5) / cells_x - 1
        grid_y = 2 * ((resized_ys - self.cell_origin) / self.stride + 0.5) / cells_y - 1
        grid = torch.stack(torch.meshgrid(grid_y, grid_x, indexing="ij")[::-1], dim=-1)[None]
        return F.grid_sample(view.cam[None, None], grid.to(view.cam.dtype), mode="bilinear",
                             padding_mode="border", align_corners=False)[0, 0]


def resized_size(size: Tuple[int, int], scale: int) -> Tuple[int, int]:
    """(height, width) of an image of ``size`` resized to short side ``scale`` as torchvision's
    ``Resize(scale)``, the authors' transform, gives it: the long side is truncated, not rounded."""
    height, width = size
    if height <= width:
        return scale, int(scale * width / height)
    return int(scale * height / width), scale


def _min_max(cam: torch.Tensor) -> torch.Tensor:
    """Eq. 1; a constant map becomes all zeros (no salient region)."""
    low, high = cam.min(), cam.max()
    if not high > low:
        return torch.zeros_like(cam)
    return (cam - low) / (high - low)

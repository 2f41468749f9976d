"""FCOS as the MSAD authors train it (dvlab-research/MSAD: msad/tower.py, msad/outputs.py): a
detector of its own (configs/common/models/fcos.py) that MSAD's teacher and students wrap.

Differences from detectron2 v0.6's ``FCOS``: a learnable scalar scale per level on the box
regression, GroupNorm towers whose group count is checked against the channels, size ranges
inclusive at both ends, FCOS's own GIoU loss (IoU smoothed by +1 in stride units,
:func:`fcos_giou_loss`) weighted *and normalised* by the centerness targets, the
class-probability threshold applied before centerness (0.05), and P6/P7 computed from C5 (a
config matter, configs/common/models/fcos.py).

Levels are identified by their index only: ``FCOS.strides[i]`` and ``FCOS.size_ranges[i]`` belong
to the i-th map of ``head_in_features`` and the head's i-th scale to the i-th input map. MSAD's
low-resolution path relies on this: it feeds P2..P6 of a half-size image in place of P3..P7 (same
map sizes), and they are trained and decoded with P3..P7's strides, ranges and scales.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.distributed as dist
from fvcore.nn import sigmoid_focal_loss_jit
from torch import Tensor, nn
from torch.nn import functional as F

from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec, batched_nms, get_norm
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.modeling.meta_arch.dense_detector import DenseDetector
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils import comm

__all__ = [
    "FCOS", "FCOSHead", "add_fcos_config", "level_locations", "boxes_from_distances", "centerness_targets",
    "fcos_giou_loss",
]

# the authors' (and FCOS's) regression ranges of P3..P7, in input pixels
DEFAULT_SIZE_RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, math.inf))


def level_locations(height: int, width: int, stride: int, device: torch.device) -> Tensor:
    """(height * width, 2) image coordinates (x, y) of a feature map's cells, row-major like the
    flattened predictions. Cell (row i, column j) is the point (stride * j + stride // 2,
    stride * i + stride // 2): FCOS's convention (integer half stride, so 4 at stride 8 and 1 at
    stride 2), which puts the point near the centre of the pixels the cell covers."""
    xs = torch.arange(width, dtype=torch.float32, device=device) * stride + stride // 2
    ys = torch.arange(height, dtype=torch.float32, device=device) * stride + stride // 2
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


def boxes_from_distances(points: Tensor, distances: Tensor) -> Tensor:
    """(R, 4) XYXY boxes spanned by distances (l, t, r, b) to the left, top, right and bottom
    sides from (R, 2) points (x, y)."""
    return torch.cat([points - distances[:, :2], points + distances[:, 2:]], dim=1)


def centerness_targets(distances: Tensor) -> Tensor:
    """FCOS's centerness sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of (P, 4) positive
    distances (l, t, r, b): 1 at a box's centre, towards 0 at its sides."""
    left_right, top_bottom = distances[:, [0, 2]], distances[:, [1, 3]]
    horizontal = left_right.min(dim=1).values / left_right.max(dim=1).values
    vertical = top_bottom.min(dim=1).values / top_bottom.max(dim=1).values
    return torch.sqrt(horizontal * vertical)


def fcos_giou_loss(pred_distances: Tensor, gt_distances: Tensor) -> Tensor:
    """
    (R,) GIoU losses of the boxes spanned around the same points by (R, 4) predicted and target
    distances (l, t, r, b), in the form of FCOS's official code, which the MSAD authors train
    with: areas from the sums of opposite distances, IoU = (I + 1) / (U + 1), enclosing area C
    (plus 1e-7), loss 1 - (IoU - (C - U) / C).

    The +1 makes the loss depend on the unit: FCOS applies it to stride-unit distances, where it
    softens the loss of boxes a few strides wide (predicting (1, 1, 1, 1) for (2, 2, 2, 2) costs
    1 - 5/17 = 0.706 instead of plain GIoU's 0.75), so this must receive stride units.
    """
    def area(distances):  # of the box spanned by (l, t, r, b) around its point
        return (distances[:, 0] + distances[:, 2]) * (distances[:, 1] + distances[:, 3])

    intersection = area(torch.minimum(pred_distances, gt_distances))
    enclosing = area(torch.maximum(pred_distances, gt_distances)) + 1e-7
    union = area(pred_distances) + area(gt_distances) - intersection
    iou = (intersection + 1) / (union + 1)
    return 1 - (iou - (enclosing - union) / enclosing)


def _mean_over_processes(value: Tensor) -> float:
    """A scalar averaged over the training processes (itself with one process): every process
    normalises its loss sums by the batch-wide mean count, as the authors and detectron2 do."""
    if comm.get_world_size() > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= comm.get_world_size()
    return value.item()


class FCOSHead(nn.Module):
    """
    The authors' FCOS head, shared by all levels: a classification tower and a box tower of
    conv3x3 + norm + ReLU each (4 convs of 256 with GroupNorm(32) in the paper), class logits on
    the classification tower, and box distances and centerness on the box tower (the authors'
    placement; FCOS's first version put centerness on the classification tower).

    Box distances are ``relu(scale_i * conv(box_tower))`` with a learnable scale per level i,
    in units of the level's stride (the meta-architecture multiplies by the stride to decode).
    Initialisation: every conv weight normal(0, 0.01); tower and logits biases 0 except the
    logits' -log((1 - p) / p) for prior probability p. The box and centerness convs have no
    bias, as in the authors' code.
    """

    @configurable
    def __init__(
        self,
        *,
        input_shape: List[ShapeSpec],
        num_classes: int,
        conv_dims: Sequence[int],
        norm: str = "GN",
        num_groups: int = 32,
        prior_prob: float = 0.01,
    ):
        """
        Args:
            input_shape: one ShapeSpec per level (all with the same channels); their number is
                the number of per-level scales.
            num_classes: number of foreground classes.
            conv_dims: output channels of each tower conv (the same in both towers).
            norm: "GN" for GroupNorm(``num_groups``), "" for none, or any other
                ``detectron2.layers.get_norm`` name (shared by the levels).
            num_groups: GroupNorm's group count; must divide every entry of ``conv_dims``.
            prior_prob: foreground probability of the initial class logits.
        """
        super().__init__()
        channels = {shape.channels for shape in input_shape}
        if len(channels) != 1:
            raise ValueError(
                f"FCOSHead shares its towers across levels, so every level needs the same channels, "
                f"got {[shape.channels for shape in input_shape]}: give the FPN one out_channels"
            )
        if not conv_dims:
            raise ValueError("conv_dims is empty: give the tower convs' channels, e.g. [256] * 4")
        in_channels = channels.pop()
        self.cls_tower = self._tower(in_channels, conv_dims, norm, num_groups)
        self.bbox_tower = self._tower(in_channels, conv_dims, norm, num_groups)
        self.cls_logits = nn.Conv2d(conv_dims[-1], num_classes, kernel_size=3, padding=1)
        self.bbox_pred = nn.Conv2d(conv_dims[-1], 4, kernel_size=3, padding=1, bias=False)
        self.centerness = nn.Conv2d(conv_dims[-1], 1, kernel_size=3, padding=1, bias=False)
        self.scales = nn.Parameter(torch.ones(len(input_shape)))

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0.0)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: List[ShapeSpec]) -> dict:
        """MODEL.FCOS: NUM_CLASSES, NUM_CONVS convs per tower as wide as the input (as detectron2's
        RetinaNet head), NORM, NUM_GROUPS and PRIOR_PROB."""
        fcos = cfg.MODEL.FCOS
        return {
            "input_shape": input_shape,
            "num_classes": fcos.NUM_CLASSES,
            "conv_dims": [input_shape[0].channels] * fcos.NUM_CONVS,
            "norm": fcos.NORM,
            "num_groups": fcos.NUM_GROUPS,
            "prior_prob": fcos.PRIOR_PROB,
        }

    @staticmethod
    def _tower(in_channels: int, conv_dims: Sequence[int], norm: str, num_groups: int) -> nn.Sequential:
        layers = []
        for out_channels in conv_dims:
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
            if norm == "GN":
                if out_channels % num_groups:
                    raise ValueError(
                        f"GroupNorm with num_groups={num_groups} needs channels divisible by it, but a "
                        f"tower conv has {out_channels}: make conv_dims multiples of {num_groups} or set "
                        f"num_groups to a divisor of {out_channels}"
                    )
                layers.append(nn.GroupNorm(num_groups, out_channels))
            elif norm:
                layers.append(get_norm(norm, out_channels))
            layers.append(nn.ReLU())
            in_channels = out_channels
        return nn.Sequential(*layers)

    def forward(self, features: List[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """
        Args:
            features: one (N, C, Hi, Wi) map per level, in the order of the head's levels.

        Returns:
            Per level: class logits (N, K, Hi, Wi), box distances l, t, r, b in stride units
            (N, 4, Hi, Wi) and centerness logits (N, 1, Hi, Wi).
        """
        if len(features) != len(self.scales):
            raise ValueError(
                f"FCOSHead was built for {len(self.scales)} levels but got {len(features)} feature maps: "
                "pass one map per level of head_in_features"
            )
        logits, distances, centerness = [], [], []
        for level, feature in enumerate(features):
            cls_feature = self.cls_tower(feature)
            box_feature = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_feature))
            distances.append(F.relu(self.scales[level] * self.bbox_pred(box_feature)))
            centerness.append(self.centerness(box_feature))
        return logits, distances, centerness


@META_ARCH_REGISTRY.register()
class FCOS(DenseDetector):
    """
    FCOS (Tian et al. 2019) with the MSAD authors' targets, losses and inference.

    Every location (cell centre, :func:`level_locations`) of level i is a candidate for the boxes
    that contain it (with center sampling: that contain it within ``center_sampling_radius *
    stride_i`` of the box centre, the region cut to the box) and whose largest distance
    max(l, t, r, b) from it lies in ``size_ranges[i]`` (both ends included); of several
    candidates it regresses the smallest-area box, and it is background without any. Losses:
    sigmoid focal loss over all locations and centerness BCE over the positives, both divided by
    the number of positives; FCOS's GIoU loss of the positives' stride-unit distances
    (:func:`fcos_giou_loss`) weighted by their centerness targets and divided by the targets' sum
    (counts and sums averaged over processes).

    Inference per level: classes with probability above ``test_score_thresh``, the
    ``test_topk_candidates`` best by probability x centerness, score sqrt(probability x
    centerness); then boxes clipped to the image, class-wise NMS and the
    ``max_detections_per_image`` best. Returns ``Instances`` with ``pred_boxes``, ``scores`` and
    ``pred_classes``, like RetinaNet.

    ``forward_training`` / ``forward_inference`` follow ``DenseDetector``: they take the feature
    maps and the head's predictions, so other models can run them on features they compute.

    yacs: ``MODEL.META_ARCHITECTURE = "FCOS"`` with the options of ``add_fcos_config``.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        head_in_features: List[str],
        num_classes: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        size_ranges: Sequence[Sequence[float]] = DEFAULT_SIZE_RANGES,
        center_sampling_radius: float = 1.5,
        focal_loss_alpha: float = 0.25,
        focal_loss_gamma: float = 2.0,
        test_score_thresh: float = 0.05,
        test_topk_candidates: int = 1000,
        test_nms_thresh: float = 0.6,
        max_detections_per_image: int = 100,
    ):
        """
        Args:
            backbone, head, pixel_mean, pixel_std: as in ``DenseDetector``; the head maps the
                list of ``head_in_features`` maps to (logits, box distances, centerness) lists.
            head_in_features: backbone outputs the head reads, finest first; their strides
                become ``self.strides`` (level i's stride, however its features are computed).
            num_classes: number of foreground classes.
            size_ranges: per level, (low, high) of max(l, t, r, b) in input pixels; -1 and
                ``math.inf`` for open ends.
            center_sampling_radius: positives lie within this many strides of a box centre;
                0 turns center sampling off (every location inside a box is a candidate).
            focal_loss_alpha, focal_loss_gamma: of the classification focal loss.
            test_score_thresh: minimum class probability (before centerness) of a candidate.
            test_topk_candidates: candidates kept per level before NMS.
            test_nms_thresh: IoU threshold of the class-wise NMS.
            max_detections_per_image: detections kept per image after NMS.
        """
        super().__init__(backbone, head, head_in_features, pixel_mean=pixel_mean, pixel_std=pixel_std)
        shapes = backbone.output_shape()
        missing = [name for name in head_in_features if name not in shapes]
        if missing:
            raise ValueError(
                f"head_in_features {missing} are not backbone outputs {sorted(shapes)}: pick from those "
                "(for P6/P7 give the FPN a LastLevelP6P7 top block)"
            )
        if len(size_ranges) != len(head_in_features):
            raise ValueError(
                f"{len(size_ranges)} size_ranges for {len(head_in_features)} head_in_features: give one "
                "(low, high) range per level"
            )
        if center_sampling_radius < 0:
            raise ValueError(f"center_sampling_radius={center_sampling_radius} must be >= 0 (0 turns it off)")
        self.strides = [shapes[name].stride for name in head_in_features]
        self.size_ranges = [(float(low), float(high)) for low, high in size_ranges]
        self.num_classes = num_classes
        self.center_sampling_radius = float(center_sampling_radius)
        self.focal_loss_alpha = focal_loss_alpha
        self.focal_loss_gamma = focal_loss_gamma
        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        """The backbone of MODEL.BACKBONE, an ``FCOSHead`` on its MODEL.FCOS.IN_FEATURES,
        MODEL.FCOS.*, MODEL.PIXEL_MEAN/PIXEL_STD and TEST.DETECTIONS_PER_IMAGE."""
        fcos = cfg.MODEL.FCOS
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        missing = [name for name in fcos.IN_FEATURES if name not in shapes]
        if missing:
            raise ValueError(
                f"MODEL.FCOS.IN_FEATURES {missing} are not outputs of the {cfg.MODEL.BACKBONE.NAME} backbone "
                f"{sorted(shapes)}: pick from those"
            )
        return {
            "backbone": backbone,
            "head": FCOSHead(cfg, [shapes[name] for name in fcos.IN_FEATURES]),
            "head_in_features": fcos.IN_FEATURES,
            "num_classes": fcos.NUM_CLASSES,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "size_ranges": fcos.SIZE_RANGES,
            "center_sampling_radius": fcos.CENTER_SAMPLING_RADIUS,
            "focal_loss_alpha": fcos.FOCAL_LOSS_ALPHA,
            "focal_loss_gamma": fcos.FOCAL_LOSS_GAMMA,
            "test_score_thresh": fcos.SCORE_THRESH_TEST,
            "test_topk_candidates": fcos.TOPK_CANDIDATES_TEST,
            "test_nms_thresh": fcos.NMS_THRESH_TEST,
            "max_detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
        }

    def locations(self, features: List[Tensor]) -> List[Tensor]:
        """Per level, the (Hi * Wi, 2) image points of its cells (at level i's stride)."""
        if len(features) != len(self.strides):
            raise ValueError(
                f"got {len(features)} feature maps for {len(self.strides)} levels: pass one map per level "
                "of head_in_features"
            )
        return [
            level_locations(feature.shape[-2], feature.shape[-1], stride, feature.device)
            for feature, stride in zip(features, self.strides)
        ]

    def forward_training(
        self,
        images: ImageList,
        features: List[Tensor],
        predictions: List[List[Tensor]],
        gt_instances: List[Instances],
    ):
        """Losses ``loss_fcos_cls``, ``loss_fcos_loc``, ``loss_fcos_ctr`` of the head's
        ``predictions`` on ``features`` (list per level) against ``gt_instances`` (input pixels)."""
        pred_logits, pred_distances, pred_centerness = self._transpose_dense_predictions(
            predictions, [self.num_classes, 4, 1]
        )
        gt_labels, gt_distances = self.label_locations(self.locations(features), gt_instances)
        return self.losses(pred_logits, pred_distances, pred_centerness, gt_labels, gt_distances)

    @torch.no_grad()
    def label_locations(
        self, locations: List[Tensor], gt_instances: List[Instances]
    ) -> Tuple[List[Tensor], List[Tensor]]:
        """
        Args:
            locations: per level, (Ri, 2) points from :meth:`locations`.
            gt_instances: per image, ``gt_boxes`` and ``gt_classes``.

        Returns:
            Per image, over all levels' locations in order: class labels (R,) with
            ``num_classes`` for background, and distances (R, 4) l, t, r, b to the matched box
            divided by the level's stride (0 for background).
        """
        points = torch.cat(locations)
        num_points = len(points)

        def per_point(values):  # one value per level -> one per point
            return torch.cat([points.new_full((len(loc),), value) for loc, value in zip(locations, values)])

        strides = per_point(self.strides)
        lower = per_point([low for low, _ in self.size_ranges])
        upper = per_point([high for _, high in self.size_ranges])

        labels, distances = [], []
        for gt_per_image in gt_instances:
            boxes = gt_per_image.gt_boxes.tensor
            if len(boxes) == 0:
                labels.append(torch.full((num_points,), self.num_classes, dtype=torch.long, device=points.device))
                distances.append(points.new_zeros((num_points, 4)))
                continue
            x, y = points[:, 0:1], points[:, 1:2]
            box_distances = torch.stack(
                [x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], dim=2
            )  # (R, G, 4)
            if self.center_sampling_radius > 0:
                candidate = self._inside_center_regions(points, boxes, strides)
            else:
                candidate = box_distances.min(dim=2).values > 0
            reach = box_distances.max(dim=2).values
            candidate &= (reach >= lower[:, None]) & (reach <= upper[:, None])

            areas = gt_per_image.gt_boxes.area()[None].expand(num_points, -1)
            min_area, matched = areas.masked_fill(~candidate, math.inf).min(dim=1)
            positive = torch.isfinite(min_area)
            labels.append(torch.where(positive, gt_per_image.gt_classes[matched], self.num_classes))
            matched_distances = box_distances[torch.arange(num_points, device=points.device), matched]
            distances.append(matched_distances / strides[:, None] * positive[:, None])
        return labels, distances

    def _inside_center_regions(self, points: Tensor, boxes: Tensor, strides: Tensor) -> Tensor:
        """(R, G): whether each point lies strictly inside each box's center region, the square
        of half-side ``center_sampling_radius`` x the point's stride around the box centre, cut
        to the box."""
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        half_side = self.center_sampling_radius * strides[:, None, None]
        region_min = torch.maximum(centers[None] - half_side, boxes[None, :, :2])
        region_max = torch.minimum(centers[None] + half_side, boxes[None, :, 2:])
        points = points[:, None, :]
        return ((points > region_min) & (points < region_max)).all(dim=2)

    def losses(
        self,
        pred_logits: List[Tensor],
        pred_distances: List[Tensor],
        pred_centerness: List[Tensor],
        gt_labels: List[Tensor],
        gt_distances: List[Tensor],
    ):
        """
        Args:
            pred_logits, pred_distances, pred_centerness: per level, (N, Ri, K), (N, Ri, 4) and
                (N, Ri, 1) predictions.
            gt_labels, gt_distances: per image, the targets of :meth:`label_locations`.
        """
        gt_labels = torch.stack(gt_labels)
        positive = gt_labels != self.num_classes
        num_positive = _mean_over_processes(positive.sum().float())
        normalizer = max(num_positive, 1.0)

        logits = torch.cat(pred_logits, dim=1)
        cls_targets = F.one_hot(gt_labels, self.num_classes + 1)[..., :-1].to(logits.dtype)
        loss_cls = sigmoid_focal_loss_jit(
            logits, cls_targets, alpha=self.focal_loss_alpha, gamma=self.focal_loss_gamma, reduction="sum"
        )

        gt_distances = torch.stack(gt_distances)[positive]
        distances = torch.cat(pred_distances, dim=1)[positive]
        centerness = torch.cat(pred_centerness, dim=1).squeeze(2)[positive]
        ctr_targets = centerness_targets(gt_distances)
        ctr_normalizer = max(_mean_over_processes(ctr_targets.sum()), 1e-6)
        loss_loc = fcos_giou_loss(distances, gt_distances)
        loss_ctr = F.binary_cross_entropy_with_logits(centerness, ctr_targets, reduction="sum")
        return {
            "loss_fcos_cls": loss_cls / normalizer,
            "loss_fcos_loc": (loss_loc * ctr_targets).sum() / ctr_normalizer,
            "loss_fcos_ctr": loss_ctr / normalizer,
        }

    def forward_inference(
        self, images: ImageList, features: List[Tensor], predictions: List[List[Tensor]]
    ) -> List[Instances]:
        """Detections per image of ``images`` (its ``image_sizes`` clip the boxes), in input pixels."""
        pred_logits, pred_distances, pred_centerness = self._transpose_dense_predictions(
            predictions, [self.num_classes, 4, 1]
        )
        locations = self.locations(features)
        return [
            self.inference_single_image(
                locations,
                [x[index] for x in pred_logits],
                [x[index] for x in pred_distances],
                [x[index] for x in pred_centerness],
                image_size,
            )
            for index, image_size in enumerate(images.image_sizes)
        ]

    def inference_single_image(
        self,
        locations: List[Tensor],
        logits: List[Tensor],
        distances: List[Tensor],
        centerness: List[Tensor],
        image_size: Tuple[int, int],
    ) -> Instances:
        """Detections of one image from its per-level (Ri, K), (Ri, 4), (Ri, 1) predictions."""
        detections = Instances.cat(
            [
                self._decode_level(*level, image_size)
                for level in zip(locations, self.strides, logits, distances, centerness)
            ]
        )
        detections.pred_boxes.clip(image_size)
        keep = batched_nms(
            detections.pred_boxes.tensor, detections.scores, detections.pred_classes, self.test_nms_thresh
        )
        return detections[keep[: self.max_detections_per_image]]

    def _decode_level(
        self,
        locations: Tensor,
        stride: int,
        logits: Tensor,
        distances: Tensor,
        centerness: Tensor,
        image_size: Tuple[int, int],
    ) -> Instances:
        """One level's candidates: (location, class) pairs over the probability threshold, the
        top-k by probability x centerness, boxes decoded at the level's stride."""
        probabilities = logits.sigmoid()
        location_index, classes = torch.nonzero(probabilities > self.test_score_thresh).unbind(dim=1)
        ranking = probabilities[location_index, classes] * centerness[location_index, 0].sigmoid()
        num_candidates = ranking.shape[0]  # a tensor while traced for export: k stays input-dependent
        if isinstance(num_candidates, Tensor):
            num_kept = torch.clamp(num_candidates, max=self.test_topk_candidates)
        else:
            num_kept = min(self.test_topk_candidates, num_candidates)
        ranking, order = ranking.topk(num_kept)
        location_index, classes = location_index[order], classes[order]
        boxes = boxes_from_distances(locations[location_index], distances[location_index] * stride)
        return Instances(image_size, pred_boxes=Boxes(boxes), scores=ranking.sqrt(), pred_classes=classes)


def add_fcos_config(cfg: CfgNode) -> None:
    """Add ``cfg.MODEL.FCOS`` with the defaults of configs/common/models/fcos.py (the MSAD authors'
    FCOS R50-FPN): NUM_CLASSES, IN_FEATURES, the head's NUM_CONVS, NORM, NUM_GROUPS, PRIOR_PROB,
    the targets' SIZE_RANGES (input pixels, ``.inf`` in YAML for the open end) and
    CENTER_SAMPLING_RADIUS, the focal loss and the test-time thresholds. Detections per image:
    TEST.DETECTIONS_PER_IMAGE."""
    cfg.MODEL.FCOS = CfgNode()
    cfg.MODEL.FCOS.NUM_CLASSES = 80
    cfg.MODEL.FCOS.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
    cfg.MODEL.FCOS.NUM_CONVS = 4
    cfg.MODEL.FCOS.NORM = "GN"
    cfg.MODEL.FCOS.NUM_GROUPS = 32
    cfg.MODEL.FCOS.PRIOR_PROB = 0.01
    cfg.MODEL.FCOS.SIZE_RANGES = [[float(low), float(high)] for low, high in DEFAULT_SIZE_RANGES]
    cfg.MODEL.FCOS.CENTER_SAMPLING_RADIUS = 1.5
    cfg.MODEL.FCOS.FOCAL_LOSS_ALPHA = 0.25
    cfg.MODEL.FCOS.FOCAL_LOSS_GAMMA = 2.0
    cfg.MODEL.FCOS.SCORE_THRESH_TEST = 0.05
    cfg.MODEL.FCOS.TOPK_CANDIDATES_TEST = 1000
    cfg.MODEL.FCOS.NMS_THRESH_TEST = 0.6

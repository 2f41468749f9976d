"""
The weakly supervised detector of ResNet-WS: backbone -> RoIPool of precomputed proposals ->
optional box head -> neck -> WSDDN / OICR / OICR+REG head, trained from image-level labels only;
and its test-time augmentation over scales and horizontal flip. At inference, inputs without
proposals get them from the model's ``proposal_generator`` (e.g. Selective Search), so that the
predictor and the demo work on any image.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec, cat
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, DatasetMapperTTA, build_backbone
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.modeling.roi_heads.fast_rcnn import fast_rcnn_inference_single_image
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils.events import get_event_storage

from projects.common.modeling import normalize_and_pad, register_pixel_statistics

from .backbones import Res5BoxHead
from .heads import build_weak_detection_head
from .neck import RedundantAdaptationNeck

WSOD_NECKS = {"RedundantAdaptationNeck": RedundantAdaptationNeck, "Res5BoxHead": Res5BoxHead}
"""Necks a yacs config can name (MODEL.WSOD.NECK): ResNet-WS's adaptation neck, or conv5_x per
RoI for the plain-ResNet C4 baseline."""


def _selective_search_from_config(options: CfgNode):
    """``SelectiveSearchProposals`` of MODEL.WSOD.SELECTIVE_SEARCH (imported here: the proposal
    package is not imported with the model)."""
    from .proposals.search import SelectiveSearchProposals

    return SelectiveSearchProposals(mode=options.MODE, max_proposals=options.MAX_PROPOSALS,
                                    min_size=options.MIN_SIZE, max_image_size=options.MAX_IMAGE_SIZE)


@META_ARCH_REGISTRY.register()
class WeaklySupervisedRCNN(nn.Module):
    """
    Fast R-CNN-style weakly supervised detector on precomputed proposals (ResNet-WS, WSDDN/OICR).

    Inputs are detectron2's: a list of dicts with ``"image"`` (C, H, W) in ``input_format``,
    ``"proposals"`` (``Instances`` with ``proposal_boxes`` and ``objectness_logits`` in the
    image's coordinates, what ``DatasetMapper(precomputed_proposal_topk=K)`` makes of a
    detectron2 proposal file; at inference, inputs without get them from ``proposal_generator``
    when one is set), optional ``"height"``/``"width"`` (output size) and, in training,
    ``"instances"`` whose distinct ``gt_classes`` are the image-level label. Boxes of the
    annotations are never read. Images without any class are left out of the losses and counted
    in the EventStorage as ``weak_supervision/images_without_labels``.

    Proposal features: ``self.backbone``'s ``in_feature`` map, RoIPool at 1 / its stride
    (``self.pooler``), multiplied by (objectness_logits + 1) when ``scale_by_proposal_score``
    (the authors multiply by the raw stored proposal score + 1: MCG's score, 1 for Selective
    Search files; detectron2 stores the file's "scores" unchanged as "objectness_logits", so no
    sigmoid is applied), then ``self.box_head`` if given (the res5 stage of a plain C4 ResNet;
    None for ResNet-WS) and ``self.neck``. The attribute names ``backbone`` and ``neck`` match
    the classification model, so its checkpoint (``backbone.*``, ``neck.*``, ``fc.*``) loads
    directly with ``DetectionCheckpointer`` (``fc.*`` is reported as unused).

    Training returns the head's losses. Inference returns ``[{"instances": Instances}]`` with
    ``pred_boxes``, ``scores``, ``pred_classes`` in the ``height`` x ``width`` output frame,
    after per-class NMS; ``predict_proposals`` gives the per-proposal scores before NMS.

    yacs: ``MODEL.META_ARCHITECTURE = "WeaklySupervisedRCNN"`` with the options of
    ``add_resnet_ws_config`` (see ``from_config``).
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        neck: nn.Module,
        num_classes: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "BGR",
        head_type: str = "oicr",
        head_options: Optional[Dict] = None,
        box_head: Optional[nn.Module] = None,
        pooler_resolution: int = 7,
        pooler_type: str = "ROIPool",
        scale_by_proposal_score: bool = True,
        test_score_thresh: Optional[float] = None,
        test_nms_thresh: Optional[float] = None,
        test_detections_per_image: int = 100,
        proposal_generator: Optional[Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]] = None,
    ):
        """
        Args:
            backbone: any detectron2 backbone; ``in_feature`` must be one of its outputs.
            in_feature: the feature map proposals are pooled from, e.g. "res5".
            neck: maps the (box head's) pooled features to (R, D) vectors and exposes D as
                ``output_size``, e.g. ``RedundantAdaptationNeck``.
            num_classes: number of foreground classes.
            pixel_mean, pixel_std: per-channel normalisation, in ``input_format`` channel order.
            input_format: channel order of the input images.
            head_type: "wsddn", "oicr" or "oicr_reg" (``heads.build_weak_detection_head``).
            head_options: extra constructor arguments of the head, e.g. ``{"num_refinements": 3}``.
            box_head: module applied to the pooled features before the neck, or None.
            pooler_resolution, pooler_type: detectron2 ``ROIPooler`` output size and type
                (the paper: 7x7 "ROIPool"; RoIAlign was worse).
            scale_by_proposal_score: multiply pooled features by (objectness_logits + 1).
            test_score_thresh, test_nms_thresh: detection score threshold and per-class NMS IoU;
                None takes the head's (WSDDN: 1e-9, 0.5; OICR: 1e-5, 0.3, the authors' configs).
            test_detections_per_image: detections kept per image after NMS.
            proposal_generator: where inference gets the proposals of an input that has none
                (training always needs precomputed ones): called with the input image as
                (H, W, 3) uint8 BGR, it returns (N, 4) XYXY boxes in its pixels and (N,) scores
                (stored as ``objectness_logits``), e.g.
                ``projects.resnet_ws.proposals.SelectiveSearchProposals``; None: every input
                must carry its proposals.
        """
        super().__init__()
        output_shapes = backbone.output_shape()
        if in_feature not in output_shapes:
            raise ValueError(
                f"in_feature={in_feature!r} is not produced by the backbone, whose outputs are "
                f"{sorted(output_shapes)}: pick one of them or add it to the backbone's out_features"
            )
        if not hasattr(neck, "output_size"):
            raise AttributeError(
                f"the neck {type(neck).__name__} has no 'output_size' (its feature width): give it one, "
                "as RedundantAdaptationNeck does"
            )
        self.backbone = backbone
        self.in_feature = in_feature
        self.pooler = ROIPooler(
            output_size=pooler_resolution,
            scales=(1.0 / output_shapes[in_feature].stride,),
            sampling_ratio=0,
            pooler_type=pooler_type,
        )
        self.box_head = box_head
        self.neck = neck
        self.head = build_weak_detection_head(head_type, neck.output_size, num_classes, **(head_options or {}))
        self.head_type = head_type
        self.num_classes = num_classes
        self.input_format = input_format
        self.scale_by_proposal_score = scale_by_proposal_score
        self.test_score_thresh = self.head.TEST_SCORE_THRESH if test_score_thresh is None else test_score_thresh
        self.test_nms_thresh = self.head.TEST_NMS_THRESH if test_nms_thresh is None else test_nms_thresh
        self.test_detections_per_image = test_detections_per_image
        if proposal_generator is not None and input_format not in ("BGR", "RGB"):
            raise ValueError(
                f"proposal_generator needs colour images, but input_format={input_format!r}: use 'BGR' or "
                "'RGB', or give every input precomputed proposals (proposal_generator=None)"
            )
        self.proposal_generator = proposal_generator
        register_pixel_statistics(self, pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        """The backbone of MODEL.BACKBONE, MODEL.WSOD.* (the neck ``WSOD_NECKS[NECK]`` on the
        IN_FEATURE map pooled by MODEL.ROI_BOX_HEAD.POOLER_TYPE at POOLER_RESOLUTION; test
        thresholds None: the head's; PROPOSAL_GENERATOR "SelectiveSearch" with the options of
        MODEL.WSOD.SELECTIVE_SEARCH, or "": none), MODEL.PIXEL_MEAN/PIXEL_STD, INPUT.FORMAT and
        TEST.DETECTIONS_PER_IMAGE."""
        wsod = cfg.MODEL.WSOD
        if wsod.NECK not in WSOD_NECKS:
            raise ValueError(f"MODEL.WSOD.NECK={wsod.NECK!r} is not one of {sorted(WSOD_NECKS)}")
        if wsod.PROPOSAL_GENERATOR not in ("", "SelectiveSearch"):
            raise ValueError(
                f"MODEL.WSOD.PROPOSAL_GENERATOR={wsod.PROPOSAL_GENERATOR!r}: use \"SelectiveSearch\" (boxes made for "
                "inputs without proposals) or \"\" (every input brings its own)"
            )
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        if wsod.IN_FEATURE not in shapes:
            raise ValueError(
                f"MODEL.WSOD.IN_FEATURE={wsod.IN_FEATURE!r} is not an output of the {cfg.MODEL.BACKBONE.NAME} "
                f"backbone {sorted(shapes)}: pick one of them or add it to MODEL.RESNETS.OUT_FEATURES"
            )
        resolution = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
        pooled_shape = ShapeSpec(channels=shapes[wsod.IN_FEATURE].channels, height=resolution, width=resolution)
        return {
            "backbone": backbone,
            "in_feature": wsod.IN_FEATURE,
            "neck": WSOD_NECKS[wsod.NECK](cfg, pooled_shape),
            "num_classes": wsod.NUM_CLASSES,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "input_format": cfg.INPUT.FORMAT,
            "head_type": wsod.HEAD_TYPE,
            "pooler_resolution": resolution,
            "pooler_type": cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE,
            "scale_by_proposal_score": wsod.SCALE_BY_PROPOSAL_SCORE,
            "test_score_thresh": wsod.SCORE_THRESH_TEST,
            "test_nms_thresh": wsod.NMS_THRESH_TEST,
            "test_detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "proposal_generator": _selective_search_from_config(wsod.SELECTIVE_SEARCH) if wsod.PROPOSAL_GENERATOR else None,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        """Normalise the images and pad them into one batch, as GeneralizedRCNN does."""
        images = [x["image"] for x in batched_inputs]
        return normalize_and_pad(images, self.pixel_mean, self.pixel_std, self.backbone.size_divisibility)

    def forward(self, batched_inputs: List[Dict]):
        """Loss dict in training mode, list of ``{"instances"}`` in eval mode."""
        if not self.training:
            return self.inference(batched_inputs)
        image_labels = self.image_labels(batched_inputs)
        unlabelled = int((~image_labels.any(dim=1)).sum())
        get_event_storage().put_scalar("weak_supervision/images_without_labels", unlabelled)
        features, proposals = self.proposal_features(batched_inputs)
        return self.head.losses(features, [p.proposal_boxes for p in proposals], image_labels)

    def proposal_features(self, batched_inputs: List[Dict]) -> Tuple[torch.Tensor, List[Instances]]:
        """(R, D) neck features of all proposals of the batch, and the per-image proposals."""
        proposals = self._proposals(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        feature_map = self.backbone(images.tensor)[self.in_feature]
        pooled = self.pooler([feature_map], [p.proposal_boxes for p in proposals])
        if self.scale_by_proposal_score:
            pooled = pooled * (cat([p.objectness_logits for p in proposals]) + 1.0).view(-1, 1, 1, 1)
        if self.box_head is not None:
            pooled = self.box_head(pooled)
        return self.neck(pooled), proposals

    def image_labels(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """(N, C) multi-hot image-level labels: the distinct ``instances.gt_classes`` of each input."""
        labels = torch.zeros(len(batched_inputs), self.num_classes, device=self.device)
        for index, x in enumerate(batched_inputs):
            if "instances" not in x:
                raise KeyError(
                    f"WeaklySupervisedRCNN needs 'instances' (with gt_classes) in every training input, but "
                    f"input {index} only has {sorted(x)}: map the training set with is_train=True from "
                    "dataset dicts that carry 'annotations'"
                )
            classes = x["instances"].gt_classes.to(self.device)
            if len(classes) and not (0 <= int(classes.min()) and int(classes.max()) < self.num_classes):
                raise ValueError(
                    f"input {index} has gt_classes {classes.unique().tolist()}, outside [0, {self.num_classes}): "
                    "set num_classes to the dataset's number of classes"
                )
            labels[index, classes] = 1.0
        return labels

    def _proposals(self, batched_inputs: List[Dict]) -> List[Instances]:
        """Each input's precomputed proposals; at inference, ``proposal_generator``'s for inputs without."""
        proposals = []
        for index, x in enumerate(batched_inputs):
            if "proposals" in x:
                input_proposals = x["proposals"]
                if len(input_proposals) == 0:
                    raise ValueError(
                        f"input {index} ({x.get('file_name', 'no file_name')}) has no proposals: its proposal "
                        "file entry is empty or every proposal was filtered out (proposal_min_size)"
                    )
            elif not self.training and self.proposal_generator is not None:
                input_proposals = self.generate_proposals(x["image"])
            else:
                raise KeyError(
                    f"WeaklySupervisedRCNN needs 'proposals' in every {'training ' if self.training else ''}input, "
                    f"but input {index} only has {sorted(x)}: load proposal files with get_weak_detection_dataset_dicts"
                    "(..., proposal_files=[...]) and map with a proposal top-K (projects.resnet_ws.data)"
                    + ("" if self.training else "; or set the model's proposal_generator (e.g. SelectiveSearchProposals) "
                       "to make them for inputs that have none")
                )
            proposals.append(input_proposals.to(self.device))
        return proposals

    def generate_proposals(self, image: torch.Tensor) -> Instances:
        """``proposal_generator``'s proposals of one input image ((C, H, W) in ``input_format``, as
        the model reads it), in its pixels, highest score first."""
        if self.proposal_generator is None:
            raise ValueError(
                "this WeaklySupervisedRCNN has no proposal_generator: give the input precomputed 'proposals', "
                "or set proposal_generator (e.g. projects.resnet_ws.proposals.SelectiveSearchProposals)"
            )
        pixels = image.detach().permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        if self.input_format == "RGB":
            pixels = pixels[:, :, ::-1]
        boxes, scores = self.proposal_generator(np.ascontiguousarray(pixels))
        boxes = torch.as_tensor(np.asarray(boxes), dtype=torch.float32).reshape(-1, 4)
        scores = torch.as_tensor(np.asarray(scores), dtype=torch.float32).reshape(-1)
        if len(boxes) == 0 or len(scores) != len(boxes):
            raise ValueError(
                f"the proposal generator {self.proposal_generator!r} gave {len(boxes)} boxes and {len(scores)} "
                f"scores for a {pixels.shape[0]}x{pixels.shape[1]} image: it must find at least one box and score "
                "each (lower its min_size for small images)"
            )
        order = scores.argsort(descending=True, stable=True)
        return Instances(tuple(image.shape[-2:]), proposal_boxes=Boxes(boxes[order]), objectness_logits=scores[order])

    def predict_proposals(self, batched_inputs: List[Dict]) -> List[Instances]:
        """
        Per image, before NMS, in the input image's coordinates: ``Instances`` of its proposals
        with ``class_scores`` (R_i, C) and ``predicted_boxes`` (R_i, 4): the proposals, or
        (R_i, 4C) class-specific regressed boxes (OICR+REG). Test-time augmentation averages these.
        """
        features, proposals = self.proposal_features(batched_inputs)
        scores, boxes = self.head.inference(features, [p.proposal_boxes for p in proposals])
        return [
            Instances(p.image_size, proposal_boxes=p.proposal_boxes, class_scores=s, predicted_boxes=b)
            for p, s, b in zip(proposals, scores, boxes)
        ]

    def detect(self, class_scores: torch.Tensor, predicted_boxes: torch.Tensor, image_size) -> Instances:
        """Score threshold, per-class NMS and top detections of one image's per-proposal predictions."""
        background = torch.zeros_like(class_scores[:, :1])  # detectron2 expects a last background column
        instances, _ = fast_rcnn_inference_single_image(
            predicted_boxes,
            torch.cat([class_scores, background], dim=1),
            image_size,
            self.test_score_thresh,
            self.test_nms_thresh,
            self.test_detections_per_image,
        )
        return instances

    def inference(self, batched_inputs: List[Dict], do_postprocess: bool = True) -> List[Dict]:
        """``[{"instances"}]``, rescaled to each input's ``height`` x ``width`` when ``do_postprocess``."""
        results = []
        for x, prediction in zip(batched_inputs, self.predict_proposals(batched_inputs)):
            instances = self.detect(prediction.class_scores, prediction.predicted_boxes, prediction.image_size)
            if do_postprocess:
                height, width = prediction.image_size
                instances = detector_postprocess(instances, x.get("height", height), x.get("width", width))
            results.append({"instances": instances})
        return results


class WeaklySupervisedRCNNWithTTA(nn.Module):
    """
    Test-time augmentation of a ``WeaklySupervisedRCNN`` in the style of detectron2's
    ``GeneralizedRCNNWithTTA``: every input is re-mapped by detectron2's ``DatasetMapperTTA``
    (``ResizeShortestEdge`` to each of ``min_sizes``, each also flipped by ``HFlipTransform``
    when ``flip``), the same proposals are transformed into every view, and the per-proposal
    class scores and predicted boxes (mapped back with the inverse transform, which unflips
    them) are averaged over the views before one score threshold + per-class NMS in the
    original ``height`` x ``width`` frame, as the authors' averaging TTA does.
    """

    def __init__(
        self,
        model: WeaklySupervisedRCNN,
        *,
        min_sizes: Sequence[int] = (480, 576, 672, 768, 864, 960, 1056, 1152),
        max_size: int = 4000,
        flip: bool = True,
        batch_size: int = 1,
    ):
        """
        Args:
            model: the detector (a DistributedDataParallel wrapper is unwrapped).
            min_sizes, max_size, flip: the views (defaults: the authors' VOC test settings).
            batch_size: views per forward pass.
        """
        super().__init__()
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if not isinstance(model, WeaklySupervisedRCNN):
            raise TypeError(f"WeaklySupervisedRCNNWithTTA needs a WeaklySupervisedRCNN, got {type(model).__name__}")
        self.model = model
        self.tta_mapper = DatasetMapperTTA(min_sizes=list(min_sizes), max_size=max_size, flip=flip)
        self.batch_size = batch_size

    def forward(self, batched_inputs: List[Dict]) -> List[Dict]:
        results = []
        for x in batched_inputs:
            scores, boxes = self.merged_proposal_predictions(x)
            results.append({"instances": self.model.detect(scores, boxes, (x["height"], x["width"]))})
        return results

    @torch.no_grad()
    def merged_proposal_predictions(self, input_dict: Dict) -> Tuple[torch.Tensor, torch.Tensor]:
        """(R, C) class scores and (R, 4) or (R, 4C) boxes of the input's proposals, averaged over
        the views, boxes in the original ``height`` x ``width`` frame."""
        if "proposals" not in input_dict and "image" in input_dict and self.model.proposal_generator is not None:
            input_dict = dict(input_dict, proposals=self.model.generate_proposals(input_dict["image"]))
        for key in ("image", "height", "width", "proposals"):
            if key not in input_dict:
                raise KeyError(
                    f"test-time augmentation needs {key!r} in every input, got only {sorted(input_dict)}: "
                    "use the test mapper of projects.resnet_ws.data (it keeps height, width and proposals)"
                    + (", or give the model a proposal_generator" if key == "proposals" else "")
                )
        original_boxes = self._proposals_in_original_frame(input_dict)
        views = self.tta_mapper(input_dict)
        transforms = [view.pop("transforms") for view in views]
        for view, transform in zip(views, transforms):
            proposals = Instances(tuple(view["image"].shape[-2:]))
            proposals.proposal_boxes = Boxes(torch.from_numpy(transform.apply_box(original_boxes)))
            proposals.objectness_logits = input_dict["proposals"].objectness_logits
            view["proposals"] = proposals
        predictions = []
        for start in range(0, len(views), self.batch_size):
            predictions.extend(self.model.predict_proposals(views[start : start + self.batch_size]))
        scores = torch.stack([p.class_scores for p in predictions]).mean(dim=0)
        boxes = torch.stack(
            [self._to_original_frame(p.predicted_boxes, t) for p, t in zip(predictions, transforms)]
        ).mean(dim=0)
        return scores, boxes

    @staticmethod
    def _proposals_in_original_frame(input_dict: Dict) -> np.ndarray:
        """The input's proposals rescaled from the mapped image to ``height`` x ``width``."""
        boxes = Boxes(input_dict["proposals"].proposal_boxes.tensor.detach().to("cpu", copy=True))
        image_height, image_width = input_dict["proposals"].image_size
        boxes.scale(input_dict["width"] / image_width, input_dict["height"] / image_height)
        return boxes.tensor.numpy()

    @staticmethod
    def _to_original_frame(boxes: torch.Tensor, transform) -> torch.Tensor:
        """(R, 4k) boxes of a view mapped back by the inverse of its transform."""
        original = transform.inverse().apply_box(boxes.reshape(-1, 4).cpu().numpy())
        return torch.from_numpy(original).to(boxes.device).reshape(boxes.shape)

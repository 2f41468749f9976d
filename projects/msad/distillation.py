"""
MSAD meta-architectures: the multi-scale fusion teacher and the students it distils into.

Every model wraps an ordinary detectron2 detector (a ``DenseDetector`` such as RetinaNet or FCOS,
or a ``GeneralizedRCNN`` such as Mask R-CNN) and drives its parts on feature dicts it builds
itself; ``detector_adapter`` is the only place that knows detector types. The detector's backbone
has one level finer than its head reads (``backbone.aligned_resnet_fpn``).

Frames and padding. Training batches are the mapper's high-resolution images; they are
normalised and padded to the teacher's ``size_divisibility``. Its smallest value is
``2**level_shift x`` the backbone's (64 for a stride-32 FPN at level_shift 1): the smallest
multiple at which the low-resolution copy (nearest downsampling of the padded tensor) has P_k of
exactly the size of the high-resolution P_{k+1} on every level, P6/P7 included (their stride-2
convs round up the same way on both sides). The authors pad to 256, also aligned; the padding
is not neutral (global pooling in C-FF, zeros seen by the convs near the border), so the COCO
configs use 256 and the CPU configs the cheaper 64. All losses use the high-resolution
``ImageList`` and targets, so boxes stay in high-resolution pixels on every path.

Initialising a student. Give only ``train.init_checkpoint=<teacher run>/model_final.pth``:
a student recognises a ``MultiScaleFusionTeacher`` checkpoint (keys ``detector.*``, ``fusion.*``,
no ``teacher.*``) when ``DetectionCheckpointer`` loads it and routes it to both its frozen
``teacher`` and its own ``detector``. A student's own checkpoint holds ``teacher.*`` too, so
``--resume`` restores both and ``--eval-only`` needs no teacher file.
"""
import logging
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch import GeneralizedRCNN
from detectron2.modeling.meta_arch.dense_detector import DenseDetector
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import ImageList, Instances
from detectron2.utils.events import get_event_storage

from projects.common.modeling.preprocessing import normalize_and_pad

from .backbone import (
    DualResolutionBackbone,
    downsample_nearest,
    extract_levels,
    level_shift_of_scale,
    shifted_levels,
)
from .fusion import CrossFeatureFusion

__all__ = [
    "AlignedDistillationStudent",
    "DualResolutionStudent",
    "MultiScaleFusionTeacher",
    "aligned_distillation_loss",
    "detector_adapter",
    "detector_from_config",
    "distillation_ramp",
]

logger = logging.getLogger(__name__)

PATHS = ("high", "low", "fused")
MSAD_META_ARCHITECTURES = ("MultiScaleFusionTeacher", "AlignedDistillationStudent", "DualResolutionStudent")


class _DenseDetectorAdapter:
    """Losses and detections of a ``DenseDetector`` (RetinaNet, FCOS) on given feature maps."""

    def __init__(self, detector: DenseDetector):
        self.detector = detector
        self.level_names = list(detector.head_in_features)

    def _maps_and_predictions(self, features: Dict[str, torch.Tensor]):
        maps = [features[name] for name in self.level_names]
        return maps, self.detector.head(maps)

    def losses(self, images: ImageList, features, gt_instances: List[Instances]) -> Dict[str, torch.Tensor]:
        maps, predictions = self._maps_and_predictions(features)
        return self.detector.forward_training(images, maps, predictions, gt_instances)

    def inference(self, images: ImageList, features) -> List[Instances]:
        maps, predictions = self._maps_and_predictions(features)
        return self.detector.forward_inference(images, maps, predictions)


class _RCNNAdapter:
    """Losses and detections of a ``GeneralizedRCNN`` (RPN + RoI heads) on given feature maps."""

    def __init__(self, detector: GeneralizedRCNN):
        if detector.proposal_generator is None:
            raise ValueError(
                "MSAD runs the detector's RPN on every path's features; precomputed proposals are not "
                "supported: give the GeneralizedRCNN a proposal_generator"
            )
        self.detector = detector
        names = set(detector.proposal_generator.in_features)
        for attribute in ("in_features", "box_in_features", "mask_in_features", "keypoint_in_features"):
            names.update(getattr(detector.roi_heads, attribute, None) or [])
        self.level_names = sorted(names)

    def losses(self, images: ImageList, features, gt_instances: List[Instances]) -> Dict[str, torch.Tensor]:
        proposals, proposal_losses = self.detector.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.detector.roi_heads(images, features, proposals, gt_instances)
        return {**detector_losses, **proposal_losses}

    def inference(self, images: ImageList, features) -> List[Instances]:
        proposals, _ = self.detector.proposal_generator(images, features, None)
        results, _ = self.detector.roi_heads(images, features, proposals, None)
        return results


def detector_adapter(detector: nn.Module):
    """The adapter running ``detector``'s head(s) on feature dicts: ``level_names`` (the levels its
    heads read), ``losses(images, features, gt_instances)`` and
    ``inference(images, features)`` (Instances in the frame of ``images.image_sizes``)."""
    if isinstance(detector, DenseDetector):
        return _DenseDetectorAdapter(detector)
    if isinstance(detector, GeneralizedRCNN):
        return _RCNNAdapter(detector)
    raise TypeError(
        f"MSAD wraps a detectron2 DenseDetector (RetinaNet, FCOS) or GeneralizedRCNN, got "
        f"{type(detector).__name__}"
    )


def _level_strides(detector: nn.Module, level_names: Sequence[str]) -> Dict[str, int]:
    """``{level: stride}`` of the levels the detector reads, finest first."""
    shapes = detector.backbone.output_shape()
    missing = [name for name in level_names if name not in shapes]
    if missing:
        raise ValueError(f"the detector reads {missing}, which its backbone does not output ({sorted(shapes)})")
    return {name: shapes[name].stride for name in sorted(level_names, key=lambda name: shapes[name].stride)}


def detector_from_config(cfg: CfgNode) -> nn.Module:
    """The detector the MSAD models wrap, built from ``cfg`` as the meta-architecture
    MODEL.MSAD.DETECTOR ("FCOS", "RetinaNet", "GeneralizedRCNN"...) with ``cfg``'s backbone."""
    name = cfg.MODEL.MSAD.DETECTOR
    if name in MSAD_META_ARCHITECTURES:
        raise ValueError(
            f"MODEL.MSAD.DETECTOR={name!r} is an MSAD model: name the detector it wraps, e.g. \"FCOS\" or "
            "\"GeneralizedRCNN\" (MODEL.META_ARCHITECTURE names the MSAD model)"
        )
    return META_ARCH_REGISTRY.get(name)(cfg)


def _normalize_and_pad(detector: nn.Module, batched_inputs: List[Dict], size_divisibility: int) -> ImageList:
    """The detector's normalisation, then one batch padded to a multiple of ``size_divisibility``."""
    return normalize_and_pad([x["image"] for x in batched_inputs], detector.pixel_mean, detector.pixel_std,
                             size_divisibility)


def _ground_truth(batched_inputs: List[Dict], device: torch.device) -> List[Instances]:
    lacking = [index for index, x in enumerate(batched_inputs) if "instances" not in x]
    if lacking:
        raise KeyError(
            f"training needs 'instances' in every input, inputs {lacking} lack them: train with a "
            "DatasetMapper(is_train=True) on a dataset with annotations"
        )
    return [x["instances"].to(device) for x in batched_inputs]


def _postprocess(results: List[Instances], batched_inputs: List[Dict], image_sizes) -> List[Dict]:
    """Detections rescaled to each input's ``height`` x ``width`` (its own size if absent)."""
    return [
        {"instances": detector_postprocess(result, x.get("height", size[0]), x.get("width", size[1]))}
        for result, x, size in zip(results, batched_inputs, image_sizes)
    ]


def aligned_distillation_loss(
    student_features: Dict[str, torch.Tensor], teacher_features: Dict[str, torch.Tensor]
) -> torch.Tensor:
    """MSAD's KD: the sum over levels of the mean absolute difference between the student's level
    and the teacher's (fused) level of the same name and size. No adapter, no normalisation."""
    if set(student_features) != set(teacher_features):
        raise ValueError(
            f"student levels {sorted(student_features)} and teacher levels {sorted(teacher_features)} "
            "differ: the student's detector must read the same levels as the teacher's"
        )
    total = 0.0
    for level, student in student_features.items():
        teacher = teacher_features[level]
        if student.shape != teacher.shape:
            raise ValueError(
                f"level {level}: student {list(student.shape)} vs teacher {list(teacher.shape)}; aligned "
                "levels need the teacher's batch padding and an input_scale of 2**-k matching the backbone"
            )
        total = total + F.l1_loss(student, teacher.detach())
    return total


def distillation_ramp(iteration: int, warmup_iters: int) -> float:
    """The KD warm-up factor min(1, iteration / warmup_iters) (the authors': 0 at the first
    iteration, 1 from ``warmup_iters`` on); 1 without warm-up."""
    if warmup_iters <= 0:
        return 1.0
    return min(1.0, iteration / warmup_iters)


@META_ARCH_REGISTRY.register()
class MultiScaleFusionTeacher(nn.Module):
    """
    MSAD's multi-scale fusion teacher: one detector (backbone, FPN, head) run on the
    high-resolution batch (path "high", the detector's levels), on its nearest-downsampled copy
    (path "low", levels ``level_shift`` finer renamed to the detector's) and on their C-FF fusion
    (path "fused"), all with the high-resolution targets.

    Training returns every detector loss once per path, suffixed ``_high``, ``_low`` and
    ``_fused``, the fused ones already multiplied by ``fusion_loss_weight`` (lambda):
    L_H + L_L + lambda * L_F. Inference runs ``inference_path`` ("fused" by default; "high" or
    "low" give supplement Table 1's teacher rows H and L from the same weights) on
    high-resolution inputs and returns detections in each input's ``height`` x ``width``.

    The detector's per-forward state is updated once per path (RetinaNet's EMA loss normaliser
    three times per iteration, with the same foreground count: the paths share anchors and targets).

    yacs: ``MODEL.META_ARCHITECTURE = "MultiScaleFusionTeacher"`` (options of ``add_msad_config``).
    """

    @configurable
    def __init__(
        self,
        detector: nn.Module,
        fusion: CrossFeatureFusion,
        fusion_loss_weight: float = 0.4,
        low_res_scale: float = 0.5,
        level_shift: int = 1,
        inference_path: str = "fused",
        size_divisibility: Optional[int] = None,
    ):
        """
        Args:
            detector: a detectron2 DenseDetector or GeneralizedRCNN whose backbone has one level
                finer than its heads read (``aligned_resnet_fpn``).
            fusion: the C-FF module, shared by all levels.
            fusion_loss_weight: lambda, the weight of the fused path's losses (0.4 for FCOS).
            low_res_scale: the low-resolution input's scale; must be 0.5 ** level_shift.
            level_shift: how many levels the low-resolution pyramid moves (1 for half size).
            inference_path: "fused", "high" or "low".
            size_divisibility: high-resolution batches are padded to a multiple of this, which
                must be a multiple of ``2**level_shift x`` the backbone's (the smallest aligned
                padding, the default); the authors' FCOS uses 256.
        """
        super().__init__()
        if level_shift < 1 or level_shift_of_scale(low_res_scale) != level_shift:
            raise ValueError(
                f"low_res_scale={low_res_scale} and level_shift={level_shift}: the low-resolution input must "
                "be 0.5 ** level_shift times the high-resolution one (level_shift >= 1) for its levels to align"
            )
        self.detector = detector
        self.fusion = fusion
        self.fusion_loss_weight = fusion_loss_weight
        self.level_shift = level_shift
        self.inference_path = inference_path
        self._adapter = detector_adapter(detector)
        self.level_strides = _level_strides(detector, self._adapter.level_names)
        self.high_res_sources = {name: name for name in self.level_strides}
        self.low_res_sources = shifted_levels(self.level_strides, detector.backbone, level_shift)
        aligned = detector.backbone.size_divisibility * 2**level_shift
        if size_divisibility is None:
            size_divisibility = aligned
        if size_divisibility < aligned or size_divisibility % aligned:
            raise ValueError(
                f"size_divisibility={size_divisibility}: paired levels align only on multiples of "
                f"{aligned} (2**level_shift x the backbone's {detector.backbone.size_divisibility})"
            )
        self._size_divisibility = size_divisibility
        shapes = detector.backbone.output_shape()
        channels = {shapes[name].channels for name in self.level_strides}
        if channels != {fusion.channels}:
            raise ValueError(
                f"the detector's levels have {sorted(channels)} channels but the fusion expects "
                f"{fusion.channels}: set CrossFeatureFusion(channels=) to the FPN's out_channels"
            )

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        """``detector_from_config``, C-FF on MODEL.FPN.OUT_CHANNELS and MODEL.MSAD.{FUSION_*,
        LOW_RES_SCALE, INFERENCE_PATH, SIZE_DIVISIBILITY (0: the smallest aligned)}."""
        msad = cfg.MODEL.MSAD
        return {
            "detector": detector_from_config(cfg),
            "fusion": CrossFeatureFusion(cfg.MODEL.FPN.OUT_CHANNELS, msad.FUSION_HIDDEN_CHANNELS),
            "fusion_loss_weight": msad.FUSION_LOSS_WEIGHT,
            "low_res_scale": msad.LOW_RES_SCALE,
            "level_shift": level_shift_of_scale(msad.LOW_RES_SCALE),
            "inference_path": msad.INFERENCE_PATH,
            "size_divisibility": msad.SIZE_DIVISIBILITY or None,
        }

    @property
    def inference_path(self) -> str:
        return self._inference_path

    @inference_path.setter
    def inference_path(self, path: str) -> None:
        if path not in PATHS:
            raise ValueError(f"inference_path={path!r}: use one of {PATHS}")
        self._inference_path = path

    @property
    def device(self) -> torch.device:
        return self.detector.device

    @property
    def size_divisibility(self) -> int:
        """High-resolution batches are padded to a multiple of this (see the module note)."""
        return self._size_divisibility

    @property
    def level_names(self) -> List[str]:
        return list(self.level_strides)

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        return _normalize_and_pad(self.detector, batched_inputs, self.size_divisibility)

    def path_features(self, images: torch.Tensor, paths: Sequence[str] = PATHS) -> Dict[str, Dict[str, torch.Tensor]]:
        """``{path: {level: map}}`` for ``paths`` of a normalised high-resolution batch padded to
        ``size_divisibility``; computes only what those paths need."""
        unknown = sorted(set(paths) - set(PATHS))
        if unknown:
            raise ValueError(f"unknown paths {unknown}: use {PATHS}")
        features = {}
        if {"high", "fused"} & set(paths):
            features["high"] = extract_levels(self.detector.backbone, images, self.high_res_sources)
        if {"low", "fused"} & set(paths):
            low_res = downsample_nearest(images, self.level_shift)
            features["low"] = extract_levels(self.detector.backbone, low_res, self.low_res_sources)
        if "fused" in paths:
            features["fused"] = self.fusion(features["high"], features["low"])
        return {path: features[path] for path in paths}

    def forward(self, batched_inputs: List[Dict]):
        images = self.preprocess_image(batched_inputs)
        if not self.training:
            features = self.path_features(images.tensor, [self.inference_path])[self.inference_path]
            return _postprocess(self._adapter.inference(images, features), batched_inputs, images.image_sizes)
        gt_instances = _ground_truth(batched_inputs, self.device)
        losses = {}
        for path, features in self.path_features(images.tensor).items():
            weight = self.fusion_loss_weight if path == "fused" else 1.0
            for name, value in self._adapter.losses(images, features, gt_instances).items():
                losses[f"{name}_{path}"] = weight * value
        return losses


def _init_from_teacher_checkpoint(student, state_dict, prefix, *unused) -> None:
    """``load_state_dict`` pre-hook of the students: a teacher checkpoint's weights go to the
    frozen teacher and (``student_weights_from_teacher``) to the student; a student's own
    checkpoint (it has ``teacher.*``) loads as is."""
    keys = [key[len(prefix):] for key in state_dict if key.startswith(prefix)]
    if any(key.startswith("teacher.") for key in keys):
        return
    checkpoint = {key: state_dict.pop(prefix + key) for key in keys}
    missing = sorted(set(student.teacher.state_dict()) - set(checkpoint))
    if missing:
        raise ValueError(
            f"a {type(student).__name__} starts from a MultiScaleFusionTeacher checkpoint (or resumes from its "
            f"own), but this one lacks {len(missing)} of the teacher's weights (e.g. {missing[:3]}): set "
            "train.init_checkpoint to the teacher run's model_final.pth and model.teacher to that run's model "
            "config (a teacher weight whose shape differs from the student's own is dropped before this check)"
        )
    for key, value in checkpoint.items():
        state_dict[f"{prefix}teacher.{key}"] = value
    student_weights = student.student_weights_from_teacher(checkpoint)
    for key, value in student_weights.items():
        state_dict[prefix + key] = value
    logger.info(
        "Initialised the frozen teacher and %d of the student's tensors from a MultiScaleFusionTeacher checkpoint",
        len(student_weights),
    )


@META_ARCH_REGISTRY.register()
class AlignedDistillationStudent(nn.Module):
    """
    An MSAD student: ``detector`` trained on the high-resolution batch scaled by ``input_scale``
    (0.5: the low-resolution student "S L", whose levels are one finer renamed; 1.0: the
    high-resolution student "S H") with the high-resolution targets, plus
    ``distill_weight * ramp(iteration) * sum over levels of mean |P_S - F_T|`` against the frozen
    teacher's fused features of the same batch ("loss_distill").

    The teacher is always in eval mode (BN statistics untouched) and has no gradients. Inference
    takes each image at whatever resolution the test mapper produced (supplement Table 2): the
    student's levels act as the detector's levels of a 1 / input_scale times larger virtual image,
    whose detections are rescaled to the input's ``height`` x ``width``.

    Initialisation from a teacher checkpoint: see the module note. Under DDP, a low-resolution
    student whose FPN makes P7 from P6 leaves that conv unused (the student reads P2..P6):
    set ``train.ddp.find_unused_parameters=True``.

    yacs: ``MODEL.META_ARCHITECTURE = "AlignedDistillationStudent"``; its teacher is the
    ``MultiScaleFusionTeacher`` of the same config (same detector architecture).
    """

    @configurable
    def __init__(
        self,
        detector: nn.Module,
        teacher: MultiScaleFusionTeacher,
        distill_weight: float = 0.6,
        warmup_iters: int = 500,
        input_scale: float = 0.5,
    ):
        """
        Args:
            detector: the student detector, read on the teacher's levels (for input_scale 0.5
                its backbone has one finer level, like the teacher's).
            teacher: the trained multi-scale fusion teacher (frozen here).
            distill_weight: gamma, the KD weight (0.6 in the authors' FCOS code: alpha 0.2 x T 3).
            warmup_iters: iterations of the linear KD warm-up (by the EventStorage iteration, so
                a resumed run continues the ramp).
            input_scale: 2**-k, the student's input scale relative to the high-resolution batch.
        """
        super().__init__()
        if not isinstance(teacher, MultiScaleFusionTeacher):
            raise TypeError(f"teacher must be a MultiScaleFusionTeacher, got {type(teacher).__name__}")
        self.detector = detector
        self.teacher = teacher.requires_grad_(False).eval()
        self.distill_weight = distill_weight
        self.warmup_iters = warmup_iters
        self.input_scale = input_scale
        self.level_shift = level_shift_of_scale(input_scale)
        self._adapter = detector_adapter(detector)
        self.level_strides = _level_strides(detector, self._adapter.level_names)
        if self.level_strides != teacher.level_strides:
            raise ValueError(
                f"the student reads levels {self.level_strides} (name: stride) but the teacher fuses "
                f"{teacher.level_strides}: both detectors need the same head levels"
            )
        for name in ("pixel_mean", "pixel_std"):
            if not torch.equal(getattr(detector, name), getattr(teacher.detector, name)):
                raise ValueError(f"student and teacher detectors need the same {name}: both read the same batch")
        self.sources = shifted_levels(self.level_strides, detector.backbone, self.level_shift)
        self.register_load_state_dict_pre_hook(_init_from_teacher_checkpoint)

    @property
    def device(self) -> torch.device:
        return self.detector.device

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        """``detector_from_config``, the teacher of the same config and MODEL.MSAD.{DISTILL_WEIGHT,
        DISTILL_WARMUP_ITERS, STUDENT_INPUT_SCALE}."""
        msad = cfg.MODEL.MSAD
        return {
            "detector": detector_from_config(cfg),
            "teacher": MultiScaleFusionTeacher(cfg),
            "distill_weight": msad.DISTILL_WEIGHT,
            "warmup_iters": msad.DISTILL_WARMUP_ITERS,
            "input_scale": msad.STUDENT_INPUT_SCALE,
        }

    @property
    def training_size_divisibility(self) -> int:
        """Training batches are padded for both the teacher's and the scaled input's alignment."""
        student = self.detector.backbone.size_divisibility * 2**self.level_shift
        return math.lcm(self.teacher.size_divisibility, student)

    def train(self, mode: bool = True):
        """Train or evaluate the student; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def student_weights_from_teacher(self, checkpoint: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The student's detector is the teacher's detector; C-FF serves the teacher only."""
        return {key: value for key, value in checkpoint.items() if key.startswith("detector.")}

    def student_features(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The student's maps under the detector's level names for an input already at its scale."""
        return extract_levels(self.detector.backbone, images, self.sources)

    def forward(self, batched_inputs: List[Dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images = _normalize_and_pad(self.detector, batched_inputs, self.training_size_divisibility)
        gt_instances = _ground_truth(batched_inputs, self.device)
        with torch.no_grad():
            teacher_features = self.teacher.path_features(images.tensor, ["fused"])["fused"]
        features = self.student_features(downsample_nearest(images.tensor, self.level_shift))
        losses = self._adapter.losses(images, features, gt_instances)
        ramp = distillation_ramp(get_event_storage().iter, self.warmup_iters)
        losses["loss_distill"] = self.distill_weight * ramp * aligned_distillation_loss(features, teacher_features)
        return losses

    def inference(self, batched_inputs: List[Dict]) -> List[Dict]:
        """Detections for inputs at any resolution, in each input's ``height`` x ``width``; inputs
        are padded only as far as the backbone needs (the authors: the 256-padded test image's
        0.5x copy), so that padding does not inflate the student's cost."""
        images = _normalize_and_pad(self.detector, batched_inputs, self.detector.backbone.size_divisibility)
        features = self.student_features(images.tensor)
        scale = 2**self.level_shift
        # the detector's levels belong to a virtual image `scale` times larger: decode in its frame
        virtual_frame = ImageList(images.tensor, [(h * scale, w * scale) for h, w in images.image_sizes])
        results = self._adapter.inference(virtual_frame, features)
        return _postprocess(results, batched_inputs, images.image_sizes)


@META_ARCH_REGISTRY.register()
class DualResolutionStudent(AlignedDistillationStudent):
    """
    The multi-scale fusion student of supplement D / Table 3: its detector's backbone is a
    ``DualResolutionBackbone`` (a thin high-resolution pyramid and a low-resolution one fused by
    C-FF) and reads the high-resolution batch (input_scale 1). What is distilled: the fused
    pyramid, against the teacher's fused pyramid, level by level.

    From a teacher checkpoint it takes the head and C-FF weights, and the teacher's backbone for
    each branch of the same architecture (e.g. the full-width low-resolution branch); a branch of
    another width keeps its own initialisation (logged).

    yacs: ``MODEL.META_ARCHITECTURE = "DualResolutionStudent"`` with ``MODEL.BACKBONE.NAME =
    "build_dual_resolution_backbone"``; the teacher's detector is the same with the aligned
    pyramid ``build_aligned_resnet_fpn_backbone`` of MODEL.RESNETS.WIDTH.
    """

    @configurable
    def __init__(
        self,
        detector: nn.Module,
        teacher: MultiScaleFusionTeacher,
        distill_weight: float = 0.6,
        warmup_iters: int = 500,
    ):
        if not isinstance(getattr(detector, "backbone", None), DualResolutionBackbone):
            raise TypeError("DualResolutionStudent's detector needs a DualResolutionBackbone backbone")
        super().__init__(detector, teacher, distill_weight, warmup_iters, input_scale=1.0)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        teacher_cfg = cfg.clone()
        teacher_cfg.defrost()
        teacher_cfg.MODEL.BACKBONE.NAME = "build_aligned_resnet_fpn_backbone"
        return {
            "detector": detector_from_config(cfg),
            "teacher": MultiScaleFusionTeacher(teacher_cfg),
            "distill_weight": cfg.MODEL.MSAD.DISTILL_WEIGHT,
            "warmup_iters": cfg.MODEL.MSAD.DISTILL_WARMUP_ITERS,
        }

    def student_weights_from_teacher(self, checkpoint: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        backbone_prefix, fusion_prefix = "detector.backbone.", "fusion."
        teacher_backbone = {
            key[len(backbone_prefix):]: value for key, value in checkpoint.items() if key.startswith(backbone_prefix)
        }
        weights = {
            key: value for key, value in checkpoint.items()
            if key.startswith("detector.") and not key.startswith(backbone_prefix)
        }
        weights.update({
            f"{backbone_prefix}fusion.{key[len(fusion_prefix):]}": value
            for key, value in checkpoint.items() if key.startswith(fusion_prefix)
        })
        teacher_shapes = {key: value.shape for key, value in teacher_backbone.items()}
        for branch in ("high_res", "low_res"):
            branch_state = getattr(self.detector.backbone, branch).state_dict()
            if {key: value.shape for key, value in branch_state.items()} == teacher_shapes:
                weights.update({f"{backbone_prefix}{branch}.{key}": value for key, value in teacher_backbone.items()})
            else:
                logger.warning(
                    "The %s branch differs from the teacher's backbone (another width or depth): it keeps "
                    "its own initialisation", branch,
                )
        return weights

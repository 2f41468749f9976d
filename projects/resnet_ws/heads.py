"""
Weakly supervised detection heads of ResNet-WS on pooled proposal features: WSDDN (Bilen &
Vedaldi 2016), OICR (Tang et al. 2017) and OICR+REG (OICR whose last refinement branch also
regresses boxes), as the authors' code (DRN-WSOD-pytorch, projects/WSL) trains them.

Shapes: ``R`` proposals of all images of a batch, ``R_i`` of image i, ``D`` feature width,
``C`` foreground classes. Image-level labels are a (N, C) multi-hot tensor. Refinement branches
predict C + 1 classes with the background LAST (index C), detectron2's Fast R-CNN convention.

Every head has ``losses(features, proposal_boxes, image_labels) -> {name: scalar}`` and
``inference(features, proposal_boxes) -> (class_scores, predicted_boxes)`` per image, the
per-proposal (R_i, C) scores before NMS and the (R_i, 4) proposals or (R_i, 4C) class-specific
regressed boxes. Images whose label row is all zero are left out of every loss (the mean is
over the labelled images); a batch without labelled images gets zero losses that still reach
every parameter, so a distributed step stays in sync.
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes, pairwise_iou

WSDDN_SCORE_CLAMP = 1e-6
"""Image-level WSDDN scores are clamped to [1e-6, 1 - 1e-6] before the BCE."""

BOX_REGRESSION_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
"""(dx, dy, dw, dh) weights of the regression deltas (detectron2's Fast R-CNN default)."""


def wsddn_proposal_scores(
    classification_logits: torch.Tensor, detection_logits: torch.Tensor, num_proposals: Sequence[int]
) -> torch.Tensor:
    """(R, C) WSDDN scores: softmax over classes of the classification stream times softmax over
    each image's proposals of the detection stream."""
    detection = torch.cat([logits.softmax(dim=0) for logits in detection_logits.split(list(num_proposals))])
    return classification_logits.softmax(dim=1) * detection


def image_level_scores(proposal_scores: torch.Tensor, num_proposals: Sequence[int]) -> torch.Tensor:
    """(N, C) image scores: per-image sum of the proposal scores, clamped to [1e-6, 1 - 1e-6]."""
    sums = torch.stack([scores.sum(dim=0) for scores in proposal_scores.split(list(num_proposals))])
    return sums.clamp(min=WSDDN_SCORE_CLAMP, max=1.0 - WSDDN_SCORE_CLAMP)


class PseudoLabels(NamedTuple):
    """OICR supervision of one image's proposals for one refinement branch."""

    classes: torch.Tensor  # (R_i,) int64: the class of the best-overlapping seed, or C (background)
    weights: torch.Tensor  # (R_i,) float: the weight of the best-overlapping seed
    target_boxes: torch.Tensor  # (R_i, 4): the box of the best-overlapping seed
    seed_indices: torch.Tensor  # (P,) int64: proposal index of each present class's seed


@torch.no_grad()
def assign_pseudo_labels(
    proposal_boxes: Boxes,
    class_scores: torch.Tensor,
    present_classes: torch.Tensor,
    seed_weights: Optional[torch.Tensor] = None,
    iou_threshold: float = 0.5,
) -> PseudoLabels:
    """
    OICR pseudo labels of one image.

    For each present class the top-scoring proposal (``class_scores`` column) is its seed. Every
    proposal takes the class of the seed it overlaps most (IoU, ties: the first present class)
    if that IoU is >= ``iou_threshold``, else background (index C), and in both cases the weight
    of that seed; so a proposal that overlaps no seed gets the first seed's weight, as in OICR
    and the authors' code (detectron2's Matcher).

    Args:
        proposal_boxes: the image's R_i proposals.
        class_scores: (R_i, C) scores of the previous branch (foreground columns only).
        present_classes: (P,) distinct class indices of the image-level label, P >= 1.
        seed_weights: (P,) weight of each class's seed; default: the seed's own score in
            ``class_scores`` (OICR paper). The authors' code passes WSDDN's image-level score.
        iou_threshold: minimum IoU with a seed to take its class.
    """
    if len(present_classes) == 0:
        raise ValueError("assign_pseudo_labels needs at least one present class: skip unlabelled images")
    num_classes = class_scores.shape[1]
    seed_scores, seed_indices = class_scores[:, present_classes].max(dim=0)
    if seed_weights is None:
        seed_weights = seed_scores
    seed_boxes = proposal_boxes[seed_indices]
    best_iou, best_seed = pairwise_iou(proposal_boxes, seed_boxes).max(dim=1)
    classes = torch.where(
        best_iou >= iou_threshold, present_classes[best_seed], torch.full_like(best_seed, num_classes)
    )
    return PseudoLabels(
        classes=classes,
        weights=seed_weights[best_seed],
        target_boxes=seed_boxes.tensor[best_seed],
        seed_indices=seed_indices,
    )


def weighted_cross_entropy(logits: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """OICR refinement loss of one image: sum(w * CE) / #(w > 0) (0 when no weight is positive)."""
    total = (weights * F.cross_entropy(logits, classes, reduction="none")).sum()
    return total / (weights > 0).sum().clamp(min=1)


def box_regression_loss(
    deltas: torch.Tensor, proposal_boxes: Boxes, pseudo_labels: PseudoLabels, box2box_transform: Box2BoxTransform
) -> torch.Tensor:
    """
    OICR+REG regression loss of one image, as in the authors' code: L1 between the predicted
    (R_i, 4C) deltas of each foreground proposal's pseudo class and the deltas from the proposal
    to its seed's box, summed over foreground proposals and divided by R_i (not weighted by the
    pseudo-label weights).
    """
    num_classes = deltas.shape[1] // 4
    foreground = torch.nonzero(pseudo_labels.classes < num_classes).squeeze(1)
    targets = box2box_transform.get_deltas(
        proposal_boxes.tensor[foreground], pseudo_labels.target_boxes[foreground]
    )
    columns = 4 * pseudo_labels.classes[foreground, None] + torch.arange(4, device=deltas.device)
    predicted = deltas[foreground[:, None], columns]
    return F.l1_loss(predicted, targets, reduction="sum") / max(len(proposal_boxes), 1)


def _mean_over_labelled(per_image_losses: List[torch.Tensor], reference: torch.Tensor) -> torch.Tensor:
    """Mean of the labelled images' losses; without any, a zero that still depends on ``reference``."""
    if not per_image_losses:
        return reference.sum() * 0.0
    return torch.stack(per_image_losses).mean()


def _num_proposals(proposal_boxes: Sequence[Boxes], features: torch.Tensor) -> List[int]:
    # shape[0], not len(): a tensor while traced for export, so the per-image split follows the input
    num_proposals = [boxes.tensor.shape[0] for boxes in proposal_boxes]
    if sum(num_proposals) != len(features):
        raise ValueError(
            f"got {len(features)} proposal features but {sum(num_proposals)} proposal boxes "
            f"({num_proposals} per image): pass the boxes the features were pooled from"
        )
    return num_proposals


class WSDDNHead(nn.Module):
    """
    WSDDN: a classification and a detection stream, Linear(D -> C) each; proposal score =
    softmax over classes (classification) * softmax over the image's proposals (detection);
    image score = clamp(sum over proposals); loss = binary cross-entropy with the image labels.
    Test scores are the proposal scores.
    """

    TEST_NMS_THRESH = 0.5
    TEST_SCORE_THRESH = 1e-9  # the authors' WSDDN configs: proposal scores are products of two softmaxes

    def __init__(self, input_dim: int, num_classes: int, bce_reduction: str = "sum"):
        """
        Args:
            input_dim: width D of the proposal features.
            num_classes: number of foreground classes C.
            bce_reduction: "sum" or "mean" of the BCE over classes, then averaged over images.
                The authors' WSDDN configs sum (MEAN_LOSS False); OICR uses "mean".
        """
        super().__init__()
        if bce_reduction not in ("sum", "mean"):
            raise ValueError(f"bce_reduction must be 'sum' or 'mean', got {bce_reduction!r}")
        self.num_classes = num_classes
        self.bce_reduction = bce_reduction
        self.classification_stream = nn.Linear(input_dim, num_classes)
        self.detection_stream = nn.Linear(input_dim, num_classes)
        for layer in (self.classification_stream, self.detection_stream):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor, num_proposals: Sequence[int]) -> torch.Tensor:
        """(R, C) proposal scores."""
        return wsddn_proposal_scores(
            self.classification_stream(features), self.detection_stream(features), num_proposals
        )

    def loss_from_scores(
        self, proposal_scores: torch.Tensor, num_proposals: Sequence[int], image_labels: torch.Tensor
    ) -> torch.Tensor:
        """BCE of the clamped image scores, reduced over classes, averaged over labelled images."""
        image_scores = image_level_scores(proposal_scores, num_proposals)
        if not torch.isfinite(image_scores).all():
            raise FloatingPointError(
                "WSDDN image scores are not finite: training diverged. Lower optimizer.lr or raise "
                "train.gradient_accumulation_steps (the authors accumulate 32 batches for WSDDN)"
            )
        bce = F.binary_cross_entropy(image_scores, image_labels.to(proposal_scores.dtype), reduction="none")
        per_image = bce.sum(dim=1) if self.bce_reduction == "sum" else bce.mean(dim=1)
        labelled = image_labels.any(dim=1)
        return _mean_over_labelled(list(per_image[labelled]), proposal_scores)

    def losses(self, features: torch.Tensor, proposal_boxes: Sequence[Boxes], image_labels: torch.Tensor):
        num_proposals = _num_proposals(proposal_boxes, features)
        return {"loss_wsddn": self.loss_from_scores(self(features, num_proposals), num_proposals, image_labels)}

    def inference(
        self, features: torch.Tensor, proposal_boxes: Sequence[Boxes]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        num_proposals = _num_proposals(proposal_boxes, features)
        scores = self(features, num_proposals).split(num_proposals)
        return list(scores), [boxes.tensor for boxes in proposal_boxes]


class OICRHead(nn.Module):
    """
    OICR: a WSDDN head (``self.mil``, BCE averaged over classes) and K refinement branches
    Linear(D -> C + 1), background last. Branch k is trained with ``weighted_cross_entropy`` on
    ``assign_pseudo_labels`` from the previous branch's softmax (WSDDN's proposal scores for
    k = 1), detached. Test scores: the mean of the K branches' softmaxes without the background
    column, on the proposals.

    With ``box_regression`` (OICR+REG) the last branch also predicts class-specific deltas
    Linear(D -> 4C) (detectron2 ``Box2BoxTransform``, weights 10, 10, 5, 5) trained with
    ``box_regression_loss`` towards the seeds' boxes; at test time, as in the authors' code, the
    scores are that branch's softmax alone and the boxes its regressed proposals.
    """

    TEST_NMS_THRESH = 0.3
    TEST_SCORE_THRESH = 1e-5

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        num_refinements: int = 3,
        box_regression: bool = False,
        iou_threshold: float = 0.5,
        seed_weight: str = "image_score",
    ):
        """
        Args:
            input_dim: width D of the proposal features.
            num_classes: number of foreground classes C.
            num_refinements: K; the authors use 3 for OICR and 4 for OICR+REG.
            box_regression: add class-specific box regression to the last branch (OICR+REG).
            iou_threshold: IoU with a seed from which a proposal takes the seed's class.
            seed_weight: weight of the proposals assigned to a class's seed: "image_score", the
                WSDDN image-level score of that class, the same for every branch (the authors'
                code, DRN-WSOD-pytorch); or "seed_score", the seed proposal's score in the
                previous branch (the OICR paper).
        """
        super().__init__()
        if num_refinements < 1:
            raise ValueError(f"num_refinements must be at least 1, got {num_refinements}")
        if seed_weight not in ("image_score", "seed_score"):
            raise ValueError(f"seed_weight must be 'image_score' or 'seed_score', got {seed_weight!r}")
        self.num_classes = num_classes
        self.iou_threshold = iou_threshold
        self.seed_weight = seed_weight
        self.mil = WSDDNHead(input_dim, num_classes, bce_reduction="mean")
        self.refinements = nn.ModuleList(nn.Linear(input_dim, num_classes + 1) for _ in range(num_refinements))
        for layer in self.refinements:
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)
        self.box_deltas = nn.Linear(input_dim, 4 * num_classes) if box_regression else None
        if self.box_deltas is not None:
            nn.init.normal_(self.box_deltas.weight, std=0.001)
            nn.init.zeros_(self.box_deltas.bias)
        self.box2box_transform = Box2BoxTransform(weights=BOX_REGRESSION_WEIGHTS)

    def losses(
        self, features: torch.Tensor, proposal_boxes: Sequence[Boxes], image_labels: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """``loss_wsddn``, ``loss_refine_1`` .. ``loss_refine_K`` and, with regression, ``loss_box_reg``."""
        num_proposals = _num_proposals(proposal_boxes, features)
        wsddn_scores = self.mil(features, num_proposals)
        losses = {"loss_wsddn": self.mil.loss_from_scores(wsddn_scores, num_proposals, image_labels)}
        image_scores = image_level_scores(wsddn_scores.detach(), num_proposals)
        labelled = [i for i in range(len(num_proposals)) if image_labels[i].any()]
        previous_scores = wsddn_scores.detach().split(num_proposals)
        for k, branch in enumerate(self.refinements, start=1):
            logits = branch(features).split(num_proposals)
            regress = self.box_deltas is not None and k == len(self.refinements)
            deltas = self.box_deltas(features).split(num_proposals) if regress else None
            classification, regression = [], []
            for i in labelled:
                present = torch.nonzero(image_labels[i]).squeeze(1)
                seed_weights = image_scores[i, present] if self.seed_weight == "image_score" else None
                pseudo_labels = assign_pseudo_labels(
                    proposal_boxes[i], previous_scores[i], present, seed_weights, self.iou_threshold
                )
                classification.append(weighted_cross_entropy(logits[i], pseudo_labels.classes, pseudo_labels.weights))
                if regress:
                    regression.append(
                        box_regression_loss(deltas[i], proposal_boxes[i], pseudo_labels, self.box2box_transform)
                    )
            losses[f"loss_refine_{k}"] = _mean_over_labelled(classification, torch.cat(logits))
            if regress:
                losses["loss_box_reg"] = _mean_over_labelled(regression, torch.cat(deltas))
            previous_scores = [x.detach().softmax(dim=1)[:, : self.num_classes] for x in logits]
        return losses

    def inference(
        self, features: torch.Tensor, proposal_boxes: Sequence[Boxes]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        num_proposals = _num_proposals(proposal_boxes, features)
        if self.box_deltas is None:
            probabilities = torch.stack([branch(features).softmax(dim=1) for branch in self.refinements]).mean(dim=0)
            boxes = [b.tensor for b in proposal_boxes]
        else:
            probabilities = self.refinements[-1](features).softmax(dim=1)
            proposals = torch.cat([b.tensor for b in proposal_boxes])
            boxes = list(self.box2box_transform.apply_deltas(self.box_deltas(features), proposals).split(num_proposals))
        return list(probabilities[:, : self.num_classes].split(num_proposals)), boxes


HEAD_TYPES = ("wsddn", "oicr", "oicr_reg")


def build_weak_detection_head(head_type: str, input_dim: int, num_classes: int, **options) -> nn.Module:
    """
    "wsddn" -> ``WSDDNHead``; "oicr" -> ``OICRHead`` (K = 3); "oicr_reg" -> ``OICRHead`` with
    K = 4 and box regression on the last branch (the authors' OICR+REG configs). ``options`` are
    passed to the head's constructor and override these defaults.
    """
    if head_type == "wsddn":
        return WSDDNHead(input_dim, num_classes, **options)
    if head_type == "oicr":
        return OICRHead(input_dim, num_classes, **options)
    if head_type == "oicr_reg":
        return OICRHead(input_dim, num_classes, **{"num_refinements": 4, "box_regression": True, **options})
    raise ValueError(f"head_type={head_type!r} is not one of {HEAD_TYPES}")


"""Building blocks of the full-scale ResNet-WS detection configs (imported by them, not a config
itself): the detector on ResNet-WS + RAN, the authors' VOC 2007 data and optimisation, and the
test-time augmentation over scales and flips.

Proposals: detectron2 proposal files under ``$DETECTRON2_DATASETS/proposals`` (MCG like the
authors; convert the downloaded .mat files with ``python -m projects.resnet_ws.proposals convert``,
or make Selective Search ones with ``python -m projects.resnet_ws.proposals`` and set
``model.scale_by_proposal_score=False``: their scores are ranks). Images without proposals (the
predictor, the demo) get Selective Search boxes on the fly: ``model.proposal_generator``.
"""
import os

from detectron2.config import LazyCall as L

from projects.common.data import datasets_root
from projects.resnet_ws import WeaklySupervisedRCNN, WeaklySupervisedRCNNWithTTA
from projects.resnet_ws.proposals import SelectiveSearchProposals

from ..common.optim import SGD
from ..common.schedules import step_schedule
from .models import PIXEL_MEAN, PIXEL_STD, resnet_ws_backbone, resnet_ws_neck


def proposal_file(dataset_name: str, method: str = "MCG") -> str:
    return os.path.join(datasets_root(), "proposals", f"{method}-{dataset_name}.pkl")


def on_the_fly_proposals():
    """Selective Search (fast mode) for inputs without precomputed proposals, with the test
    mapper's top-K and minimum size (the config needs a ``weak_detection_dataloader``)."""
    return L(SelectiveSearchProposals)(
        mode="fast",
        max_proposals="${...dataloader.test.mapper.proposal_topk}",
        min_size="${...dataloader.test.mapper.proposal_min_size}",
    )


def wsod_model(depth: int, num_classes: int, head_type: str):
    """ResNet``depth``-WS (FrozenBN, F5) -> RoIPool 7x7 at stride 8 -> RAN -> WSDDN / OICR head,
    features scaled by (MCG score + 1) as the authors do; Selective Search for inputs without
    proposals."""
    return L(WeaklySupervisedRCNN)(
        backbone=resnet_ws_backbone(depth),
        in_feature="res5",
        neck=resnet_ws_neck(depth),
        num_classes=num_classes,
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
        head_type=head_type,
        pooler_resolution=7,
        scale_by_proposal_score=True,
        proposal_generator=on_the_fly_proposals(),
    )


def test_time_augmentation():
    """Averaged scores over the authors' VOC test scales, each also flipped."""
    return L(WeaklySupervisedRCNNWithTTA)(min_sizes=(480, 576, 672, 768, 864, 960, 1056, 1152), max_size=4000,
                                          flip=True)


def authors_optimizer(lr: float = 0.01):
    """SGD momentum 0.9, LR 0.01 with bias LR x2, weight decay 5e-4 (the authors' VOC configs)."""
    optimizer = SGD.copy()
    optimizer.lr = lr
    optimizer.weight_decay = 5e-4
    optimizer.params.base_lr = "${..lr}"
    optimizer.params.bias_lr_factor = 2.0
    return optimizer


def use_wsddn_recipe(model, train):
    """Turn an OICR config into the authors' WSDDN (in place); returns its LR multiplier: 200k
    forward passes of batch 4 with gradients accumulated over 32 of them, i.e. 6250 optimizer
    steps of 128 images (our reading of their iteration count, see projects/resnet_ws/README.md),
    LR x0.1 at 70 %."""
    model.head_type = "wsddn"
    train.gradient_accumulation_steps = 32
    train.max_iter = 200000 // 32
    train.eval_period = train.max_iter
    train.checkpointer.period = 500
    return oicr_schedule(max_iter=train.max_iter, step=int(0.7 * train.max_iter))


def oicr_schedule(max_iter: int = 50000, step: int = 35000):
    """OICR: 50k iterations at batch 4 (about 40 VOC 2007 epochs), LR x0.1 at 35k."""
    return step_schedule(milestones=[step], max_iter=max_iter, warmup_iters=200)

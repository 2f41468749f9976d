"""CPU-sized OICR with ResNet18-WS on the embedded synthetic data in VOC layout, trained from
image-level labels only on Selective Search proposals made by the proposal tool:

    python -m projects.resnet_ws.proposals --dataset synthetic_shapes_voc_train \\
        --output output/resnet_ws/proposals/synthetic_shapes_voc_train.pkl      # and _val

Quarter-width ResNet18-WS (FrozenBN, F5: only the neck and heads train) initialised from
synthetic_classifier_R18_WS_cpu.py's weights (backbone + redundant adaptation neck pre-trained on
the classification split), RoIPool to the neck's 2x2, three OICR refinements, 900 iterations at
batch 4 (300 reach about half the CorLoc); ~256 px images at 224..288 with flips; evaluated by
VOC AP50 and CorLoc on synthetic_shapes_voc_val. Selective Search files rank their boxes by order
only, so pooled features are not scaled by proposal score (the authors' "score + 1" is a
constant x2 for Selective Search). Images without proposals (the predictor, the demo) get
Selective Search boxes on the fly (``model.proposal_generator``, fast mode).
``python -m projects.resnet_ws.workflow`` runs the whole chain (WSDDN / OICR / OICR+REG).
"""
from detectron2.config import LazyCall as L
from detectron2.data import MetadataCatalog

from projects.resnet_ws import WeaklySupervisedRCNN, weak_detection_dataloader

from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .models import CPU_NECK_HIDDEN_DIMS, CPU_POOLED_SIZE, CPU_WIDTH, PIXEL_MEAN, PIXEL_STD
from .models import resnet_ws_backbone, resnet_ws_neck
from .wsod import on_the_fly_proposals

PROPOSALS = "output/resnet_ws/proposals/{}.pkl"
TRAIN_SET, TEST_SET = "synthetic_shapes_voc_train", "synthetic_shapes_voc_val"

dataloader = weak_detection_dataloader(
    TRAIN_SET, [PROPOSALS.format(TRAIN_SET)], TEST_SET, [PROPOSALS.format(TEST_SET)],
    proposal_topk=4000,
    proposal_min_size=8,  # the authors' 20 px at ~600-1200 px images, scaled to ~256 px
    train_short_edges=(224, 256, 288),
    train_max_size=480,
    test_short_edge=256,
    test_max_size=480,
    total_batch_size=4,
    num_workers=1,
)

model = L(WeaklySupervisedRCNN)(
    backbone=resnet_ws_backbone(18, width=CPU_WIDTH),
    in_feature="res5",
    neck=resnet_ws_neck(18, width=CPU_WIDTH, hidden_dims=CPU_NECK_HIDDEN_DIMS, pooled_size=CPU_POOLED_SIZE),
    num_classes=len(MetadataCatalog.get(TRAIN_SET).thing_classes),
    pixel_mean=PIXEL_MEAN,
    pixel_std=PIXEL_STD,
    head_type="oicr",
    pooler_resolution=CPU_POOLED_SIZE,
    scale_by_proposal_score=False,
    proposal_generator=on_the_fly_proposals(),
)

train.init_checkpoint = "output/resnet_ws/synthetic_classifier_R18_WS_cpu/model_final.pth"
train.max_iter = 900
train.eval_period = train.max_iter
train.checkpointer.period = 300
train.log_period = 20
train.seed = 0
train.output_dir = "output/resnet_ws/synthetic_oicr_R18_WS_cpu"

optimizer.lr = 0.01
optimizer.weight_decay = 5e-4
optimizer.params.base_lr = "${..lr}"
optimizer.params.bias_lr_factor = 2.0  # the authors' bias LR x2
lr_multiplier = step_schedule(milestones=[630], max_iter=train.max_iter, warmup_iters=20)

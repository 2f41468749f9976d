"""DAP step 3 at CPU size: Faster R-CNN (the CPU twin: half-width ResNet-18 FPN) pre-trained on
the CAM pseudo boxes of the synthetic classification split, starting from the classifier of
synthetic_classifier_cpu.py (backbone converted with `python -m projects.common.checkpoint --fpn`).
Multi-scale short edges (64..256 for 128 px images: the paper's 96..640 for ImageNet) let the
detector see the objects at many sizes. Evaluated on the synthetic detection val split, which
has the same 8 classes (a zero-shot check of the pseudo-box detector)."""
import os

from detectron2.data import MetadataCatalog

from dap import register_pseudo_box_dataset

from ..common.data.synthetic_detection import dataloader
from ..common.models.cpu import shrink_resnet
from ..common.models.faster_rcnn_fpn_cpu import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .models import TORCHVISION_PIXEL_STD

OUTPUT_ROOT = "output/dap/synthetic"
CLASSIFICATION_SET = "synthetic_shapes_cls_train"
PSEUDO_BOX_SET = f"{CLASSIFICATION_SET}_dap_pseudo_boxes"
CLASS_NAMES = MetadataCatalog.get(CLASSIFICATION_SET).thing_classes
register_pseudo_box_dataset(
    PSEUDO_BOX_SET,
    json_file=os.path.join(OUTPUT_ROOT, "pseudo_boxes", "train.json"),  # python -m dap.generate_pseudo_boxes
    image_root=MetadataCatalog.get(CLASSIFICATION_SET).image_root,
    thing_classes=CLASS_NAMES,
)

shrink_resnet(model.backbone.bottom_up, norm="FrozenBN")  # the classifier's BN statistics are kept
model.backbone.bottom_up.freeze_at = 1  # stem frozen, as in fine-tuning
model.pixel_std = TORCHVISION_PIXEL_STD  # the classifier's input normalisation
model.roi_heads.num_classes = len(CLASS_NAMES)

dataloader.train.dataset.names = PSEUDO_BOX_SET
dataloader.train.mapper.augmentations[0].update(short_edge_length=(64, 128, 192, 256), max_size=480)

train.init_checkpoint = os.path.join(OUTPUT_ROOT, "cls_init.pth")
train.output_dir = os.path.join(OUTPUT_ROOT, "pretrain")
train.max_iter = 300
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0

optimizer.lr = 0.005  # FrozenBN: the from-scratch 0.01 of the smoke config diverges
lr_multiplier = step_schedule(milestones=[200, 267], max_iter=train.max_iter, warmup_iters=50, warmup_factor=0.01)

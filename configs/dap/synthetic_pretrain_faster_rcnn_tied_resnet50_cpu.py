"""DAP step 3 at CPU size with a quarter-width TiedResNet-50 (README.md, "Combinations", run 1): the
CPU Faster R-CNN FPN of synthetic_pretrain_faster_rcnn_cpu.py on that backbone (FrozenBN, stem
frozen), pre-trained on the CAM pseudo boxes of synthetic_classifier_tied_resnet50_cpu.py from its
CLS initialisation; the run's files live under output/dap/synthetic_tied_resnet50."""
import os

from detectron2.data import MetadataCatalog

from dap import register_pseudo_box_dataset

from ..common.backbones import pyramid
from .synthetic_pretrain_faster_rcnn_cpu import CLASS_NAMES, CLASSIFICATION_SET, dataloader, lr_multiplier, model
from .synthetic_pretrain_faster_rcnn_cpu import optimizer, train

OUTPUT_ROOT = "output/dap/synthetic_tied_resnet50"
PSEUDO_BOX_SET = f"{CLASSIFICATION_SET}_dap_pseudo_boxes_tied_resnet50"
register_pseudo_box_dataset(
    PSEUDO_BOX_SET,
    json_file=os.path.join(OUTPUT_ROOT, "pseudo_boxes", "train.json"),
    image_root=MetadataCatalog.get(CLASSIFICATION_SET).image_root,
    thing_classes=CLASS_NAMES,
)

model.backbone = pyramid("tied_resnet50", out_channels=model.backbone.out_channels, width=0.25, norm="FrozenBN",
                         freeze_at=1)
dataloader.train.dataset.names = PSEUDO_BOX_SET
train.init_checkpoint = os.path.join(OUTPUT_ROOT, "cls_init.pth")
train.output_dir = os.path.join(OUTPUT_ROOT, "pretrain")

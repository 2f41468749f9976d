"""DAP pre-training of Faster R-CNN with a TiedResNet-50 FPN on the CAM pseudo boxes of
imagenet_classifier_tied_resnet50.py (README.md, "Combinations", run 1 at full scale): the
schedule and data of pretrain_faster_rcnn_R50_FPN_in1m.py (imagenet_pretrain_base.py), the
tied backbone with FrozenBN and a frozen stem, initialised from that classifier (cls_init.pth)."""
from dap import register_pseudo_box_dataset

from ..common.backbones import pyramid
from ..common.models.faster_rcnn_fpn import model
from .imagenet_pretrain_base import IMAGENET_TRAIN, NUM_CLASSES, dataloader, folder_class_names, lr_multiplier
from .imagenet_pretrain_base import optimizer, train
from .models import TORCHVISION_PIXEL_STD

OUTPUT_ROOT = "output/dap/imagenet_tied_resnet50"
PSEUDO_BOX_SET = "imagenet_train_dap_pseudo_boxes_tied_resnet50"
register_pseudo_box_dataset(
    PSEUDO_BOX_SET,
    json_file=f"{OUTPUT_ROOT}/pseudo_boxes/train.json",
    image_root=IMAGENET_TRAIN,
    thing_classes=folder_class_names(IMAGENET_TRAIN),
)

model.backbone = pyramid("tied_resnet50", out_channels=model.backbone.out_channels, norm="FrozenBN", freeze_at=1)
model.pixel_std = TORCHVISION_PIXEL_STD  # the classifier's input normalisation
model.roi_heads.num_classes = NUM_CLASSES
dataloader.train.dataset.names = PSEUDO_BOX_SET
train.init_checkpoint = f"{OUTPUT_ROOT}/cls_init.pth"
train.output_dir = f"{OUTPUT_ROOT}/pretrain_faster_rcnn_FPN"

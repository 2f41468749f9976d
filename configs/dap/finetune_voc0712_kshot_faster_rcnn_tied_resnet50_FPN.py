"""DAP low-data fine-tuning (paper Fig. 4) of the TiedResNet-50 FPN Faster R-CNN (README.md,
"Combinations", run 1 at full scale): finetune_voc0712_kshot_faster_rcnn_R50_FPN.py with the
tied backbone (FrozenBN, frozen stem), from the DAP initialisation of
pretrain_faster_rcnn_tied_resnet50_FPN_in1m.py (CLS: ``train.init_checkpoint=
output/dap/imagenet_tied_resnet50/cls_init.pth``)."""
from ..common.backbones import pyramid
from .finetune_voc0712_kshot_faster_rcnn_R50_FPN import K_SHOT_SETS, dataloader, lr_multiplier, model, optimizer
from .finetune_voc0712_kshot_faster_rcnn_R50_FPN import train

model.backbone = pyramid("tied_resnet50", out_channels=model.backbone.out_channels, norm="FrozenBN", freeze_at=1)
train.init_checkpoint = "output/dap/imagenet_tied_resnet50/dap_init.pth"
train.output_dir = "output/dap/imagenet_tied_resnet50/finetune_voc0712_kshot_faster_rcnn_FPN"

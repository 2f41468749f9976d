"""Table 3 "IN-1M DAP (Freeze)": DAP pre-training with the whole ResNet-50 frozen, so only FPN,
RPN and RoI heads learn from the pseudo boxes."""
from .pretrain_faster_rcnn_R50_FPN_in1m import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.freeze_at = 5  # stem and res2..res5
train.output_dir = "output/dap/imagenet/pretrain_faster_rcnn_R50_FPN_freeze_backbone"

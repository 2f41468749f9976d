"""RetinaNet R50-FPN fine-tuned on COCO from DAP or CLS initialisation (paper Table 6), 1x.
RetinaNet's detectron2 LR at batch 16 is 0.01."""
from ..common.models.retinanet import model
from .finetune_coco_faster_rcnn_R50_FPN_1x import dataloader, lr_multiplier, optimizer, train
from .models import torchvision_style_backbone

torchvision_style_backbone(model, depth=50, freeze_at=1)
train.init_checkpoint = "output/dap/imagenet/dap_init_retinanet.pth"
train.output_dir = "output/dap/imagenet/finetune_coco_retinanet_R50_FPN_1x"
optimizer.lr = 0.01

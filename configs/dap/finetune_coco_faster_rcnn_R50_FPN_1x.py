"""DAP step 4 on COCO 2017 (paper Table 1): Faster R-CNN R50-FPN, 1x schedule (90k iterations at
batch 16, LR 0.02, x0.1 at 60k and 80k), short side 800, frozen BN and stem, weight decay 1e-4
(1e-5 after IN-14M). Initialisation as in finetune_voc07_faster_rcnn_R50_FPN.py."""
from ..common.data.coco import dataloader
from ..common.models.faster_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_1x as lr_multiplier
from ..common.train import train
from .models import torchvision_style_backbone

torchvision_style_backbone(model, depth=50, freeze_at=1)
dataloader.train.mapper.augmentations[0].update(short_edge_length=(800,), max_size=1333)
dataloader.train.mapper.use_instance_mask = False
train.init_checkpoint = "output/dap/imagenet/dap_init.pth"
train.output_dir = "output/dap/imagenet/finetune_coco_faster_rcnn_R50_FPN_1x"
train.max_iter = 90000
train.eval_period = 10000
optimizer.lr = 0.02
optimizer.weight_decay = 1e-4

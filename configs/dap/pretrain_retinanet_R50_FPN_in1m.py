"""DAP pre-training of RetinaNet R50-FPN on ImageNet-1M pseudo boxes (paper Tables 6/7:
80,072 steps at batch 32, LR 0.005)."""
from ..common.models.retinanet import model
from ..common.schedules import step_schedule
from .imagenet_pretrain_base import NUM_CLASSES, dataloader, optimizer, train
from .models import torchvision_style_backbone

torchvision_style_backbone(model, depth=50)
model.num_classes = NUM_CLASSES
train.max_iter = 80072
train.output_dir = "output/dap/imagenet/pretrain_retinanet_R50_FPN"
optimizer.lr = 0.005
lr_multiplier = step_schedule(
    milestones=[train.max_iter * 2 // 3, train.max_iter * 8 // 9], max_iter=train.max_iter,
    warmup_iters=2000, warmup_factor=0.01,
)

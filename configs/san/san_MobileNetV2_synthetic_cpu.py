"""CPU-sized SAN MobileNetV2 (width 0.5, every conv generated) on the embedded synthetic
classification split at 64, 48 and 32: san_R18_synthetic_cpu.py with the MobileNetV2 backbone
and the MobileNetV2 LR and weight decay of the ImageNet recipe. Its individually trained twins are
baseline_MobileNetV2_synthetic_cpu_{64,48,32}.py."""
from detectron2.config import LazyCall as L

from projects.san import SANMobileNetV2

from .san_R18_synthetic_cpu import dataloader, lr_multiplier, model, optimizer, train

model.backbone = L(SANMobileNetV2)(resolutions="${...dataloader.train.mapper.resolutions}", width_mult=0.5)
optimizer.lr = 0.05  # half the ResNet LR, as in the ImageNet recipes (0.05 vs 0.1)
optimizer.weight_decay = 4e-5
train.output_dir = "output/san/san_MobileNetV2_synthetic_cpu"

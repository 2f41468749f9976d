"""Individually trained twin of san_MobileNetV2_synthetic_cpu.py at 64 (the _48 and _32 configs
change only the resolution): baseline_R18_synthetic_cpu_64.py with the same MobileNetV2 as the
SAN trained on one resolution, i.e. one BN per position and kernels W = A eps + b at one fixed
encoding — a plain MobileNetV2 written with SAN's layers (every kernel W is reachable)."""
from detectron2.config import LazyCall as L

from projects.san import SANMobileNetV2

from .baseline_R18_synthetic_cpu_64 import dataloader, lr_multiplier, model, optimizer, train

model.backbone = L(SANMobileNetV2)(resolutions=[64], width_mult=0.5)
optimizer.lr = 0.05  # half the ResNet LR, as in the ImageNet recipes (0.05 vs 0.1)
optimizer.weight_decay = 4e-5
train.output_dir = "output/san/baseline_MobileNetV2_synthetic_cpu_64"

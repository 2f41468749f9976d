"""baseline_MobileNetV2_synthetic_cpu_64.py at 32: trained and evaluated at 32."""
from projects.san.data import use_resolution

from .baseline_MobileNetV2_synthetic_cpu_64 import dataloader, lr_multiplier, model, optimizer, train

model.backbone.resolutions = [32]
use_resolution(dataloader, 32)
train.output_dir = "output/san/baseline_MobileNetV2_synthetic_cpu_32"

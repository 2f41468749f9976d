"""baseline_MobileNetV2_synthetic_cpu_64.py at 48: trained and evaluated at 48."""
from projects.san.data import use_resolution

from .baseline_MobileNetV2_synthetic_cpu_64 import dataloader, lr_multiplier, model, optimizer, train

model.backbone.resolutions = [48]
use_resolution(dataloader, 48)
train.output_dir = "output/san/baseline_MobileNetV2_synthetic_cpu_48"

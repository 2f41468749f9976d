"""baseline_R18_synthetic_cpu_64.py at 32: a plain half-width ResNet-18 trained and evaluated at 32."""
from projects.san.data import use_resolution

from .baseline_R18_synthetic_cpu_64 import dataloader, lr_multiplier, model, optimizer, train

use_resolution(dataloader, 32)
train.output_dir = "output/san/baseline_R18_synthetic_cpu_32"

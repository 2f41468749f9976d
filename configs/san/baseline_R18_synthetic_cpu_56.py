"""baseline_R18_synthetic_cpu_64.py at 56, a resolution SAN never trains on (supplement Table 7:
baselines trained at the test resolution vs SAN's proxy inference)."""
from projects.san.data import use_resolution

from .baseline_R18_synthetic_cpu_64 import dataloader, lr_multiplier, model, optimizer, train

use_resolution(dataloader, 56)
train.output_dir = "output/san/baseline_R18_synthetic_cpu_56"

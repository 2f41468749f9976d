"""baseline_R18_imagenet_224.py at 96: a plain ResNet-18 trained and evaluated at 96."""
from projects.san.data import use_resolution

from .baseline_R18_imagenet_224 import dataloader, lr_multiplier, model, optimizer, train

use_resolution(dataloader, 96)
train.output_dir = "output/san/baseline_R18_imagenet_96"

"""baseline_R18_imagenet_224.py at 128: a plain ResNet-18 trained and evaluated at 128."""
from projects.san.data import use_resolution

from .baseline_R18_imagenet_224 import dataloader, lr_multiplier, model, optimizer, train

use_resolution(dataloader, 128)
train.output_dir = "output/san/baseline_R18_imagenet_128"

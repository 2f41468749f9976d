"""The SAN paper's baseline: a plain ResNet-18 trained and evaluated at one resolution, 224 here
(the _192, _160, _128 and _96 configs change only the resolution). Same recipe as
san_R18_imagenet.py: SGD 0.9, LR 0.1, weight decay 1e-4 on all parameters, batch 256,
per-iteration cosine, 120 epochs; validation resize floor(S / 0.875), centre crop S.

Another resolution without a new file: set ``dataloader.train.mapper.augmentations.0.size=S``,
``dataloader.test.mapper.augmentations.1.size=S`` and
``dataloader.test.mapper.augmentations.0.short_edge_length=floor(S / 0.875)``.
"""
from projects.san.data import use_resolution

from ..common.data.imagenet import dataloader
from ..common.models.classifier_cpu import model
from .san_R18_imagenet import lr_multiplier, optimizer, train

use_resolution(dataloader, 224)
train.output_dir = "output/san/baseline_R18_imagenet_224"

"""SAN ResNet-50 on ImageNet: san_R18_imagenet.py with a ResNet-50 backbone (same recipe)."""
from .san_R18_imagenet import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 50
train.output_dir = "output/san/san_R50_imagenet"

"""CPU MSAD teacher on a quarter-width ResNet-50 (README.md, "Combinations", run 3):
synthetic_fcos_teacher_cpu.py with its aligned pyramid (P2..P7, FPN 128) on that backbone instead
of the half-width ResNet-18; same data, padding, C-FF and schedule. Compare with the tied_resnet50
twin: ``python -m projects.msad.workflow --backbone resnet50``."""
from ..common.backbones import pyramid
from .synthetic_fcos_teacher_cpu import dataloader, lr_multiplier, model, optimizer, train

model.detector.backbone = pyramid("resnet50", out_channels=model.fusion.channels, top_block="p6p7", aligned=True,
                                  width=0.25)
train.output_dir = "output/msad/synthetic_resnet50/teacher"

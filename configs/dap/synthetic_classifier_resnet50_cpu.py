"""DAP step 1 at CPU size with a quarter-width ResNet-50 (README.md, "Combinations", run 1):
synthetic_classifier_cpu.py with its backbone swapped; compare with the tied_resnet50 twin (same size,
data and schedule). Its CAMs give the pseudo boxes and its weights the CLS initialisation of
synthetic_{pretrain,finetune}_faster_rcnn_resnet50_cpu.py, through
``python -m dap.workflow --backbone resnet50``."""
from ..common.backbones import backbone
from .synthetic_classifier_cpu import dataloader, lr_multiplier, model, optimizer, train

model.backbone = backbone("resnet50", width=0.25)
train.output_dir = "output/dap/synthetic_resnet50/classifier"

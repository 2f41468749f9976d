"""DAP step 1 at CPU size with a quarter-width TiedResNet-50 (README.md, "Combinations", run 1):
synthetic_classifier_cpu.py with its backbone swapped; compare with the resnet50 twin (same size,
data and schedule). Its CAMs give the pseudo boxes and its weights the CLS initialisation of
synthetic_{pretrain,finetune}_faster_rcnn_tied_resnet50_cpu.py, through
``python -m dap.workflow --backbone tied_resnet50``."""
from ..common.backbones import backbone
from .synthetic_classifier_cpu import dataloader, lr_multiplier, model, optimizer, train

model.backbone = backbone("tied_resnet50", width=0.25)
train.output_dir = "output/dap/synthetic_tied_resnet50/classifier"

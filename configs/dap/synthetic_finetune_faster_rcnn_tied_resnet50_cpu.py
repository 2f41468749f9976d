"""DAP step 4 at CPU size with a quarter-width TiedResNet-50 (README.md, "Combinations", run 1):
synthetic_finetune_faster_rcnn_cpu.py on that backbone (FrozenBN, stem frozen), from the CLS or
DAP initialisation of the tied_resnet50 run (output/dap/synthetic_tied_resnet50)."""
from ..common.backbones import pyramid
from .synthetic_finetune_faster_rcnn_cpu import K_SHOT_SETS, dataloader, lr_multiplier, model, optimizer, train

model.backbone = pyramid("tied_resnet50", out_channels=model.backbone.out_channels, width=0.25, norm="FrozenBN",
                         freeze_at=1)
train.init_checkpoint = "output/dap/synthetic_tied_resnet50/dap_init.pth"
train.output_dir = "output/dap/synthetic_tied_resnet50/finetune"

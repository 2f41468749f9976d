"""DAP step 1 at CPU size with a half-width ResNet18-WS (README.md, "Combinations", run 2):
synthetic_classifier_cpu.py (half-width ResNet-18, same data and schedule) with its backbone
swapped for ResNet-WS in the WSOD form, whose final map keeps stride 8 (12 x 12 cells on the
96 px crops instead of 3 x 3) for a finer CAM. Its feature cell i is centred on input pixel
8 i + 7.5 (three 2x2 max-pools without padding), so its pseudo boxes take ``--cell-origin 7.5``:

    python -m dap.generate_pseudo_boxes --config-file dap/synthetic_classifier_resnet18_ws_cpu.py \\
        --weights output/dap/synthetic_resnet18_ws/classifier/model_final.pth \\
        --dataset synthetic_shapes_cls_val --output OUT.json --scales 128 256 --resolution image --cell-origin 7.5
"""
from ..common.backbones import backbone
from .synthetic_classifier_cpu import dataloader, lr_multiplier, model, optimizer, train

model.backbone = backbone("resnet18_ws", width=0.5)
train.output_dir = "output/dap/synthetic_resnet18_ws/classifier"

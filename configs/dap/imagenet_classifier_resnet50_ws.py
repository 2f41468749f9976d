"""DAP step 1 on ImageNet-1M with a ResNet50-WS classifier (README.md, "Combinations", run 2 at
full scale): imagenet_classifier_R50.py (same data and schedule) with ResNet-WS in the WSOD form
as backbone (stride 8: 28 x 28 - 1 = 27 x 27 res5 cells on 224 px crops instead of 7 x 7), global
pool and fc, so that its CAMs are finer. Its cell i is centred on input pixel 8 i + 7.5:

    python -m dap.generate_pseudo_boxes --config-file configs/dap/imagenet_classifier_resnet50_ws.py \\
        --weights output/dap/imagenet_resnet50_ws/classifier/model_final.pth --dataset imagenet_train \\
        --output output/dap/imagenet_resnet50_ws/pseudo_boxes/train.json --cell-origin 7.5 --num-gpus 8
"""
from ..common.backbones import backbone
from .imagenet_classifier_R50 import dataloader, lr_multiplier, model, optimizer, train

model.backbone = backbone("resnet50_ws")
train.output_dir = "output/dap/imagenet_resnet50_ws/classifier"

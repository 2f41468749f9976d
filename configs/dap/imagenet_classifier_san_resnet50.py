"""DAP step 1 on ImageNet-1M with a SAN ResNet-50 classifier (README.md, "Combinations", run 4
at full scale): san_R50_imagenet.py (every batch at 224, 192, 160, 128 and 96, scale
distillation). Its CAMs are taken at training resolutions, each with that resolution's private BN
(proxy inference), one pseudo-box file per scale set, e.g.:

    python -m dap.generate_pseudo_boxes --config-file configs/dap/imagenet_classifier_san_resnet50.py \\
        --weights output/dap/imagenet_san_resnet50/classifier/model_final.pth --dataset imagenet_train \\
        --output output/dap/imagenet_san_resnet50/pseudo_boxes/train_224.json --scales 224 --num-gpus 8

against imagenet_classifier_R50.py's classifier at the same scales.
"""
from ..common.backbones import backbone
from ..san.san_R50_imagenet import dataloader, lr_multiplier, model, optimizer, train

model.backbone = backbone("san_resnet50", resolutions="${...dataloader.train.mapper.resolutions}")
train.output_dir = "output/dap/imagenet_san_resnet50/classifier"

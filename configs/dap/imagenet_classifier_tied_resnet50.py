"""DAP step 1 on ImageNet-1M with a TiedResNet-50 classifier (README.md, "Combinations", run 1 at
full scale), trained with the TBC paper's recipe (tied_conv/imagenet_cls_tied_resnet50.py). Then,
as for the ResNet-50 chain (dap/README.md, "Full scale"), with its own files:

    python -m dap.generate_pseudo_boxes --config-file configs/dap/imagenet_classifier_tied_resnet50.py \\
        --weights output/dap/imagenet_tied_resnet50/classifier/model_final.pth --dataset imagenet_train \\
        --output output/dap/imagenet_tied_resnet50/pseudo_boxes/train.json --batch-size 32 --num-gpus 8
    python -m projects.common.checkpoint --input output/dap/imagenet_tied_resnet50/classifier/model_final.pth \\
        --output output/dap/imagenet_tied_resnet50/cls_init.pth --fpn
    python train_net.py --config-file configs/dap/pretrain_faster_rcnn_tied_resnet50_FPN_in1m.py --num-gpus 16
    python -m dap.transfer --input output/dap/imagenet_tied_resnet50/pretrain_faster_rcnn_FPN/model_final.pth \\
        --output output/dap/imagenet_tied_resnet50/dap_init.pth
    python train_net.py --config-file configs/dap/finetune_voc0712_kshot_faster_rcnn_tied_resnet50_FPN.py \\
        --num-gpus 8 dataloader.train.dataset.names=voc_0712_trainval_5shot_seed0
"""
from ..common.backbones import backbone
from ..tied_conv.imagenet_cls_tied_resnet50 import dataloader, lr_multiplier, model, optimizer, train

model.backbone = backbone("tied_resnet50")
train.output_dir = "output/dap/imagenet_tied_resnet50/classifier"

"""The IN-1M DAP Faster R-CNN R50-FPN as an ImageNet classifier (paper Sec. 4.3: class score =
sum of the confidences of that class's detections; 62.73 top-1 / 85.99 top-5 in the paper) on
imagenet_val, test short side 640 as in pre-training. Evaluation only:

    train_net.py --config-file THIS --eval-only \\
        train.init_checkpoint=output/dap/imagenet/pretrain_faster_rcnn_R50_FPN/model_final.pth
"""
from .pretrain_faster_rcnn_R50_FPN_in1m import model, train
from .synthetic_detector_as_classifier_cpu import dataloader

dataloader.test.dataset.names = "imagenet_val"
dataloader.test.mapper.augmentations[0].update(short_edge_length=640, max_size=1066)
dataloader.test.num_workers = 4
train.init_checkpoint = "output/dap/imagenet/pretrain_faster_rcnn_R50_FPN/model_final.pth"
train.output_dir = "output/dap/imagenet/detector_as_classifier"

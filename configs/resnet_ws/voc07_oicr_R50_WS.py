"""OICR (K = 3) with ResNet50-WS + RAN on PASCAL VOC 2007, the authors' settings: trainval with MCG
proposals (top 4000, > 20 px), short side 480..1216 step 32 with flips, batch 4 (1 image per GPU
on 4 GPUs), 50k iterations, LR 0.01 (x0.1 at 35k, bias x2), weight decay 5e-4; F5 (only the
neck and heads train) from the ImageNet classification form
(configs/resnet_ws/imagenet_classifier_R50_WS.py). Evaluated on test by VOC mAP@0.5 (and CorLoc)
with test-time augmentation over 8 scales x flip; CorLoc on trainval:
``dataloader.test.dataset.names=voc_2007_trainval dataloader.test.dataset.proposal_files=[...]``.
"""
from projects.resnet_ws import weak_detection_dataloader

from ..common.train import train
from .wsod import authors_optimizer, oicr_schedule, proposal_file, test_time_augmentation, wsod_model

DEPTH = 50
dataloader = weak_detection_dataloader(
    "voc_2007_trainval", [proposal_file("voc_2007_trainval")],
    "voc_2007_test", [proposal_file("voc_2007_test")],
)
model = wsod_model(DEPTH, num_classes=20, head_type="oicr")
test_time_augmentation = test_time_augmentation()
optimizer = authors_optimizer()
lr_multiplier = oicr_schedule()

train.init_checkpoint = f"output/resnet_ws/imagenet_classifier_R{DEPTH}_WS/model_final.pth"
train.max_iter = 50000
train.eval_period = train.max_iter
train.checkpointer.period = 5000
train.output_dir = f"output/resnet_ws/voc07_oicr_R{DEPTH}_WS"

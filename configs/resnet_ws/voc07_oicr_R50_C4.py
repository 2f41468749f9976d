"""The baseline ResNet-WS is measured against (Table A2, Sec. A.3): OICR on a plain ResNet-50 in the
C4 arrangement, F2 (stem and res2 frozen), 7x7 RoIPool of res4 (stride 16), conv5_x applied per
RoI as the neck (no adaptation neck), from detectron2's ImageNet MSRA R-50 (caffe layout: stride
in the 1x1 convs, unit pixel std; conv5_x's weights reach the per-RoI res5 by detectron2's
suffix matching of .pkl checkpoints). Data, schedule and TTA: voc07_oicr_R50_WS.py."""
from .models import plain_resnet_backbone, res5_box_head
from .voc07_oicr_R50_WS import dataloader, lr_multiplier, model, optimizer, test_time_augmentation, train

model.backbone = plain_resnet_backbone(50, "C4", freeze_at=2)
model.backbone.stages.stride_in_1x1 = True
model.in_feature = "res4"
model.neck = res5_box_head(50)
model.neck.stride_in_1x1 = True
model.pixel_std = [1.0, 1.0, 1.0]
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "output/resnet_ws/voc07_oicr_R50_C4"

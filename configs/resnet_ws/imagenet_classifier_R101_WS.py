"""ResNet101-WS ImageNet pre-training: imagenet_classifier_R18_WS.py's recipe with ResNet101-WS
and the (2048, 4096) neck (Table A1). The paper gives no top-1 error for it."""
from .imagenet_classifier_R18_WS import dataloader, lr_multiplier, optimizer, train
from .models import resnet_ws_classifier

model = resnet_ws_classifier(depth=101)
train.output_dir = "output/resnet_ws/imagenet_classifier_R101_WS"

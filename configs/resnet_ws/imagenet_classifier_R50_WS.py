"""ResNet50-WS ImageNet pre-training: imagenet_classifier_R18_WS.py's recipe with ResNet50-WS and
the (2048, 4096) neck (Table A1). Paper: 25.4% top-1 error."""
from .imagenet_classifier_R18_WS import dataloader, lr_multiplier, optimizer, train
from .models import resnet_ws_classifier

model = resnet_ws_classifier(depth=50)
train.output_dir = "output/resnet_ws/imagenet_classifier_R50_WS"

"""RetinaNet R50-FPN fine-tuned on VOC07 trainval from DAP or CLS initialisation (paper Table 7);
hyper-parameters as finetune_voc07_faster_rcnn_R50_FPN.py. DAP initialisation:
``python -m dap.transfer --input output/dap/imagenet/pretrain_retinanet_R50_FPN/model_final.pth
--output output/dap/imagenet/dap_init_retinanet.pth`` (drops head.cls_score)."""
from ..common.models.retinanet import model
from .finetune_voc07_faster_rcnn_R50_FPN import VOC_CLASSES, dataloader, lr_multiplier, optimizer, train
from .models import torchvision_style_backbone

torchvision_style_backbone(model, depth=50, freeze_at=1)
model.num_classes = VOC_CLASSES
train.init_checkpoint = "output/dap/imagenet/dap_init_retinanet.pth"
train.output_dir = "output/dap/imagenet/finetune_voc07_retinanet_R50_FPN"

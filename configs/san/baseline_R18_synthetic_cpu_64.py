"""CPU twin of the SAN baselines: a plain half-width ResNet-18 trained and evaluated at 64 on the
synthetic classification split, with san_R18_synthetic_cpu.py's optimisation (the _48 and _32
configs change only the resolution)."""
from detectron2.data import MetadataCatalog

from projects.san.data import use_resolution

from ..common.data.synthetic_classification import dataloader
from ..common.models.classifier_cpu import model
from ..common.models.cpu import shrink_resnet
from .san_R18_synthetic_cpu import lr_multiplier, optimizer, train

shrink_resnet(model.backbone, width=0.5)
model.num_classes = len(MetadataCatalog.get("synthetic_shapes_cls_train").thing_classes)
use_resolution(dataloader, 64)
train.output_dir = "output/san/baseline_R18_synthetic_cpu_64"

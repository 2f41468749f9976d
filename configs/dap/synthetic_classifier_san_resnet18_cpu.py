"""DAP step 1 at CPU size with a SAN classifier (README.md, "Combinations", run 4): a half-width
SAN ResNet-18 trained as san_R18_synthetic_cpu.py (every batch at each training resolution, CE +
scale distillation, same optimisation as synthetic_classifier_cpu.py) at 128, 96 and 64, the
CAM scales of DAP's 128 px images, so that each CAM scale runs with its own private BN (proxy
inference picks it); evaluated at 96 like synthetic_classifier_cpu.py, the single-resolution
classifier it is compared with. Pseudo boxes at one scale S: ``python -m dap.generate_pseudo_boxes
--config-file dap/synthetic_classifier_san_resnet18_cpu.py ... --scales S --resolution image``."""
from projects.san.data import set_test_resolution

from ..common.backbones import backbone
from ..san.san_R18_synthetic_cpu import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.resolutions = [128, 96, 64]
set_test_resolution(dataloader.test, 96)
model.backbone = backbone("san_resnet18", width=0.5, resolutions="${...dataloader.train.mapper.resolutions}")
train.output_dir = "output/dap/synthetic_san_resnet18/classifier"

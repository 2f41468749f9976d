"""voc07_oicr_R18_WS.py with OICR+REG: a fourth refinement branch with box regression."""
from .voc07_oicr_R18_WS import dataloader, lr_multiplier, model, optimizer, test_time_augmentation, train

model.head_type = "oicr_reg"
train.output_dir = "output/resnet_ws/voc07_oicr_reg_R18_WS"

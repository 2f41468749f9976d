"""synthetic_oicr_R18_WS_cpu.py with OICR+REG: a fourth refinement branch with class-specific box
regression trained on the pseudo boxes, applied at test time."""
from .synthetic_oicr_R18_WS_cpu import dataloader, lr_multiplier, model, optimizer, train

model.head_type = "oicr_reg"
train.output_dir = "output/resnet_ws/synthetic_oicr_reg_R18_WS_cpu"

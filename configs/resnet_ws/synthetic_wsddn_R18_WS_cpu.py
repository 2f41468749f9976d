"""synthetic_oicr_R18_WS_cpu.py with the WSDDN head (two streams, image-level BCE summed over
classes): LR 0.001, 10x lower, as summed BCE diverges at OICR's LR on this data."""
from .synthetic_oicr_R18_WS_cpu import dataloader, lr_multiplier, model, optimizer, train

model.head_type = "wsddn"
optimizer.lr = 0.001
train.output_dir = "output/resnet_ws/synthetic_wsddn_R18_WS_cpu"

"""voc07_oicr_R101_WS.py with the WSDDN head and the authors' WSDDN schedule: 200k forward passes
of batch 4 with gradients accumulated over 32 of them, i.e. 6250 optimizer steps of 128 images
(this reading of their iteration count: see projects/resnet_ws/README.md), LR x0.1 at 70 %."""
from .wsod import oicr_schedule
from .voc07_oicr_R101_WS import dataloader, model, optimizer, test_time_augmentation, train

model.head_type = "wsddn"
train.gradient_accumulation_steps = 32
train.max_iter = 200000 // 32
train.eval_period = train.max_iter
train.checkpointer.period = 500
lr_multiplier = oicr_schedule(max_iter=train.max_iter, step=int(0.7 * train.max_iter))
train.output_dir = "output/resnet_ws/voc07_wsddn_R101_WS"

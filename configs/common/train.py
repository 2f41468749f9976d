"""Training options read by train_net.py (detectron2's common train config, device chosen at run time)."""
from detectron2.model_zoo import get_config

train = get_config("common/train.py").train
train.device = "auto"  # CUDA when present, else CPU (resolved by train_net.py)
train.gradient_accumulation_steps = 1  # > 1: each iteration accumulates that many batches
train.seed = -1  # < 0: a different random seed every run; set >= 0 to reproduce a run

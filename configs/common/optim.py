"""Optimizers; ``optimizer.params.model`` is set by train_net.py before instantiation."""
from detectron2.model_zoo import get_config

SGD = get_config("common/optim.py").SGD

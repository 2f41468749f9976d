"""voc07_oicr_R101_WS.py with the WSDDN head and the authors' WSDDN schedule (``use_wsddn_recipe``:
gradients accumulated over 32 batches of 4, 6250 optimizer steps)."""
from .voc07_oicr_R101_WS import dataloader, model, optimizer, test_time_augmentation, train
from .wsod import use_wsddn_recipe

lr_multiplier = use_wsddn_recipe(model, train)
train.output_dir = "output/resnet_ws/voc07_wsddn_R101_WS"

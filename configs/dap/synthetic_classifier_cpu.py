"""DAP step 1 at CPU size: the smoke classifier (configs/smoke/classifier_R18_synthetic.py) with
the CPU detectors' bottom-up as backbone (half-width ResNet-18, BN), so that its weights
initialise them (CLS pre-training) and its CAMs give the pseudo boxes (DAP step 2)."""
from ..common.models.cpu import shrink_resnet
from ..common.schedules import cosine_schedule
from ..smoke.classifier_R18_synthetic import dataloader, model, optimizer, train

shrink_resnet(model.backbone)

train.max_iter = 300
train.output_dir = "output/dap/synthetic/classifier"
train.eval_period = train.max_iter
lr_multiplier = cosine_schedule(warmup_iters=30)

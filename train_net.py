#!/usr/bin/env python
"""The collection's one launcher: trains and evaluates any LazyConfig of any project.

The config file chooses the project: it imports the project's components, which register
themselves. The launcher itself is ``projects.common.engine`` (also installed as ``d2c-train``);
this script only starts it, as detectron2's ``tools/lazyconfig_train_net.py``.

    python train_net.py --config-file configs/smoke/faster_rcnn_R18_FPN_synthetic.py
    python train_net.py --config-file CFG --resume                       # continue a run
    python train_net.py --config-file CFG --eval-only train.init_checkpoint=output/model_final.pth
    python train_net.py --config-file CFG --num-gpus 2 train.max_iter=100   # 2 processes
"""
from projects.common.engine import run

if __name__ == "__main__":
    run()

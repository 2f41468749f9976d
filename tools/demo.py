#!/usr/bin/env python
"""Run a trained model of any config on images or folders and save the predictions drawn as PNGs
(``projects.common.demo``, also installed as ``d2c-demo``).

    python tools/demo.py --config-file configs/smoke/faster_rcnn_R18_FPN_synthetic.py \
        --input datasets/synthetic_shapes_v2/JPEGImages --output output/demo \
        --opts train.init_checkpoint=output/smoke_faster_rcnn_R18_FPN_synthetic/model_final.pth
"""
from projects.common.demo import main

if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Export a config's model to TorchScript or ONNX (``projects.common.export``, also installed as
``d2c-export``).

    python tools/export_model.py --config-file configs/dap/synthetic_finetune_faster_rcnn_cpu.py \
        --format onnx --output output/export/dap --opts train.init_checkpoint=output/dap/synthetic/finetune/model_final.pth
"""
from projects.common.export import main

if __name__ == "__main__":
    main()

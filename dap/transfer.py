"""
Step 4 set-up: the weights a fine-tuning run starts from, taken from a DAP pre-trained detector.

Everything is transferred except the class-dependent last layers (the paper's transfer):

* Faster / Mask R-CNN: ``roi_heads.box_predictor.cls_score.*`` and ``.bbox_pred.*``;
* Cascade R-CNN: ``roi_heads.box_predictor.<stage>.cls_score.*`` / ``.bbox_pred.*``;
* Mask R-CNN: ``roi_heads.mask_head.predictor.*`` (one mask per class);
* RetinaNet: ``head.cls_score.*`` (its ``head.bbox_pred`` is class-agnostic and kept).

The drop is explicit because detectron2's checkpointer only skips tensors whose shapes differ:
when pre-training and fine-tuning have the same number of classes (our synthetic runs both have
8) it would silently keep the pre-training classifier. The output holds ``{"model": weights}``
only, no iteration, optimizer or scheduler, so ``train_net.py`` starts from iteration 0:

    python -m dap.transfer --input output/dap/pretrain/model_final.pth --output output/dap/init.pth
    ./run.sh train --config-file <fine-tuning config> train.init_checkpoint=output/dap/init.pth
"""
import argparse
import logging
import re
from typing import Dict, List, Sequence, Tuple

import torch

from projects.common.checkpoint import load_model_state_dict, save_model_state_dict

__all__ = ["CLASS_DEPENDENT_PATTERNS", "detector_init_state_dict", "write_detector_init_checkpoint", "main"]

logger = logging.getLogger(__name__)

CLASS_DEPENDENT_PATTERNS = (
    re.compile(r"roi_heads\.box_predictor\.(\d+\.)?(cls_score|bbox_pred)\..+"),
    re.compile(r"roi_heads\.mask_head\.predictor\..+"),
    re.compile(r"head\.cls_score\..+"),
)


def detector_init_state_dict(state_dict: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Split a detectron2 detector's weights into (kept, dropped keys): dropped are the
    class-dependent layers of ``CLASS_DEPENDENT_PATTERNS``; raises if there are none (not a detector)."""
    kept, dropped = {}, []
    for key, value in state_dict.items():
        if any(pattern.fullmatch(key) for pattern in CLASS_DEPENDENT_PATTERNS):
            dropped.append(key)
        else:
            kept[key] = value
    if not dropped:
        raise ValueError(
            f"none of the {len(state_dict)} keys (first: {sorted(state_dict)[:5]}) is a class-dependent "
            "detector layer (roi_heads.box_predictor[.<stage>].cls_score/bbox_pred, "
            "roi_heads.mask_head.predictor, head.cls_score): the input must be a detectron2 Faster/Mask/"
            "Cascade R-CNN or RetinaNet checkpoint; convert a classifier with projects.common.checkpoint"
        )
    return kept, dropped


def write_detector_init_checkpoint(input_path: str, output_path: str) -> List[str]:
    """Write the transferable weights of the detector checkpoint ``input_path`` to ``output_path``
    as ``{"model": kept}`` (atomically); logs and returns the dropped keys."""
    state_dict = load_model_state_dict(input_path)
    kept, dropped = detector_init_state_dict(state_dict)
    for key in dropped:
        logger.info("Dropped %s %s (class-dependent; fine-tuning initialises it afresh)", key,
                    tuple(state_dict[key].shape))
    logger.info("Kept %d of %d tensors of %s", len(kept), len(state_dict), input_path)
    save_model_state_dict(kept, output_path)
    return dropped


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fine-tuning initialisation from a pre-trained detector: all weights except the "
        "class-dependent last layers, without iteration/optimizer/scheduler state."
    )
    parser.add_argument("--input", required=True, help="pre-trained detector checkpoint (.pth)")
    parser.add_argument("--output", required=True, help="where to write the initialisation (.pth)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_detector_init_checkpoint(args.input, args.output)


if __name__ == "__main__":
    main()

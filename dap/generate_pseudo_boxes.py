"""
Step 2 over a whole dataset, from the command line: CAM pseudo boxes of every image of a
classification dataset, written as a COCO-format detection JSON (``dap.pseudo_boxes``; register
the JSON with ``dap.register_pseudo_box_dataset``).

    python -m dap.generate_pseudo_boxes --config-file configs/dap/synthetic_classifier_cpu.py \\
        --weights output/dap/classifier/model_final.pth --dataset synthetic_shapes_cls_train \\
        --output output/dap/pseudo_boxes.json [--num-gpus 8] [--num-machines 2 --machine-rank R ...]

Work is sharded over processes and machines with detectron2's ``launch`` (each rank takes
every world-size-th remaining image). Each rank appends finished images to its own
``<output>.parts/rank<R>.jsonl`` after every batch, so a killed run restarted with the same
command (any number of processes) skips what is done and loses at most the batches in flight.
The settings are stored next to the parts; resuming with other settings is an error. When all
images are done, rank 0 writes the JSON atomically, then ``<output>.stats.json`` (boxes per
image, mean box size as in the paper's Table A1/A2, and the boxes' quality when the dataset has
real boxes), prints both, and removes the parts. A dataset whose classes are not the
classifier's is refused before anything is written.
"""

import argparse
import os
from typing import Dict, Sequence

from detectron2.engine import launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from projects.common.config import resolve_config_file
from projects.common.io import file_sha256

from .pseudo_boxes import add_pseudo_box_arguments, generate_pseudo_boxes, load_classifier, options_from_args

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CAM pseudo boxes of a classification dataset -> COCO JSON (DAP step 2)",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, help="LazyConfig of the classifier (its model), path or name")
    parser.add_argument("--weights", required=True, help="classifier checkpoint (path, URL or detectron2://)")
    parser.add_argument("--dataset", required=True, help="registered classification dataset, e.g. imagenet_train")
    parser.add_argument("--output", required=True, help="COCO JSON to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--allow-partial-weights", action="store_true",
                        help="run even if --weights leaves parameters of the classifier unloaded")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward, per process")
    parser.add_argument("--num-workers", type=int, default=2, help="image-reading workers per process")
    add_pseudo_box_arguments(parser)
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU processes)")
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--dist-url", default="auto", help="tcp://HOST:PORT of machine 0 (auto: one machine)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="key=value overrides of the config")
    return parser.parse_args(argv)


def _worker(args: argparse.Namespace) -> Dict:
    """One rank of the job: load the classifier, generate this rank's share."""
    setup_logger(name="dap", distributed_rank=comm.get_rank())
    setup_logger(name="detectron2", distributed_rank=comm.get_rank())
    model = load_classifier(args.config_file, args.weights, args.opts, args.allow_partial_weights)
    run_identity = {"config_file": os.path.abspath(resolve_config_file(args.config_file)), "opts": list(args.opts),
                    "weights": args.weights, "weights_sha256": file_sha256(args.weights)}
    return generate_pseudo_boxes(
        model, args.dataset, args.output, options_from_args(args), batch_size=args.batch_size,
        num_workers=args.num_workers, run_identity=run_identity, overwrite=args.overwrite,
    )


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    launch(_worker, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    main()

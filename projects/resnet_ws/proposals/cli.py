"""
The command line of the proposal tools (``python -m projects.resnet_ws.proposals``, the
``d2c-proposals`` command): generation by default, ``convert`` and ``visualize`` sub-commands.

    # Selective Search (OpenCV contrib) over registered datasets: resumable, parallel
    python -m projects.resnet_ws.proposals --dataset voc_2007_trainval --output ss_voc07.pkl \\
        [--mode fast] [--max-proposals 4000] [--num-workers 8] [--num-shards 4 --shard-index K]
    # published .mat files (Fast R-CNN's Selective Search, MCG) -> the same pickle
    python -m projects.resnet_ws.proposals convert --format ss --input voc_2007_trainval.mat \\
        --dataset voc_2007_trainval --output ss_voc07.pkl
    # PNGs of the top proposals (and the real boxes) of a few images
    python -m projects.resnet_ws.proposals visualize --proposals ss_voc07.pkl \\
        --dataset voc_2007_trainval --output-dir ss_pictures [--num-images 4 --top 20]

Generation runs ``--num-workers`` processes on this machine; several machines sharing the output
folder run the same command with ``--num-shards S --shard-index K``. A killed run restarted with
the same command continues where it stopped (see ``projects.resnet_ws.proposals.generate``).
"""

import argparse
import logging
import sys
from typing import Dict, Optional, Sequence

from detectron2.utils.logger import setup_logger

from .generate import ProposalOptions, generate_proposals
from .mat_files import convert_mcg_mats, convert_selective_search_mat
from .pictures import save_proposal_pictures
from .search import SELECTIVE_SEARCH_MODES

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _parse_generate_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projects.resnet_ws.proposals",
        description="Selective Search proposals of registered datasets -> detectron2 proposal pickle "
        "(subcommands: convert, visualize; see their --help)",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = ProposalOptions()
    parser.add_argument("--dataset", action="append", required=True, help="registered dataset; repeat for several")
    parser.add_argument("--output", required=True, help="proposal pickle to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--mode", choices=SELECTIVE_SEARCH_MODES, default=defaults.mode)
    parser.add_argument("--max-proposals", type=int, default=defaults.max_proposals, help="per image, 0 = all")
    parser.add_argument("--min-size", type=float, default=defaults.min_size, help="min box width and height (pixels)")
    parser.add_argument("--max-image-size", type=int, default=defaults.max_image_size,
                        help="segment images with a longer side at this size (boxes scaled back); 0 = never")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="of OpenCV's random ranking")
    parser.add_argument("--num-workers", type=int, default=1, help="processes on this machine (1: this process)")
    parser.add_argument("--opencv-threads", type=int, default=1, help="cv2.setNumThreads of each process")
    parser.add_argument("--num-shards", type=int, default=1, help="runs (machines) sharing the images")
    parser.add_argument("--shard-index", type=int, default=0, help="which of them this run is")
    parser.add_argument("--flush-every", type=int, default=16, help="images per flush of the part file")
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images (quick runs); 0 = all")
    return parser.parse_args(argv)


def _parse_convert_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projects.resnet_ws.proposals convert",
        description="Published .mat proposals -> detectron2 proposal pickle (images matched by file name stem)",
    )
    parser.add_argument("--format", choices=("ss", "mcg"), required=True,
                        help="ss: one Fast R-CNN Selective Search .mat; mcg: a folder of per-image MCG .mat files")
    parser.add_argument("--input", required=True, help="the .mat file (ss) or the folder of .mat files (mcg)")
    parser.add_argument("--dataset", action="append", required=True, help="registered dataset; repeat for several")
    parser.add_argument("--output", required=True, help="proposal pickle to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return parser.parse_args(argv)


def _parse_visualize_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projects.resnet_ws.proposals visualize",
        description="PNGs of the top proposals (magenta) and real boxes (lime, dashed) of a dataset's first images",
    )
    parser.add_argument("--proposals", required=True, help="proposal pickle")
    parser.add_argument("--dataset", required=True, help="registered dataset the pickle covers")
    parser.add_argument("--output-dir", required=True, help="folder of the PNGs")
    parser.add_argument("--num-images", type=int, default=4)
    parser.add_argument("--top", type=int, default=20, help="proposals drawn per image")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Optional[Dict[str, float]]:
    """Run the sub-command of ``argv`` (default: generation); returns the statistics of the file
    it wrote (None for pictures, and for a shard that leaves the writing to another one)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logger(name="projects.resnet_ws")
    if argv[:1] == ["convert"]:
        args = _parse_convert_args(argv[1:])
        convert = convert_selective_search_mat if args.format == "ss" else convert_mcg_mats
        return convert(args.input, args.dataset, args.output, overwrite=args.overwrite)
    if argv[:1] == ["visualize"]:
        args = _parse_visualize_args(argv[1:])
        for path in save_proposal_pictures(args.proposals, args.dataset, args.output_dir, args.num_images, args.top):
            logger.info(f"Wrote {path}")
        return None
    args = _parse_generate_args(argv)
    options = ProposalOptions(mode=args.mode, max_proposals=args.max_proposals, min_size=args.min_size,
                              max_image_size=args.max_image_size, seed=args.seed)
    return generate_proposals(
        args.dataset, args.output, options, num_workers=args.num_workers, opencv_threads=args.opencv_threads,
        num_shards=args.num_shards, shard_index=args.shard_index, flush_every=args.flush_every,
        max_images=args.max_images, overwrite=args.overwrite,
    )

"""The converter's command line: read a checkpoint of one format, convert it, fit and check it
against a config's model when one is named, write ``{"model": state_dict}``."""
import argparse
import logging
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from detectron2.config import LazyConfig, instantiate

from ..config import apply_overrides, resolve_config_file
from .caffe2 import convert_detectron
from .conversion import CHANNEL_ORDERS, CLASSIFIER, Conversion, InputConvention
from .dap_splits import convert_dap_split
from .drn_wsod import convert_drn_wsod
from .files import load_model_state_dict, save_model_state_dict
from .maskrcnn_benchmark import convert_maskrcnn_benchmark
from .msad import convert_msad
from .san import convert_san
from .slimmable import convert_slimmable
from .target import CLASSIFIER_BACKBONE_PREFIX, FPN_BACKBONE_PREFIX, check_loads, fit_to_model, place_backbone
from .torchvision_resnet import convert_torchvision

logger = logging.getLogger(__name__)


def _classifier(state, args) -> Conversion:
    if not any(key.startswith(CLASSIFIER_BACKBONE_PREFIX) for key in state):
        raise ValueError(
            f"no '{CLASSIFIER_BACKBONE_PREFIX}*' weights among the {len(state)} keys (first: {sorted(state)[:5]}): "
            "the input must be an ImageClassifier checkpoint saved by DetectionCheckpointer; other code bases' "
            "files need --from (torchvision, san, slimmable, msad, maskrcnn-benchmark, drn-wsod, detectron)"
        )
    return Conversion(dict(state), CLASSIFIER, input=None)


# name -> (what it reads, conversion of (state dict, parsed arguments))
FORMATS: Dict[str, Tuple[str, Callable]] = {
    "classifier": ("an ImageClassifier checkpoint of this collection (the default): its backbone for a detector",
                   _classifier),
    "torchvision": ("torchvision ImageNet ResNets", lambda state, args: convert_torchvision(state, args.input_format)),
    "san": ("d-li14/SAN meta ResNet-18/50 and MobileNetV2, and its single-resolution ResNet baselines",
            lambda state, args: convert_san(state, args.input_format)),
    "slimmable": ("JiahuiYu/slimmable_networks' slimmable ResNet-50 at one --width (MSAD's ImageNet start)",
                  lambda state, args: convert_slimmable(state, args.width, args.input_format)),
    "msad": ("dvlab-research/MSAD FCOS teachers and students", lambda state, args: convert_msad(state)),
    "maskrcnn-benchmark": ("mikuhatsune/dap's ImageNet-22K classifiers and DAP Faster R-CNN R50/R101-FPN",
                           lambda state, args: convert_maskrcnn_benchmark(state, args.input_format,
                                                                          args.source_channel_order)),
    "drn-wsod": ("shenyunhang/DRN-WSOD's ResNet18/50/101-WS ImageNet models (resnet*_ws_model_120.pkl) and WSOD "
                 "detectors of its detectron2 fork",
                 lambda state, args: convert_drn_wsod(state, args.input_format)),
    "detectron": ("Detectron / detectron2 MSRA ResNet .pkl (R-50.pkl, R-101.pkl)",
                  lambda state, args: convert_detectron(state, args.input_format)),
}
DAP_SPLIT = "dap-split"
"""Not a checkpoint: the DAP authors' low-data split files, written as our k-shot split files."""
FIRST_CONV_FORMATS = ("torchvision", "san", "slimmable", "maskrcnn-benchmark", "drn-wsod", "detectron")


def load_config_with_overrides(config: str, overrides: Sequence[str]):
    """The LazyConfig ``config`` (a path or a collection config name; model configs such as
    ``common/models/classifier.py`` too) with its ``key=value`` overrides, checked."""
    return apply_overrides(LazyConfig.load(resolve_config_file(config)), list(overrides))


def _config_key(node, key: str, path: str = "model") -> Optional[str]:
    """The dotted path of the first ``key`` in a config tree (``model.detector.pixel_mean``)."""
    if key in node:
        return f"{path}.{key}"
    for name in node:
        child = node[name]
        if hasattr(child, "keys"):
            found = _config_key(child, key, f"{path}.{name}")
            if found:
                return found
    return None


def _check_normalisation(cfg, model, expected: InputConvention, input_format: str) -> None:
    """Log the overrides that give the model the normalisation the weights were trained with."""
    holder = next((m for m in model.modules() if isinstance(getattr(m, "pixel_mean", None), torch.Tensor)), None)
    if holder is None:
        return
    order = slice(None, None, -1) if input_format == "RGB" else slice(None)
    wanted = {"pixel_mean": list(expected.pixel_mean)[order], "pixel_std": list(expected.pixel_std)[order]}
    differing = {name: values for name, values in wanted.items()
                 if not torch.allclose(getattr(holder, name).flatten(), torch.tensor(values), atol=1e-3)}
    if differing:
        overrides = " ".join(f"{_config_key(cfg.model, name)}=[{','.join(f'{v:g}' for v in values)}]"
                             for name, values in differing.items())
        logger.warning("The weights expect %s, which the config does not give: evaluate (and fine-tune, to keep "
                       "the pre-training's inputs) with %s", expected.description, overrides)


def convert(args) -> Conversion:
    """Read ``args.input``, convert it from ``args.format``, fit it to the target, write it."""
    conversion = FORMATS[args.format][1](load_model_state_dict(args.input), args)
    backbone_prefix = FPN_BACKBONE_PREFIX if args.fpn else args.backbone_prefix
    if args.config:
        cfg = load_config_with_overrides(args.config, args.overrides)
        model = instantiate(cfg.model).eval()
        conversion, initialised_prefix = fit_to_model(conversion, model, backbone_prefix)
        conversion.log(args.format)
        left_to_the_config = check_loads(conversion.state, model, initialised_prefix)
        logger.info("Checked: the %d tensors load into the %s of %s%s", len(conversion.state), type(model).__name__,
                    args.config, "" if initialised_prefix is None else
                    f" under '{initialised_prefix}'; the config initialises its {len(left_to_the_config)} other "
                    f"tensors (e.g. {', '.join(left_to_the_config[:3])})")
        if conversion.input is not None:
            _check_normalisation(cfg, model, conversion.input, args.input_format)
    else:
        if backbone_prefix is not None or args.format == "classifier":
            conversion = place_backbone(conversion, backbone_prefix or CLASSIFIER_BACKBONE_PREFIX)
        conversion.log(args.format)
    save_model_state_dict(conversion.state, args.output)
    return conversion


def _parser() -> argparse.ArgumentParser:
    formats = "\n".join(f"  {name:<20}{description}" for name, (description, _) in FORMATS.items())
    parser = argparse.ArgumentParser(
        prog="python -m projects.common.checkpoint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert published checkpoints (and our classifiers) into {'model': state_dict} files that "
        "load into the collection's configs (train.init_checkpoint=...).",
        epilog=f"formats:\n{formats}\n  {DAP_SPLIT:<20}the DAP authors' low-data split JSONs -> our k-shot split files "
        "(--output is the split folder)\n\nMODEL_ZOO.md lists every published model with its command.",
    )
    parser.add_argument("--from", dest="format", choices=list(FORMATS) + [DAP_SPLIT],
                        help="format of --input (default: classifier)")
    parser.add_argument("--from-torchvision", action="store_true", help="the same as --from torchvision")
    parser.add_argument("--input", required=True, help="the checkpoint to convert (.pth, .pt, .pth.tar, .pkl)")
    parser.add_argument("--output", required=True, help="where to write the converted weights (.pth)")
    parser.add_argument("--config", help="config (path or name) whose model the output must load into: checked, "
                        "and a classifier's backbone is placed where that model keeps its backbone")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of --config (e.g. the width)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--fpn", action="store_true", help="place a classifier's backbone as an FPN detector's "
                        "bottom-up (backbone.bottom_up.*)")
    target.add_argument("--backbone-prefix", help="place a classifier's backbone under this prefix (e.g. "
                        "detector.backbone.bottom_up.)")
    parser.add_argument("--input-format", choices=CHANNEL_ORDERS, default="BGR",
                        help="channel order the converted model is fed (default BGR, as the configs)")
    parser.add_argument("--width", type=float, help="slimmable: the width to extract (0.25, 0.5, 0.75 or 1.0)")
    parser.add_argument("--source-channel-order", choices=CHANNEL_ORDERS,
                        help="maskrcnn-benchmark detectors: the channel order they were trained on (default: "
                        "read from the backbone's BN statistics)")
    parser.add_argument("--base", help=f"{DAP_SPLIT}: the dataset the split is of (voc_0712_trainval, coco_2017_train)")
    parser.add_argument("--k", type=int, help=f"{DAP_SPLIT}: images per class")
    parser.add_argument("--seed", type=int, help=f"{DAP_SPLIT}: which of the authors' splits of this k (0, 1, ...)")
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    if args.from_torchvision:
        if args.format not in (None, "torchvision"):
            parser.error(f"--from-torchvision contradicts --from {args.format}")
        args.format = "torchvision"
    args.format = args.format or "classifier"
    split_options = ("base", "k", "seed")
    if args.format == DAP_SPLIT:
        missing = [f"--{name}" for name in split_options if getattr(args, name) is None]
        if missing:
            parser.error(f"--from {DAP_SPLIT} needs {' '.join(missing)}")
        return
    given = [f"--{name}" for name in split_options if getattr(args, name) is not None]
    if given:
        parser.error(f"{' '.join(given)} only apply with --from {DAP_SPLIT}")
    if (args.width is None) == (args.format == "slimmable"):
        parser.error("--from slimmable needs --width (0.25, 0.5, 0.75 or 1.0)" if args.width is None
                     else "--width only applies with --from slimmable")
    if args.source_channel_order and args.format != "maskrcnn-benchmark":
        parser.error("--source-channel-order only applies with --from maskrcnn-benchmark")
    if args.input_format != "BGR" and args.format not in FIRST_CONV_FORMATS:
        parser.error(f"--input-format only applies to formats whose first conv has a known channel order: "
                     f"{', '.join(FIRST_CONV_FORMATS)}")
    if args.overrides and not args.config:
        parser.error(f"overrides {args.overrides} need --config")


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.format == DAP_SPLIT:
        return convert_dap_split(args.input, args.output, args.base, args.k, args.seed)
    return convert(args)

"""Stand-ins for published checkpoints in the converter's tests: state dicts with exactly the
authors' keys and shapes and random values, and our configs' models to load them into.

Keys and shapes come from listings made by running the authors' model code
(``data/checkpoint_keys/*.txt``, each saying how), or, for Caffe2 files that no code here can build,
from the authors' blob-naming code, written out below with a reference to it.
"""
import os
import pickle
from typing import Dict, Mapping, Tuple

import numpy as np
import torch

from detectron2.config import LazyConfig, instantiate

from projects.common.config import apply_overrides, resolve_config_file

LISTINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "checkpoint_keys")
Shapes = Dict[str, Tuple[int, ...]]


def listed_shapes(name: str) -> Shapes:
    """``{key: shape}`` of the listing ``data/checkpoint_keys/<name>.txt`` ("key d0,d1,..." lines)."""
    shapes = {}
    with open(os.path.join(LISTINGS, name + ".txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, _, shape = line.rstrip("\n").partition(" ")
            shapes[key] = tuple(int(size) for size in shape.split(",") if size)
    return shapes


def random_state(shapes: Mapping[str, Tuple[int, ...]], seed: int = 0, device: str = "cpu",
                 caffe_statistics: bool = False) -> Dict[str, torch.Tensor]:
    """Random tensors of ``shapes``: normal values, positive BN variances, step counters of 7;
    ``caffe_statistics``: BN means 0 and variances 1 (a backbone loaded from a caffe model and kept
    frozen). On ``device="meta"`` only shapes exist (for models too big to fill)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, device=device)
        elif device == "meta":
            state[key] = torch.empty(shape, device="meta")
        elif key.endswith("running_var"):
            state[key] = torch.ones(shape) if caffe_statistics else torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("running_mean") and caffe_statistics:
            state[key] = torch.zeros(shape)
        else:
            state[key] = torch.randn(shape, generator=generator)
    return state


def config_model(name: str, *overrides: str, device: str = "cpu") -> torch.nn.Module:
    """The model of the collection's config ``name`` with ``key=value`` overrides (on ``device``;
    "meta" builds it without memory)."""
    cfg = apply_overrides(LazyConfig.load(resolve_config_file(name)), list(overrides))
    with torch.device(device):
        return instantiate(cfg.model).eval()


def assert_keys_and_shapes(state: Mapping[str, torch.Tensor], model: torch.nn.Module) -> None:
    """``state`` has exactly the model's keys (BN step counters aside: loading restarts them at 0),
    each with the model's shape."""
    model_state = {key: value for key, value in model.state_dict().items() if not key.endswith("num_batches_tracked")}
    assert sorted(set(model_state) - set(state))[:5] == [], "missing"
    assert sorted(set(state) - set(model_state))[:5] == [], "unexpected"
    wrong = [(key, tuple(state[key].shape), tuple(value.shape)) for key, value in model_state.items()
             if tuple(state[key].shape) != tuple(value.shape)]
    assert wrong == [], wrong[:5]


def save_caffe2_pickle(blobs: Mapping[str, torch.Tensor], path: str) -> None:
    """``blobs`` as a Caffe2 / Detectron ``.pkl``: a pickled dict of float32 numpy arrays."""
    with open(path, "wb") as f:
        pickle.dump({key: value.numpy().astype(np.float32) for key, value in blobs.items()}, f)


def _affine_conv(shapes: Shapes, layer: str, out_channels: int, in_channels: int, kernel: int) -> None:
    """A Caffe2 ``ConvAffine`` / ``Conv`` + ``AffineChannel``: ``<layer>_w`` and ``<layer>_bn_{s,b}``."""
    shapes[f"{layer}_w"] = (out_channels, in_channels, kernel, kernel)
    shapes[f"{layer}_bn_s"] = shapes[f"{layer}_bn_b"] = (out_channels,)


def resnet_ws_blob_shapes(depth: int, width: float = 1.0, neck: Tuple[int, int] = (4096, 4096), pooled: int = 7,
                          num_classes: int = 1000) -> Shapes:
    """The blobs of a DRN-WSOD ResNet-WS ImageNet model, named as the authors' Caffe2 code names them
    (shenyunhang/DRN-WSOD, detectron/modeling/ResNet_WS.py: ``basic_bn_stem`` conv1_1..3 with ``_bn``;
    ``add_stage`` / ``add_residual_block`` ``resS_B``; ``residual_transformation`` (R18) branch2a/2b or
    ``bottleneck_transformation`` branch2a/2b/2c with inner widths 64 x 2^(S-2); ``basic_bn_shortcut``
    branch1 when the channels change; ``add_Resnet_2fc_head`` fc6 / fc7) and the 1000-way classifier
    fc8. ``width`` < 1 scales the channels as the CPU configs do."""
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    basic = depth < 50
    outs = [int(round(c * width)) for c in ((64, 128, 256, 512) if basic else (256, 512, 1024, 2048))]
    stem = int(round(64 * width))
    shapes: Shapes = {}
    _affine_conv(shapes, "conv1_1", stem, 3, 3)
    _affine_conv(shapes, "conv1_2", stem, stem, 3)
    _affine_conv(shapes, "conv1_3", stem, stem, 3)
    channels = stem
    for stage, (count, out) in enumerate(zip(blocks, outs), start=2):
        for block in range(count):
            prefix = f"res{stage}_{block}"
            if basic:
                _affine_conv(shapes, f"{prefix}_branch2a", out, channels, 3)
                _affine_conv(shapes, f"{prefix}_branch2b", out, out, 3)
            else:
                inner = out // 4
                _affine_conv(shapes, f"{prefix}_branch2a", inner, channels, 1)
                _affine_conv(shapes, f"{prefix}_branch2b", inner, inner, 3)
                _affine_conv(shapes, f"{prefix}_branch2c", out, inner, 1)
            if channels != out:
                _affine_conv(shapes, f"{prefix}_branch1", out, channels, 1)
            channels = out
    shapes.update({"fc6_w": (neck[0], channels * pooled * pooled), "fc6_b": (neck[0],),
                   "fc7_w": (neck[1], neck[0]), "fc7_b": (neck[1],),
                   "fc8_w": (num_classes, neck[1]), "fc8_b": (num_classes,)})
    return shapes


def msra_resnet_blob_shapes(depth: int = 50) -> Shapes:
    """The blobs of Detectron's MSRA ResNet ``R-50.pkl`` / ``R-101.pkl``: ``conv1_w``, ``conv1_b`` (a
    bias of ~1e-9 the converted caffe model kept), ``res_conv1_bn_{s,b}``, bottlenecks
    ``resS_B_branch2{a,b,c}`` and projections ``branch1`` with ``_bn_{s,b}``, ``fc1000_{w,b}``.
    The names are Detectron's (detectron/modeling/ResNet.py); that the ImageNet file also holds
    ``conv1_b`` and ``fc1000_*`` is recorded by Detectron.pytorch (roytseng-tw), whose loader lists
    them as the file's orphans."""
    blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    shapes: Shapes = {"conv1_w": (64, 3, 7, 7), "conv1_b": (64,), "res_conv1_bn_s": (64,), "res_conv1_bn_b": (64,)}
    channels = 64
    for stage, (count, out) in enumerate(zip(blocks, (256, 512, 1024, 2048)), start=2):
        inner = out // 4
        for block in range(count):
            prefix = f"res{stage}_{block}"
            _affine_conv(shapes, f"{prefix}_branch2a", inner, channels, 1)
            _affine_conv(shapes, f"{prefix}_branch2b", inner, inner, 3)
            _affine_conv(shapes, f"{prefix}_branch2c", out, inner, 1)
            if block == 0:
                _affine_conv(shapes, f"{prefix}_branch1", out, channels, 1)
            channels = out
    shapes.update({"fc1000_w": (1000, 2048), "fc1000_b": (1000,)})
    return shapes

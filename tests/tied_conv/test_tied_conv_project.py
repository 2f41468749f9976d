"""tied_conv project integration: context (GCB/TiedGCB) bottlenecks and the residual-branch
attention registry they share with the tied bottleneck, width-scaled TiedResNet,
the project's configs, and a CPU config trained and evaluated through train_net.py."""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch

from detectron2.config import LazyConfig, instantiate
from detectron2.modeling.backbone.resnet import BottleneckBlock

from projects.common.modeling import scaled_resnet_stages
from tied_conv import (
    RESIDUAL_ATTENTION_MODULES,
    ContextBottleneckBlock,
    TiedBottleneckBlock,
    TiedGCB,
    build_tied_resnet,
    context_resnet_stages,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIED_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs/tied_conv/*.py")))


def test_context_block_is_bottleneck_plus_context():
    torch.manual_seed(0)
    plain = BottleneckBlock(64, 128, bottleneck_channels=32, stride=2, norm="BN").eval()
    with_context = ContextBottleneckBlock(64, 128, bottleneck_channels=32, stride=2, norm="BN",
                                          context="gcb", context_B=2).eval()
    missing, unexpected = with_context.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("context.") for key in missing)
    x = torch.randn(2, 64, 16, 16)
    # a fresh GCB ends in a zero-initialised conv: the block starts as the plain bottleneck
    assert torch.allclose(with_context(x), plain(x), atol=1e-6)
    torch.nn.init.normal_(list(with_context.context.parameters())[-1])
    assert not torch.allclose(with_context(x), plain(x), atol=1e-3)


def test_context_stages_only_where_asked():
    stages = context_resnet_stages(50, context="gcb", context_B=4, context_stages=("res4",), norm="BN")
    kinds = [{type(block) for block in stage} for stage in stages]
    assert kinds == [{BottleneckBlock}, {BottleneckBlock}, {ContextBottleneckBlock}, {BottleneckBlock}]
    assert all(isinstance(block.context, TiedGCB) and block.context.B == 4 for block in stages[2])
    with pytest.raises(ValueError, match="res2..res5"):
        scaled_resnet_stages(50, stage_overrides={"res6": {}})


def test_scaled_resnet_stages_width_one_is_detectron2():
    from detectron2.modeling.backbone.resnet import ResNet

    ours = sum(p.numel() for stage in scaled_resnet_stages(50, norm="BN") for block in stage for p in block.parameters())
    theirs = sum(p.numel() for stage in ResNet.make_default_stages(50, norm="BN") for block in stage
                 for p in block.parameters())
    assert ours == theirs


def test_width_scaled_tied_resnet():
    backbone = build_tied_resnet(50, width=0.25, norm="BN", freeze_at=0, out_features=["res2", "res5"])
    shapes = backbone.output_shape()
    assert (shapes["res2"].channels, shapes["res5"].channels) == (64, 512)
    assert (shapes["res2"].stride, shapes["res5"].stride) == (4, 32)
    out = backbone(torch.randn(1, 3, 64, 64))
    assert out["res5"].shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match="width"):
        build_tied_resnet(50, width=0)


@pytest.mark.parametrize("config", [os.path.relpath(c, REPO) for c in TIED_CONFIGS])
def test_tied_conv_config_builds(config):
    cfg = LazyConfig.load(os.path.join(REPO, config))
    if "model" not in cfg:
        return
    model = instantiate(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 1e6


@pytest.mark.slow
def test_cpu_config_trains_and_reports_occlusion_buckets(tmp_path):
    output_dir = tmp_path / "tied"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "train_net.py"), "--config-file",
         os.path.join(REPO, "configs/tied_conv/synthetic_faster_rcnn_tied_resnet50_fpn_cpu.py"),
         f"train.output_dir={output_dir}", "train.max_iter=3", "train.eval_period=3",
         "dataloader.train.total_batch_size=2", "lr_multiplier.warmup_iters=1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    final = [json.loads(line) for line in open(output_dir / "metrics.json")][-1]
    assert "bbox/AP" in final and "occlusion/images_r0.8to1.0" in final
    assert sum(final[f"occlusion/images_r{b}"] for b in ("0.0to0.2", "0.2to0.4", "0.4to0.6", "0.6to0.8", "0.8to1.0")) > 0
    assert (output_dir / "occlusion" / "occlusion_ap.png").exists()


@pytest.mark.parametrize("name", sorted(RESIDUAL_ATTENTION_MODULES))
def test_both_bottlenecks_share_the_residual_attention_registry(name):
    context_block = ContextBottleneckBlock(64, 256, bottleneck_channels=64, norm="BN", context=name, context_B=2)
    tied_block = TiedBottleneckBlock(64, 256, split_width=16, norm="BN", attention=name, attention_B=2)
    expected = RESIDUAL_ATTENTION_MODULES[name](256, B=2)
    for module in (context_block.context, tied_block.attention):
        assert type(module) is type(expected)
        assert {k: v.shape for k, v in module.state_dict().items()} == {
            k: v.shape for k, v in expected.state_dict().items()}


def test_unknown_residual_attention_fails_the_same_way_in_both_bottlenecks():
    message = r"residual-branch attention 'cbam' is unknown: use one of \['gcb', 'se'\]"
    with pytest.raises(ValueError, match=message):
        ContextBottleneckBlock(64, 256, bottleneck_channels=64, context="cbam")
    with pytest.raises(ValueError, match=message):
        TiedBottleneckBlock(64, 256, split_width=16, attention="cbam")

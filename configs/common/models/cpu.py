"""Shrinks the FPN detectors of configs/common/models to CPU size for the synthetic data.

ResNet-18 at half width trained from scratch (BN, not FrozenBN: nothing is pre-trained), a
narrower FPN, anchors halved for ~256 px images with 12..120 px objects, and fewer
proposals/RoIs. Each
``*_cpu.py`` model config applies these to its full-size twin, so the two never drift apart.
"""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from projects.common.modeling import scaled_resnet_stages


def shrink_resnet(resnet, depth=18, width=0.5, norm="BN"):
    """A detectron2 ``ResNet`` config made ResNet-``depth`` at ``width`` x the usual channels with
    ``norm``: the CPU detectors' bottom-up, and classifiers whose weights must fit it."""
    stem_channels = int(64 * width)
    resnet.stem.update(out_channels=stem_channels, norm=norm)
    resnet.stages = L(scaled_resnet_stages)(depth=depth, width=width, stem_channels=stem_channels, norm=norm)


def shrink_resnet_fpn(backbone, depth=18, width=0.5, fpn_channels=128, norm="BN"):
    """ResNet-``depth`` bottom-up at ``width`` x the usual channels with trainable ``norm``,
    and an FPN of ``fpn_channels``."""
    shrink_resnet(backbone.bottom_up, depth, width, norm)
    backbone.out_channels = fpn_channels
    if "in_channels" in backbone.top_block:  # RetinaNet's P6/P7 are computed from res5
        backbone.top_block.in_channels = int((512 if depth < 50 else 2048) * width)


def halve_anchors(anchor_generator):
    anchor_generator.sizes = [[size / 2 for size in level] for level in anchor_generator.sizes]


def cpu_sized_rcnn(model):
    """Faster/Mask R-CNN FPN at CPU size (in place)."""
    shrink_resnet_fpn(model.backbone)
    channels = model.backbone.out_channels
    rpn = model.proposal_generator
    rpn.head.in_channels = channels
    halve_anchors(rpn.anchor_generator)
    rpn.pre_nms_topk = (1000, 500)
    rpn.post_nms_topk = (500, 200)
    heads = model.roi_heads
    heads.batch_size_per_image = 64
    heads.box_pooler.sampling_ratio = 2  # adaptive sampling makes CPU RoIAlign backward slow
    heads.box_head.input_shape = ShapeSpec(channels=channels, height=7, width=7)
    heads.box_head.fc_dims = [512, 512]
    heads.box_predictor.input_shape = ShapeSpec(channels=512)
    if heads.get("mask_head") is not None:
        heads.mask_head.input_shape = ShapeSpec(channels=channels, height=14, width=14)
        heads.mask_pooler.sampling_ratio = 2
        heads.mask_head.conv_dims = [channels] * 3


def cpu_sized_retinanet(model):
    """RetinaNet FPN at CPU size (in place), with GroupNorm in the head (RetinaNet-GN): trained from
    scratch at batch 4 the plain head either diverges (LR 0.01) or barely learns (0.0025)."""
    shrink_resnet_fpn(model.backbone)
    channels = model.backbone.out_channels
    model.head.input_shape = [ShapeSpec(channels=channels)] * len(model.head.input_shape)
    model.head.conv_dims = [channels] * 2
    model.head.norm = "GN"
    halve_anchors(model.anchor_generator)


def cpu_sized_fcos(model):
    """FCOS FPN at CPU size (in place): the FPN's channels through a GroupNorm head of 2 + 2 convs
    (as the CPU RetinaNet's; 4 + 4 make a CPU training step 1.4x slower), and every regression range
    bound halved like the anchors (objects of ~256 px images are about a third of COCO's)."""
    shrink_resnet_fpn(model.backbone)
    channels = model.backbone.out_channels
    model.head.input_shape = [ShapeSpec(channels=channels)] * len(model.head.input_shape)
    model.head.conv_dims = [channels] * 2
    model.size_ranges = [[low if low < 0 else low / 2, high / 2] for low, high in model.size_ranges]

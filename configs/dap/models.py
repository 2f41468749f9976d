"""Model adjustments of the full-scale DAP configs (imported by them, not a config itself)."""

TORCHVISION_PIXEL_STD = [57.375, 57.120, 58.395]  # ImageNet std in BGR, 0..255 (as the classifiers)


def torchvision_style_backbone(model, depth=50, freeze_at=1):
    """Detector ``model`` (FPN) with the bottom-up of a torchvision ImageNet ResNet: stride in the
    3x3 conv, ImageNet std, frozen BN and, with ``freeze_at=1``, a frozen stem (the paper's
    fine-tuning; 5 freezes the whole ResNet, Table 3)."""
    bottom_up = model.backbone.bottom_up
    bottom_up.stages.update(depth=depth, stride_in_1x1=False, norm="FrozenBN")
    bottom_up.stem.norm = "FrozenBN"
    bottom_up.freeze_at = freeze_at
    model.pixel_std = TORCHVISION_PIXEL_STD
    return model

"""Faster R-CNN R50-FPN: detectron2's Mask R-CNN FPN without its mask branch."""
from .mask_rcnn_fpn import model

model.roi_heads.update(mask_in_features=None, mask_pooler=None, mask_head=None)

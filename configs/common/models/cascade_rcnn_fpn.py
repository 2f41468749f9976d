"""Cascade R-CNN R50-FPN, boxes only (detectron2's model-zoo Cascade Mask R-CNN without masks)."""
from detectron2.model_zoo import get_config

model = get_config("common/models/cascade_rcnn.py").model
model.roi_heads.update(mask_in_features=None, mask_pooler=None, mask_head=None)

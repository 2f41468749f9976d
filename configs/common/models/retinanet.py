"""RetinaNet R50-FPN (detectron2's model-zoo definition)."""
from detectron2.model_zoo import get_config

model = get_config("common/models/retinanet.py").model

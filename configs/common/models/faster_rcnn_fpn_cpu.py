"""CPU-sized twin of faster_rcnn_fpn.py (see cpu.py)."""
from .faster_rcnn_fpn import model
from .cpu import cpu_sized_rcnn

cpu_sized_rcnn(model)

"""CPU-sized twin of mask_rcnn_fpn.py (see cpu.py)."""
from .mask_rcnn_fpn import model
from .cpu import cpu_sized_rcnn

cpu_sized_rcnn(model)

"""CPU-sized twin of retinanet.py (see cpu.py)."""
from .cpu import cpu_sized_retinanet
from .retinanet import model

cpu_sized_retinanet(model)

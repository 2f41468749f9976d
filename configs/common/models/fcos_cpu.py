"""CPU-sized twin of fcos.py (see cpu.py)."""
from .cpu import cpu_sized_fcos
from .fcos import model

cpu_sized_fcos(model)

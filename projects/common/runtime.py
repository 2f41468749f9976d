"""Facts about the running detectron2/torch installation that the collection adapts to."""
import importlib.util

import torch


def has_c_extension() -> bool:
    """Whether detectron2 was built with its C++/CUDA ops (rotated boxes, deformable conv)."""
    return importlib.util.find_spec("detectron2._C") is not None


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` means CUDA when this machine has it, else CPU; anything else is kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={device!r} but CUDA is not available: use train.device=auto or cpu")
    return device

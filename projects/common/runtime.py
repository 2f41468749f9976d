"""Facts about the running detectron2/torch installation that the collection adapts to."""
import importlib.util
import logging

import torch


def has_c_extension() -> bool:
    """Whether detectron2 was built with its C++/CUDA ops (rotated boxes need them; deformable
    convolution and fast COCO evaluation have stand-ins, see tools/install_detectron2.py)."""
    return importlib.util.find_spec("detectron2._C") is not None


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` means CUDA when this machine has it, else CPU; anything else is kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={device!r} but CUDA is not available: use train.device=auto or cpu")
    return device


def checkpoint_default_trainer_optimizer() -> None:
    """detectron2 v0.6's ``DefaultTrainer`` checkpoints only its iteration and hook states: the
    optimizer (and AMP's grad scaler) belong to its inner ``SimpleTrainer``, whose state was never
    saved, so a resumed ``DefaultTrainer`` run restarted at the warm-up LR with zero momentum. Later
    detectron2 versions save it under ``"_trainer"``; this adds the same two methods where they are
    missing and is a no-op on a detectron2 that has them. Applied when ``projects.common`` is
    imported."""
    from detectron2.engine import DefaultTrainer, TrainerBase

    if "state_dict" in vars(DefaultTrainer):
        return

    def state_dict(self):
        state = TrainerBase.state_dict(self)
        state["_trainer"] = self._trainer.state_dict()
        return state

    def load_state_dict(self, state):
        TrainerBase.load_state_dict(self, state)
        if "_trainer" in state:
            self._trainer.load_state_dict(state["_trainer"])
        else:
            logging.getLogger(__name__).warning(
                "this DefaultTrainer checkpoint has no optimizer state (written by an unpatched "
                "detectron2 v0.6): the optimizer starts afresh")

    DefaultTrainer.state_dict = state_dict
    DefaultTrainer.load_state_dict = load_state_dict

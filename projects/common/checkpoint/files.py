"""Reading the checkpoint files of the formats (PyTorch ``.pth``/``.pt``/``.pth.tar`` and Caffe2
``.pkl`` blobs) and writing converted ones."""
import logging
import os
import pickle
from typing import Dict

import numpy as np
import torch

from ..io import atomic_output
from .conversion import StateDict, strip_prefix

logger = logging.getLogger(__name__)

# Where training scripts keep the weights inside a checkpoint dict: detectron2, maskrcnn-benchmark
# and the slimmable networks use "model"; the PyTorch ImageNet example (SAN, DRN-WSOD) "state_dict".
WEIGHT_ENTRIES = ("model", "state_dict")


def _read_caffe2_pickle(path: str) -> Dict:
    """A Caffe2 / Detectron ``.pkl``: a dict of numpy blobs, under ``"blobs"`` in detection models
    (with ``"model"`` in detectron2 model-zoo files); ``*_momentum`` blobs are SGD state."""
    with open(path, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a dict of blobs: it is not a Caffe2 .pkl "
                         "checkpoint")
    data = data.get("blobs", data.get("model", data))
    return {key: torch.as_tensor(np.asarray(value)) for key, value in data.items()
            if not key.endswith("_momentum") and isinstance(value, (np.ndarray, np.generic, torch.Tensor))}


def load_model_state_dict(path: str) -> StateDict:
    """The model weights of a checkpoint file: its ``"model"`` or ``"state_dict"`` entry, or the
    file itself if it is a plain state dict (torchvision's files); a ``.pkl`` file is read as
    Caffe2 blobs. A ``module.`` prefix on every key (DataParallel) is removed."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}: give the downloaded file's path with --input")
    if path.endswith(".pkl"):
        return strip_prefix(_read_caffe2_pickle(path), "module.")
    # Training checkpoints also hold optimizer/scheduler state and meters, which need full unpickling.
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint
    if isinstance(checkpoint, dict):
        entries = [name for name in WEIGHT_ENTRIES if isinstance(checkpoint.get(name), dict)]
        if entries:
            state = checkpoint[entries[0]]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(
            f"{path} does not hold a state dict (a dict of tensors, or one under {' or '.join(WEIGHT_ENTRIES)!r})"
        )
    return strip_prefix(state, "module.")


def save_model_state_dict(state: StateDict, path: str) -> None:
    """Write ``{"model": state}`` to ``path`` atomically (temporary file + ``os.replace``), so an
    interrupted run never leaves a truncated checkpoint where a training config expects one."""
    with atomic_output(path) as f:
        torch.save({"model": state}, f)
    logger.info("Wrote %s", path)

"""Loading trained weights for inference, evaluation, pseudo-labelling and the demo.

detectron2's checkpointer loads whatever matches and only warns about the rest, which is right
for initialising training (ImageNet weights into a detector) but wrong where the weights are the
result: a detector checkpoint given to a classifier config runs a random network that writes
plausible-looking boxes. Here a checkpoint that leaves parameters of the model unloaded is an
error unless the caller allows it, and running without any weights must be asked for.
"""
import logging

from detectron2.checkpoint import DetectionCheckpointer
from fvcore.common.checkpoint import _filter_reused_missing_keys

__all__ = ["PartialWeightsError", "load_trained_weights"]

logger = logging.getLogger(__name__)


class PartialWeightsError(RuntimeError):
    """A checkpoint does not set every parameter of the model it is loaded into."""


class _RecordingCheckpointer(DetectionCheckpointer):
    """Keeps what ``load`` found incompatible (detectron2 only logs it)."""

    incompatible = None

    def _log_incompatible_keys(self, incompatible) -> None:
        self.incompatible = incompatible
        super()._log_incompatible_keys(incompatible)


def load_trained_weights(model, checkpoint: str, *, allow_partial: bool = False, allow_random: bool = False) -> None:
    """
    Load ``checkpoint`` (a path or URL detectron2 reads, e.g. ``detectron2://...``) into ``model``.

    Raises:
        ValueError: no checkpoint given and ``allow_random`` is false.
        PartialWeightsError: parameters of the model are not in the checkpoint, or have another
            shape there, and ``allow_partial`` is false; the message lists the first ones.
    """
    if not checkpoint:
        if allow_random:
            logger.warning(f"running the {type(model).__name__} with random weights, as asked")
            return
        raise ValueError(
            "no weights given (train.init_checkpoint is empty): name the trained checkpoint, e.g. "
            "train.init_checkpoint=output/<run>/model_final.pth; to run the randomly initialised model on "
            "purpose, pass --allow-random-weights"
        )
    checkpointer = _RecordingCheckpointer(model)
    checkpointer.load(checkpoint)
    incompatible = checkpointer.incompatible
    if incompatible is None or allow_partial:
        return
    missing = sorted(_filter_reused_missing_keys(model, incompatible.missing_keys))
    if missing:
        shapes = [f"{key}: {tuple(saved)} there, {tuple(wanted)} here" for key, saved, wanted in incompatible.incorrect_shapes]
        raise PartialWeightsError(
            f"{checkpoint} leaves {len(missing)} parameters of the {type(model).__name__} unloaded, e.g. "
            f"{missing[:5]}{'; shapes differ: ' + '; '.join(shapes[:3]) if shapes else ''}. It is not a checkpoint "
            "of this config's model: give the weights trained with this config (or convert them with "
            "python -m projects.common.checkpoint), or pass --allow-partial-weights to run with the rest random"
        )

"""Training loop pieces that detectron2's SimpleTrainer lacks."""
import contextlib
import time

import torch

from detectron2.engine import SimpleTrainer


class GradientAccumulationTrainer(SimpleTrainer):
    """
    SimpleTrainer whose every iteration (one optimizer step, one LR-schedule step, one tick of
    ``train.max_iter``) accumulates the gradients of ``accumulation_steps`` batches, each loss
    divided by ``accumulation_steps``: the gradient of a batch that many times larger, for
    schedules such as WSDDN's (4 GPUs x 1 image x 32 accumulations) on fewer devices. Losses are
    logged as their mean over the accumulated batches. Under DistributedDataParallel the
    gradients are all-reduced once, at the last batch.
    """

    def __init__(self, model, data_loader, optimizer, accumulation_steps: int):
        super().__init__(model, data_loader, optimizer)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps={accumulation_steps} must be at least 1")
        self.accumulation_steps = accumulation_steps

    def run_step(self):
        assert self.model.training, "[GradientAccumulationTrainer] model was changed to eval mode!"
        self.optimizer.zero_grad()
        data_time = 0.0
        summed = {}
        for step in range(self.accumulation_steps):
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start
            synchronise = step == self.accumulation_steps - 1 or not hasattr(self.model, "no_sync")
            with contextlib.nullcontext() if synchronise else self.model.no_sync():
                loss_dict = self.model(data)
                if isinstance(loss_dict, torch.Tensor):
                    loss_dict = {"total_loss": loss_dict}
                (sum(loss_dict.values()) / self.accumulation_steps).backward()
            for name, value in loss_dict.items():
                summed[name] = summed.get(name, 0.0) + value.detach()
        self._write_metrics({name: value / self.accumulation_steps for name, value in summed.items()}, data_time)
        self.optimizer.step()

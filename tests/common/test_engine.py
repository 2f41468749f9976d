"""GradientAccumulationTrainer: N accumulated batches = one N-times larger batch."""
import pytest
import torch
from torch import nn

from detectron2.engine import SimpleTrainer
from detectron2.utils.events import EventStorage

from projects.common.engine import GradientAccumulationTrainer


class MeanSquaredError(nn.Module):
    """A linear model whose loss is the mean over the batch (no batch-dependent layers)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
            self.linear.bias.fill_(0.25)

    def forward(self, batch):
        inputs, targets = batch
        return {"loss_mse": ((self.linear(inputs).squeeze(1) - targets) ** 2).mean()}


def one_iteration(trainer_class, batches, **options):
    model = MeanSquaredError()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = trainer_class(model, iter(batches), optimizer, **options)
    with EventStorage() as storage:
        trainer.iter = 0
        trainer.run_step()
    return model, storage


def test_accumulating_two_halves_equals_one_full_batch():
    torch.manual_seed(0)
    inputs, targets = torch.randn(4, 3), torch.randn(4)
    full, full_storage = one_iteration(SimpleTrainer, [(inputs, targets)])
    halves = [(inputs[:2], targets[:2]), (inputs[2:], targets[2:])]
    accumulated, storage = one_iteration(GradientAccumulationTrainer, halves, accumulation_steps=2)
    for a, b in zip(full.parameters(), accumulated.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # the logged loss is the mean over the accumulated batches = the full batch's loss
    logged = storage.history("total_loss").latest()
    assert logged == pytest.approx(full_storage.history("total_loss").latest(), rel=1e-5)


def test_accumulation_steps_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        GradientAccumulationTrainer(MeanSquaredError(), [], torch.optim.SGD(MeanSquaredError().parameters(), lr=0.1),
                                    accumulation_steps=0)

"""LR multipliers. The steps and the cosine are fractions of the run (they move with
``train.max_iter``); the warm-up is a number of iterations (``projects.common.schedules``), read
from ``train.max_iter`` when the config is instantiated and capped at the run."""
from fvcore.common.param_scheduler import CosineParamScheduler, MultiStepParamScheduler

from detectron2.config import LazyCall as L

from projects.common.schedules import warmup_in_iterations


def step_schedule(milestones, max_iter, gamma=0.1, warmup_iters=0, warmup_factor=0.001):
    """LR x ``gamma`` at each milestone (iterations of a ``max_iter`` run; the same fractions of
    any other ``train.max_iter``), linear warm-up over ``warmup_iters`` iterations."""
    values = [gamma**i for i in range(len(milestones) + 1)]
    return L(warmup_in_iterations)(
        scheduler=L(MultiStepParamScheduler)(
            values=values, milestones=list(milestones), num_updates=max_iter
        ),
        warmup_iters=warmup_iters,
        max_iter="${train.max_iter}",
        warmup_factor=warmup_factor,
    )


def cosine_schedule(warmup_iters=0, warmup_factor=0.001):
    """Cosine decay to 0 over the run, linear warm-up over ``warmup_iters`` iterations."""
    return L(warmup_in_iterations)(
        scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.0),
        warmup_iters=warmup_iters,
        max_iter="${train.max_iter}",
        warmup_factor=warmup_factor,
    )


# detectron2's COCO schedules (common/coco_schedule.py) with the same numbers at their own length:
# 1x = 90k iterations at batch 16, LR x0.1 at 60k and 80k (2x: doubled; 3x: the last 60k and 20k),
# 1000 warm-up iterations from 0.001.
lr_multiplier_1x = step_schedule(milestones=[60000, 80000], max_iter=90000, warmup_iters=1000)
lr_multiplier_2x = step_schedule(milestones=[120000, 160000], max_iter=180000, warmup_iters=1000)
lr_multiplier_3x = step_schedule(milestones=[210000, 250000], max_iter=270000, warmup_iters=1000)

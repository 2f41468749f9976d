"""LR multipliers (fractions of the base LR over training, scale-invariant in iterations)."""
from fvcore.common.param_scheduler import CosineParamScheduler, MultiStepParamScheduler

from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config
from detectron2.solver import WarmupParamScheduler

# detectron2's COCO schedules: 1x = 90k iterations at batch 16, LR x0.1 at 2/3 and 8/9.
_coco = get_config("common/coco_schedule.py")
lr_multiplier_1x = _coco.lr_multiplier_1x
lr_multiplier_2x = _coco.lr_multiplier_2x
lr_multiplier_3x = _coco.lr_multiplier_3x


def step_schedule(milestones, max_iter, gamma=0.1, warmup_iters=0, warmup_factor=0.001):
    """LR x ``gamma`` at each milestone iteration, linear warm-up over ``warmup_iters``."""
    values = [gamma**i for i in range(len(milestones) + 1)]
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=values, milestones=list(milestones), num_updates=max_iter
        ),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )


def cosine_schedule(max_iter, warmup_iters=0, warmup_factor=0.001):
    """Cosine decay to 0 over training, linear warm-up over ``warmup_iters``."""
    return L(WarmupParamScheduler)(
        scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.0),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )

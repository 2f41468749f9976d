"""LR multipliers whose warm-up is a number of iterations of the run that actually happens."""
from fvcore.common.param_scheduler import ParamScheduler

from detectron2.solver import WarmupParamScheduler


def warmup_in_iterations(scheduler: ParamScheduler, warmup_iters: int, max_iter: int,
                         warmup_factor: float = 0.001) -> WarmupParamScheduler:
    """detectron2's ``WarmupParamScheduler`` (linear warm-up from ``warmup_factor``) whose warm-up
    lasts ``warmup_iters`` iterations of a run of ``max_iter`` (``train.max_iter`` when the config
    is instantiated), capped at the whole run. detectron2's own ``warmup_length`` is a fraction of
    the run, so a shorter run (``train.max_iter=100``) shrank the warm-up with it and could
    diverge; ``scheduler`` itself is scale-invariant (its steps stay at the same fraction of the run)."""
    if max_iter < 1 or warmup_iters < 0:
        raise ValueError(f"max_iter={max_iter} must be >= 1 and warmup_iters={warmup_iters} >= 0")
    return WarmupParamScheduler(scheduler, warmup_factor, min(warmup_iters, max_iter) / max_iter)

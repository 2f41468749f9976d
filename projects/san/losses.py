"""SAN's scale distillation: larger resolutions teach smaller ones (dense, top-down)."""

from typing import Mapping

import torch
import torch.nn.functional as F


def scale_distillation_loss(logits_by_resolution: Mapping[int, torch.Tensor]) -> torch.Tensor:
    """
    Sum over every pair of resolutions (larger k, smaller j) of
    KL(softmax(z_k) || softmax(z_j)), batch-mean, temperature 1, the teacher z_k detached: the
    dense top-down distillation of the authors' code, so a smaller resolution learns from every
    larger one and no gradient flows from a student back into its teachers.

    Args:
        logits_by_resolution: ``{resolution: (N, num_classes) logits}`` of the same N images.
    Returns:
        a scalar (0 with a single resolution).
    """
    resolutions = sorted(logits_by_resolution, reverse=True)
    log_probabilities = {r: F.log_softmax(logits_by_resolution[r], dim=1) for r in resolutions}
    loss = log_probabilities[resolutions[0]].new_zeros(())
    for index, teacher in enumerate(resolutions):
        teacher_log_probabilities = log_probabilities[teacher].detach()
        for student in resolutions[index + 1:]:
            loss = loss + F.kl_div(
                log_probabilities[student], teacher_log_probabilities, reduction="batchmean", log_target=True
            )
    return loss

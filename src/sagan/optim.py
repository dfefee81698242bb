"""Adam with the paper's TTUR defaults, and learning-rate schedules counted in generator steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .config import TrainConfig

# train.lr_schedule: name -> (train config, D batches per epoch) -> the factor of the learning rate at each G step.
SCHEDULES: dict[str, Callable[[TrainConfig, int], Callable[[int], float]]] = {
    "constant": lambda cfg, epoch: lambda step: 1.0,
    "linear": lambda cfg, epoch: lambda step: max(0.0, 1 - step / cfg.steps),  # to 0 at the last step
    "exponential": lambda cfg, epoch: lambda step: cfg.lr_gamma ** (step * cfg.n_dis // epoch),  # per epoch
}


def build_optimizer(params: Iterable[torch.nn.Parameter], lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    # The fused kernel does the per-tensor loop's arithmetic in one pass; None lets torch pick its default.
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
                            fused=cfg.fused_optimizer or None)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    batches_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per G step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, SCHEDULES[cfg.lr_schedule](cfg, batches_per_epoch))

"""Adam with the paper's TTUR defaults, and learning-rate schedules counted in generator steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .config import TrainConfig

# train.lr_schedule: name -> (train config, the run's G steps, D batches per epoch) -> the learning-rate factor
# after G step `step`. The per-epoch schedules change the factor only where an epoch ends, as a scheduler stepped
# once per epoch does.
SCHEDULES: dict[str, Callable[[TrainConfig, int, int], Callable[[int], float]]] = {
    "constant": lambda cfg, steps, epoch: lambda step: 1.0,
    "linear": lambda cfg, steps, epoch: lambda step: max(0.0, 1 - step / steps),  # to 0 at the last step
    "exponential": lambda cfg, steps, epoch: lambda step: cfg.lr_gamma ** epochs_done(cfg, step, epoch),
    "step": lambda cfg, steps, epoch: lambda step: cfg.lr_gamma ** (epochs_done(cfg, step, epoch) // cfg.lr_step_size),
    "cosine": lambda cfg, steps, epoch: lambda step: 0.5 * (1 + math.cos(
        math.pi * min(1.0, epochs_done(cfg, step, epoch) / run_epochs(cfg, steps, epoch)))),  # to 0 at the end
}


def epochs_done(cfg: TrainConfig, step: int, batches_per_epoch: int) -> int:
    """Whole epochs of D batches completed after G step `step`."""
    return step * cfg.n_dis // batches_per_epoch


def run_epochs(cfg: TrainConfig, steps: int, batches_per_epoch: int) -> int:
    """The epochs a run of `steps` G steps begins (the last may be partial)."""
    return max(1, math.ceil(steps * cfg.n_dis / batches_per_epoch))


def run_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """The run's G steps: train.steps, or the steps of train.epochs (the last step completes the last epoch)."""
    return cfg.steps or math.ceil(cfg.epochs * batches_per_epoch / cfg.n_dis)


def build_optimizer(params: Iterable[torch.nn.Parameter], lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    # The fused kernel does the per-tensor loop's arithmetic in one pass; None lets torch pick its default.
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
                            fused=cfg.fused_optimizer or None)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps: int,
                    batches_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per G step of a run of `steps` G steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, SCHEDULES[cfg.lr_schedule](cfg, steps, batches_per_epoch))

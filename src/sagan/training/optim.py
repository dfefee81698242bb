"""Adam with the paper's TTUR defaults, and learning-rate schedules counted in generator steps."""

from collections.abc import Iterable

import torch

from ..config import TrainConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    # The fused kernel does the per-tensor loop's arithmetic in one pass; None lets torch pick its default.
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
                            fused=cfg.fused_optimizer or None)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    batches_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per G step. `exponential` multiplies by `lr_gamma` after every epoch of D batches."""
    if cfg.lr_schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / cfg.steps))
    if cfg.lr_schedule == "exponential":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cfg.lr_gamma ** (step * cfg.n_dis // batches_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

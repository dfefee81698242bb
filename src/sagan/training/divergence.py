"""Diverged runs: the check that stops one before its NaN or infinite state reaches a checkpoint, and what
train.on_nonfinite=rollback needs to go back to the last good checkpoint without the batches that broke it."""

import math
from pathlib import Path

import torch

from ..errors import NonFiniteError
from . import distributed

ADVICE = ("Try lower learning rates (train.lr_d, train.lr_g), train.amp=none or other penalties (train.gp_weight, "
          "train.r1_weight, train.clip_grad_norm)")


def check_finite(step: int, G: torch.nn.Module, D: torch.nn.Module, interval: dict[str, torch.Tensor],
                 record: dict | None = None) -> None:
    """Raise NonFiniteError unless the logged `record`'s values, or (with none) the `interval`'s statistic sums and
    the weights of G and D, are finite."""
    if record is not None:
        bad = [key for key, value in record.items() if isinstance(value, float) and not math.isfinite(value)]
    else:
        bad = [key for key, value in interval.items() if not torch.isfinite(value).all()]
        bad += [name for name, net in (("G's weights", G), ("D's weights", D))
                if not all(torch.isfinite(p).all() for p in net.parameters())]
        # Each process's own statistics: the processes stop (or roll back) together or not at all.
        bad = list(dict.fromkeys(key for keys in distributed.all_gather_object(bad) for key in keys))
    if bad:
        raise NonFiniteError(f"step {step}: {', '.join(bad)} not finite (nan or inf)")


def stopped(error: NonFiniteError, last_checkpoint: Path | None, on_nonfinite: str, rollbacks: int) -> NonFiniteError:
    """The error that ends a diverged run: what went non-finite, the last good checkpoint and what to try."""
    tried = f", and diverged again after {rollbacks} rollbacks to it" if rollbacks else ""
    instead = "; train.on_nonfinite=rollback goes back to the last good checkpoint instead"
    return NonFiniteError(f"{error}: training diverged and stopped before checkpointing it; the last good checkpoint "
                          f"is {last_checkpoint or 'not written yet'}{tried}. {ADVICE}"
                          f"{instead if on_nonfinite == 'stop' else ''}")


class FirstNonFinite:
    """The first step whose statistics or updated weights were not finite, kept on the device so that watching
    every step costs a few small operators and no host synchronisation; read only once a check has failed."""

    def __init__(self, nets: list[torch.nn.Module], device: torch.device):
        self.params = [p for net in nets for p in net.parameters()]
        self.step = torch.full((), math.inf, device=device, dtype=torch.float64)  # exact for any step count

    def observe(self, step: int, stats: dict[str, torch.Tensor]) -> None:
        # Each tensor's largest magnitude (which cannot overflow as a sum of squares can) is finite iff it is.
        values = torch.stack([*torch._foreach_norm(self.params, math.inf), *(v.float() for v in stats.values())])
        self.step = torch.where(values.isfinite().all() | self.step.isfinite(), self.step, step)

    def pop(self) -> int | None:
        """The step seen, or None; forgets it."""
        step, self.step = self.step.item(), torch.full_like(self.step, math.inf)
        return int(step) if math.isfinite(step) else None

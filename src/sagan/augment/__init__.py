"""Differentiable augmentation of what the discriminator sees (`train.augment`), for training on small datasets:
one registry, AUGMENTS. Each augmentation maps a float NCHW batch in the networks' range to one of the same shape
and dtype, differentiably, each image with its own random draw from the global torch generator (so a resumed run
draws the same)."""

from collections.abc import Callable

import torch

from .ada import AdaController, ada_augment
from .diffaugment import POLICIES, diff_augment


class Augment:
    """`augment(x)` before every D forward (reals and fakes in the D step, fakes in the G step); `observe` sees D's
    outputs on the reals of each D step; the state goes into checkpoints."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def observe(self, d_real: torch.Tensor) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DiffAugment(Augment):
    def __init__(self, policy: str):
        self.policy = policy

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy)


class Ada(Augment):
    def __init__(self, controller: AdaController):
        self.controller = controller

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ada_augment(x, self.controller.p)

    def observe(self, d_real: torch.Tensor) -> None:
        self.controller.observe(d_real)

    def stats(self) -> dict[str, float]:
        return {"ada_p": self.controller.p, "ada_rt": self.controller.rt}

    def state_dict(self) -> dict:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state)


# train.augment: name -> the augmentation for a TrainConfig
AUGMENTS: dict[str, Callable[..., Augment]] = {
    "none": lambda t: Augment(),
    "diffaugment": lambda t: DiffAugment(t.augment_policy),
    # observed once per micro-batch of train.accumulate
    "ada": lambda t: Ada(AdaController(t.ada_target, t.ada_images, t.ada_interval, t.batch_size // t.accumulate)),
}


def build(t) -> Augment:
    """The augmentation TrainConfig `t` asks for."""
    return AUGMENTS[t.augment](t)


__all__ = ["AUGMENTS", "POLICIES", "Augment", "build"]

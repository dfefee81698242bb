"""GAN losses on discriminator logits, and gradient penalties.

hinge (the paper): D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G: -E[D(G(z))].
bce (non-saturating): D: E[softplus(-D(x))] + E[softplus(D(G(z)))], G: E[softplus(-D(G(z)))].
wgan-gp: D: E[D(G(z))] - E[D(x)], G: -E[D(G(z))], with the gradient penalty (weight 10) it cannot do without.
Any loss takes the gradient penalty (train.gp_weight > 0) and the R1 penalty (train.r1_weight > 0) on D.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def d_bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def d_wgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


def g_mean(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def g_bce(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


class Loss(NamedTuple):
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (D's logits on real, on fake) -> D's loss
    g: Callable[[torch.Tensor], torch.Tensor]  # D's logits on fake -> G's loss
    gp_weight: float = 0.0  # the gradient-penalty weight train.gp_weight defaults to


LOSSES: dict[str, Loss] = {
    "hinge": Loss(d_hinge, g_mean),
    "bce": Loss(d_bce, g_bce),
    "wgan-gp": Loss(d_wgan, g_mean, gp_weight=10.0),  # Gulrajani et al.'s lambda
}


def gp_weight(loss: str, weight: float | None) -> float:
    """train.gp_weight as it acts: the loss's default when unset (None)."""
    return LOSSES[loss].gp_weight if weight is None else weight


def _input_grad_norms(discriminator: Callable, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Per-sample L2 norms of dD/dx, kept in the graph so the penalty can be minimised."""
    x = x.detach().requires_grad_(True)
    # The penalty's gradient needs a double backward, which fused attention kernels do not implement.
    with sdpa_kernel(SDPBackend.MATH):
        out = discriminator(x, y)
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return grad.float().flatten(1).norm(dim=1)


def gradient_penalty(discriminator: Callable, real: torch.Tensor, fake: torch.Tensor,
                     y: torch.Tensor | None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] at random points x_hat between real and fake.
    A conditional D scores each interpolate with its real image's label `y` (as StudioGAN does)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return ((_input_grad_norms(discriminator, x_hat, y) - 1) ** 2).mean()


def r1_penalty(discriminator: Callable, real: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real images; the caller multiplies by weight / 2."""
    return (_input_grad_norms(discriminator, real, y) ** 2).mean()


def lecam_penalty(d_real: torch.Tensor, d_fake: torch.Tensor, averages: torch.Tensor) -> torch.Tensor:
    """LeCam regularization (Tseng et al. 2021, as google/lecam-gan computes it): D's outputs on reals kept from
    rising above the moving average of its outputs on fakes, and on fakes from falling below that of reals;
    `averages` = (mean real output, mean fake output)."""
    real_average, fake_average = averages.detach()
    return F.relu(d_real - fake_average).square().mean() + F.relu(real_average - d_fake).square().mean()

import pytest
import torch

from sagan.losses import LOSSES, gradient_penalty, r1_penalty

REAL = torch.tensor([2.0, 0.5, -1.0, 0.0])
FAKE = torch.tensor([-2.0, 0.5, 1.5, 1.0])


def softplus(v: float) -> float:
    return torch.log1p(torch.exp(torch.tensor(v))).item()


def test_hinge_matches_formula():
    d_loss, g_loss, _ = LOSSES["hinge"]
    # relu(1 - real) = [0, .5, 2, 1] -> 0.875; relu(1 + fake) = [0, 1.5, 2.5, 2] -> 1.5
    assert d_loss(REAL, FAKE).item() == pytest.approx(0.875 + 1.5)
    assert g_loss(FAKE).item() == pytest.approx(-0.25)


def test_bce_matches_formula():
    d_loss, g_loss, _ = LOSSES["bce"]
    expected_d = sum(softplus(-r) + softplus(f) for r, f in zip(REAL.tolist(), FAKE.tolist())) / 4
    assert d_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert g_loss(FAKE).item() == pytest.approx(sum(softplus(-f) for f in FAKE.tolist()) / 4, rel=1e-6)


def test_wgan_matches_formula():
    d_loss, g_loss, _ = LOSSES["wgan-gp"]
    assert d_loss(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item())
    assert g_loss(FAKE).item() == pytest.approx(-FAKE.mean().item())


def test_gradient_penalty_zero_for_unit_gradient_and_positive_otherwise():
    torch.manual_seed(0)
    u = torch.randn(3 * 8 * 8)
    u /= u.norm()
    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    unit = gradient_penalty(lambda x, y: x.flatten(1) @ u, real, fake, None)
    assert unit.item() == pytest.approx(0.0, abs=1e-10)
    steep = gradient_penalty(lambda x, y: 3 * x.flatten(1) @ u, real, fake, None)
    assert steep.item() == pytest.approx(4.0, rel=1e-5)  # (3 - 1)^2


def test_penalties_are_differentiable_in_the_discriminator():
    w = torch.tensor(2.0, requires_grad=True)
    real = torch.randn(4, 1, 2, 2)
    r1 = r1_penalty(lambda x, y: w * x.flatten(1).sum(1), real, None)
    assert r1.item() == pytest.approx(4.0 * 4)  # ||grad||^2 = w^2 * 4 pixels
    (grad,) = torch.autograd.grad(r1, w)
    assert grad.item() == pytest.approx(2 * 2.0 * 4)

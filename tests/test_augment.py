"""Training on small datasets: the augmentations D sees (DiffAugment, ADA and its controller), LeCam
regularization and gradient accumulation."""

import pytest
import torch
from conftest import straight_and_resumed, tiny_config

from sagan import augment
from sagan.augment.ada import AdaController, ada_augment, resample
from sagan.augment.diffaugment import POLICIES, cutout, diff_augment, translation
from sagan.config import ConfigError, set_value
from sagan.losses import lecam_penalty
from sagan.training.gan import GANTraining
from sagan.viz import curves

TRANSFORMS = {"diffaugment-" + name: (lambda x, name=name: diff_augment(x, name)) for name in POLICIES} | {
    "ada-p0.5": lambda x: ada_augment(x, 0.5), "ada-p1": lambda x: ada_augment(x, 1.0)}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_augmentations_keep_shape_and_dtype_and_pass_gradients(name, channels):
    torch.manual_seed(0)
    x = (torch.rand(6, channels, 16, 16) * 2 - 1).requires_grad_()
    y = TRANSFORMS[name](x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    assert not torch.equal(y, x)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("transform", [translation, cutout, lambda x: resample(x, 1.0)])
def test_geometric_augmentations_keep_the_value_range(transform):
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    y = transform(x)
    assert y.min() >= -1 and y.max() <= 1 and not torch.equal(y, x)


def test_translation_and_cutout_move_and_zero_whole_pixels():
    torch.manual_seed(1)
    x = torch.arange(1, 257, dtype=torch.float32).view(1, 1, 16, 16).repeat(4, 1, 1, 1)
    shifted = translation(x)
    for image in shifted:  # every pixel is an input pixel or a zero shifted in
        assert set(image.unique().tolist()) <= set(x[0].unique().tolist()) | {0.0}
    holes = (cutout(x) == 0).sum(dim=(1, 2, 3))
    assert torch.all(holes > 0) and torch.all(holes <= 64)  # at most the 8x8 square (half of 16)


def test_ada_is_the_identity_at_p_0_and_flips_as_a_whole():
    x = torch.randn(4, 3, 8, 8)
    assert ada_augment(x, 0.0) is x
    torch.manual_seed(0)
    y = ada_augment(x, 1.0)
    assert not torch.allclose(y, x)


def test_ada_p_follows_the_overfitting_signal():
    controller = AdaController(target=0.6, images=64, interval=2, batch_size=8)
    for _ in range(4):
        controller.observe(torch.ones(8))  # D says "real" to every real image: overfitting
    assert controller.rt == 1 and controller.p == pytest.approx(2 * 8 * 2 / 64)
    for _ in range(6):
        controller.observe(-torch.ones(8))
    assert controller.rt == -1 and controller.p == 0  # down again, clipped at 0


def test_ada_raises_p_on_a_discriminator_that_memorises_its_data():
    torch.manual_seed(0)
    cfg = tiny_config(**{"train.augment": "ada", "train.ada_images": 200, "train.ada_interval": 2,
                         "train.lr_d": 2e-3})
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=1)
    real = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)  # the same 8 images again and again
    history = []
    for _ in range(20):
        gan.d_step(*gan.prepare(real, torch.zeros(8, dtype=torch.long)))
        history.append(gan.augment.stats()["ada_p"])
    assert history[-1] > 0 and history[-1] >= max(history[:10])


def test_lecam_penalty_by_hand():
    d_real, d_fake = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.5, -1.0])
    averages = torch.tensor([0.8, -0.2])  # (real, fake)
    # relu(d_real + 0.2)^2 = 1.44, 0, 4.84; relu(0.8 - d_fake)^2 = 0.09, 3.24
    assert lecam_penalty(d_real, d_fake, averages).item() == pytest.approx((1.44 + 4.84) / 3 + (0.09 + 3.24) / 2)


def test_accumulated_micro_batches_update_d_as_the_whole_batch():
    torch.manual_seed(0)
    real = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    fakes = torch.rand(8, 3, 32, 32) * 2 - 1
    weights = {}
    for k in (1, 2, 4):
        torch.manual_seed(1)
        gan = GANTraining(tiny_config(**{"train.accumulate": k, "train.gp_weight": 1.0}), torch.device("cpu"),
                          batches_per_epoch=1)
        assert not gan.d_batch_norm
        drawn = iter(fakes.chunk(k))
        gan._generate = lambda net, n, drawn=drawn: (next(drawn), None)
        gan.d_step(*gan.prepare(real, torch.zeros(8, dtype=torch.long)))
        weights[k] = {name: p.detach().clone() for name, p in gan.D.state_dict().items()}
    for k in (2, 4):
        for name in weights[1]:
            torch.testing.assert_close(weights[k][name], weights[1][name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("overrides", [{"train.augment": "ada", "train.ada_images": 100, "train.ada_interval": 1,
                                        "train.lecam_weight": 0.3},
                                       {"train.augment": "diffaugment", "train.accumulate": 2}])
def test_resume_restores_p_and_the_lecam_averages_exactly(tmp_path, overrides):
    a, b = straight_and_resumed(tmp_path, overrides)
    assert a["augment"] == b["augment"]
    assert torch.equal(a["lecam_averages"].nan_to_num(), b["lecam_averages"].nan_to_num())
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][name], b[net][name]) for name in a[net]), net
    if "train.lecam_weight" in overrides:
        assert 0 < a["augment"]["p"] <= 1 and not a["lecam_averages"].isnan().any()
        records = curves.read_metrics(tmp_path / "halves")
        assert records[-1]["ada_p"] == a["augment"]["p"] and "lecam" in records[-1]
        assert "augment" in curves.charts(records, "run")  # the report's curves show p and r_t


@pytest.mark.parametrize("overrides,message", [
    ({"train.augment": "mixup"}, "train.augment: 'mixup' is not one of none, diffaugment, ada"),
    ({"train.augment": "diffaugment", "train.augment_policy": "color,blur"}, "train.augment_policy: 'color,blur'"),
    ({"train.ada_target": 0.5}, "train.ada_target: '0.5' applies only with train.augment=ada"),
    ({"train.accumulate": 3}, "train.accumulate: 3 micro-batches do not divide train.batch_size 8"),
    ({"train.accumulate": 2, "train.reuse_fakes": True}, "train.accumulate: does not combine with train.reuse"),
])
def test_small_data_options_are_checked_with_the_config(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)  # set and validated


def test_the_registry_builds_each_augmentation():
    cfg = tiny_config()
    assert set(augment.AUGMENTS) == {"none", "diffaugment", "ada"}
    x = torch.randn(2, 3, 8, 8)
    assert augment.build(cfg.train)(x) is x
    set_value(cfg, "train.augment", "diffaugment")
    assert isinstance(augment.build(cfg.train), augment.DiffAugment)

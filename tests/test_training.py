"""End-to-end training on the embedded data: the run directory, checkpoints, resume and the update rules."""

import copy
import json
import math
import warnings

import numpy as np
import pytest
import torch
from conftest import needs_cuda, straight_and_resumed, tiny_config
from PIL import Image

import sagan
from sagan.config import from_dict, load_yaml
from sagan.errors import ConfigError, UserError
from sagan.training.gan import GANTraining
from sagan.training.trainer import ResumeWarning, train

CHECKPOINT_KEYS = {"generator", "discriminator", "generator_ema", "optimizer_g", "optimizer_d", "schedulers", "step",
                   "config", "rng"}


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_short_run_writes_the_run_directory(tmp_path):
    cfg = tiny_config(**{"train.steps": 5, "train.keep_checkpoints": 1})
    record = train(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert from_dict(load_yaml(run / "config.yaml")) == cfg
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.pt", "step-0000005.pt"]
    state = load(run / "checkpoints" / "latest.pt")
    assert CHECKPOINT_KEYS <= set(state) and state["step"] == 5
    assert {"torch", "numpy", "python", "data_batches"} <= set(state["rng"])
    assert [p.name for p in sorted((run / "samples").iterdir())] == [
        "step-0000002.png", "step-0000004.png", "step-0000005.png"]
    grid = Image.open(run / "samples" / "step-0000005.png")
    assert grid.size == (3 * 34 + 2, 3 * 34 + 2) and grid.mode == "RGB"  # 9 images of 32x32, 2-px padding
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 5]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "lr_g", "lr_d", "gamma/G.attn16", "gamma/D.attn8"} <= set(lines[0])
    assert record == lines[-1]
    assert "step=5" in (run / "train.log").read_text()


@pytest.mark.parametrize("overrides", [
    {},
    {"model.num_classes": 10, "train.loss": "wgan-gp", "train.n_dis": 2, "train.lr_schedule": "exponential",
     "train.ema_start": 2},
    {"train.reuse_fakes": True, "train.loss": "wgan-gp"},
])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, overrides):
    a, b = straight_and_resumed(tmp_path, overrides)
    assert a["step"] == b["step"] == 6
    for key in ("generator", "discriminator", "generator_ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    for key in ("optimizer_g", "optimizer_d"):
        for index, state in a[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, b[key]["state"][index][name]), f"{key}.{index}.{name}"


def test_resume_with_another_thread_count_warns_that_it_is_not_bit_exact(tmp_path):
    # CPU kernels split their reductions by thread: the same run at 1 and 2 threads rounds differently.
    threads = torch.get_num_threads()
    cfg = tiny_config(**{"train.steps": 2, "train.checkpoint_every": 10})
    try:
        torch.set_num_threads(2)
        train(cfg, tmp_path, progress=False)
        assert load(tmp_path / "checkpoints" / "latest.pt")["threads"] == 2
        cfg.train.steps = 3
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same thread count: no warning
            train(cfg, tmp_path, resume=True, progress=False)
        torch.set_num_threads(1)
        cfg.train.steps = 4
        with pytest.warns(ResumeWarning, match="resuming with 1 CPU threads, but the run used 2: .* OMP_NUM_THREADS=2"):
            train(cfg, tmp_path, resume=True, progress=False)
    finally:
        torch.set_num_threads(threads)


@needs_cuda
@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_cuda_run_resumes_and_loads_on_the_cpu(tmp_path, amp):
    cfg = tiny_config(**{"train.device": "cuda", "train.amp": amp, "train.steps": 3, "train.checkpoint_every": 10})
    train(cfg, tmp_path / "run", progress=False)
    cfg.train.steps = 5
    record = train(cfg, tmp_path / "run", resume=True, progress=False)
    assert record["step"] == 5 and all(np.isfinite(v) for k, v in record.items() if k.endswith("loss"))
    state = load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert state["step"] == 5 and all(t.device.type == "cpu" for t in state["generator"].values())
    if amp == "fp16":
        assert state["grad_scalers"]["g"]["scale"] > 0
    images = sagan.load_generator(tmp_path / "run").sample(4, seed=0)
    assert images.shape == (4, 32, 32, 3) and images.std() > 0


def test_logged_d_statistics_are_the_mean_over_the_n_dis_steps(tmp_path, monkeypatch):
    seen = []
    d_step = GANTraining.d_step

    def recording(self, *args):
        seen.append(stats := d_step(self, *args))
        return stats

    monkeypatch.setattr(GANTraining, "d_step", recording)
    record = train(tiny_config(**{"train.n_dis": 3, "train.steps": 1, "train.log_every": 1}), tmp_path,
                   progress=False)
    assert len(seen) == 3 and len({s["d_loss"].item() for s in seen}) == 3
    for key in ("d_loss", "d_real", "d_fake"):
        assert record[key] == pytest.approx(np.mean([s[key].item() for s in seen]), rel=1e-6), key


def test_a_fresh_run_refuses_to_overwrite_a_run(tmp_path):
    train(tiny_config(**{"train.steps": 1}), tmp_path, progress=False)
    with pytest.raises(UserError, match="already holds a run; continue it with --resume"):
        train(tiny_config(**{"train.steps": 1}), tmp_path, progress=False)


def test_conditional_run_checks_the_dataset_labels(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (40, 40), (i * 30, 0, 0)).save(folder / f"{i}.png")
    cfg = tiny_config(**{"model.num_classes": 3, "data.name": "imagefolder", "data.root": str(folder)})
    with pytest.raises(ConfigError, match="model.num_classes is 3 but the dataset .* has no labels"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def step_once(**overrides) -> tuple[GANTraining, dict]:
    cfg = tiny_config(**overrides)
    torch.manual_seed(0)
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=10)
    real = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (8,))
    stats = gan.d_step(*gan.prepare(real, labels)) | gan.g_step(8)
    return gan, stats


@pytest.mark.parametrize("overrides,keys", [
    ({"train.loss": "bce"}, {"d_loss", "g_loss"}),
    ({"train.loss": "wgan-gp"}, {"gp"}),
    ({"train.r1_weight": 1.0}, {"r1"}),
    ({"train.clip_grad_norm": 5.0, "train.weight_decay": 1e-4}, {"d_loss"}),
    ({"train.amp": "bf16"}, {"d_loss", "g_loss"}),
    ({"train.channels_last": True, "model.attention": "official"}, {"d_loss", "g_loss"}),
    ({"model.arch": "resnet", "model.g_attention": [32], "model.d_attention": [16], "model.num_classes": 10},
     {"d_loss"}),
])
def test_every_training_option_takes_a_finite_step(overrides, keys):
    _, stats = step_once(**overrides)
    assert keys <= set(stats)
    assert all(torch.isfinite(v) for v in stats.values())


def test_reused_fakes_are_scored_again_by_the_updated_discriminator():
    cfg = tiny_config(**{"train.reuse_fakes": True})
    torch.manual_seed(0)
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=10)
    real, labels = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    g_before = copy.deepcopy(gan.G)  # spectral norm's power iteration moves with every forward pass in training
    torch.manual_seed(1)
    z = torch.randn(8, cfg.model.z_dim)
    torch.manual_seed(1)
    gan.d_step(*gan.prepare(real, labels))
    with torch.no_grad():
        expected = gan.g_loss_fn(copy.deepcopy(gan.D)(g_before(z), None))
    g_params = [p.detach().clone() for p in gan.G.parameters()]
    loss = gan.g_step(8)["g_loss"]
    torch.testing.assert_close(loss, expected)
    assert any(not torch.equal(p, q) for p, q in zip(gan.G.parameters(), g_params))


def test_channels_last_does_not_change_the_math():
    _, plain = step_once(**{"train.channels_last": False})
    gan, fast = step_once(**{"train.channels_last": True})
    assert gan.D.to_logit.weight.is_contiguous(memory_format=torch.channels_last)
    for key in plain:
        torch.testing.assert_close(plain[key], fast[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("setting,expected", [(None, True), (False, False)], ids=["auto", "off"])
def test_channels_last_is_on_by_default_on_the_cpu(setting, expected):
    gan = GANTraining(tiny_config(**{"train.channels_last": setting}), torch.device("cpu"), batches_per_epoch=1)
    x, _ = gan.prepare(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    assert gan.channels_last is expected
    for tensor in (x, gan.D.to_logit.weight, gan.G.to_rgb.weight):
        assert tensor.is_contiguous(memory_format=torch.channels_last) is expected


def test_gradient_clipping_bounds_the_update():
    gan, _ = step_once(**{"train.clip_grad_norm": 1e-3})
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in gan.G.parameters() if p.grad is not None]))
    assert norm.item() <= 1e-3 * 1.001


def test_ema_follows_its_formula():
    gan, _ = step_once(**{"train.ema_decay": 0.9, "train.ema_rampup": 0})
    before = [p.clone() for p in gan.G_ema.parameters()]
    buffers_before = {name: b.clone() for name, b in gan.G_ema.named_buffers()}
    gan.update_ema(step=1)
    for b, e, g in zip(before, gan.G_ema.parameters(), gan.G.parameters()):
        torch.testing.assert_close(e, 0.9 * b + 0.1 * g)
    buffers = dict(gan.G.named_buffers())
    assert any(name.endswith("running_var") for name in buffers)
    for name, e in gan.G_ema.named_buffers():  # BN statistics averaged as the weights, the others copied
        if name.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(e, 0.9 * buffers_before[name] + 0.1 * buffers[name])
        else:
            assert torch.equal(e, buffers[name])


@pytest.mark.parametrize("step,decay", [(1, 0.5**20), (10, 0.5**2), (20_000, 0.999)])
def test_ema_half_life_ramps_up_to_the_decay(step, decay):
    """Half-life = min(693 steps (decay 0.999), ema_rampup x step): 0.5 steps at step 10, 693 from step 13,863."""
    from sagan.training.gan import ema_decay

    t = tiny_config(**{"train.ema_decay": 0.999, "train.ema_rampup": 0.05}).train
    assert ema_decay(t, step) == pytest.approx(decay, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("schedule,gamma,expected", [
    ("constant", {}, [1.0] * 4),
    ("linear", {}, [1 - s / 40 for s in (9, 10, 19, 20)]),  # per step, to 0 at step 40
    ("exponential", {"train.lr_gamma": 0.5}, [1.0, 0.5, 0.5, 0.25]),
    ("step", {"train.lr_gamma": 0.5, "train.lr_step_size": 2}, [1.0, 1.0, 1.0, 0.5]),
    ("cosine", {}, [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5 * (1 + math.cos(math.pi / 4)), 0.5]),
])
def test_lr_schedules_change_at_epoch_boundaries(schedule, gamma, expected):
    # 40 steps of 10 batches per epoch: 4 epochs; the factor after steps 9, 10 (epoch 1 ends), 19 and 20
    gan, _ = step_once(**{"train.lr_schedule": schedule, "train.steps": 40} | gamma)
    factors = []
    for step in range(1, 21):
        gan.step_schedules()
        if step in (9, 10, 19, 20):
            factors.append(gan.opt_g.param_groups[0]["lr"] / 2e-4)
    assert factors == pytest.approx(expected)
    assert gan.opt_d.param_groups[0]["lr"] == pytest.approx(4e-4 * expected[-1])


def test_load_generator_samples_like_the_run(tmp_path):
    train(tiny_config(**{"model.num_classes": 10}), tmp_path, progress=False)
    G = sagan.load_generator(tmp_path)
    assert not G.training
    images = G.sample(4, seed=1, labels=[0, 1, 2, 3])
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert (images == G.sample(4, seed=1, labels=[0, 1, 2, 3])).all()


@pytest.mark.parametrize("rampup,closer_to", [(0.05, "raw"), (0.0, "initial")])
def test_ema_samples_show_what_a_short_run_trained(tmp_path, rampup, closer_to):
    """With decay 0.999 from the first step, a short run's EMA is mostly the initial G; the ramp-up makes it an
    average of the trained weights, close to the raw G's."""
    from sagan.runtime import seed_everything

    cfg = tiny_config(**{"train.steps": 40, "train.ema_decay": 0.999, "train.ema_rampup": rampup,
                         "train.lr_g": 1e-3, "train.checkpoint_every": 40, "train.sample_every": 40})
    train(cfg, tmp_path / "run", progress=False)
    seed_everything(cfg.train.seed)  # the trainer's seeding, then its networks: G as initialised
    initial = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=1).G.eval()
    state = sagan.checkpoints.load(tmp_path / "run")
    ema, raw = (sagan.checkpoints.generator(state, "cpu", which) for which in ("ema", "raw"))
    z = torch.randn(16, cfg.model.z_dim, generator=torch.Generator().manual_seed(1))
    samples = {name: torch.from_numpy(G.generate(z)).float() for name, G in
               (("ema", ema), ("raw", raw), ("initial", initial))}
    distance = {name: (samples["ema"] - samples[name]).abs().mean().item() for name in ("raw", "initial")}
    other = "initial" if closer_to == "raw" else "raw"
    assert distance[closer_to] < distance[other], distance


def test_a_time_budget_ends_the_run_as_its_last_step_and_holds_across_resumes(tmp_path):
    cfg = tiny_config(**{"train.steps": 100_000, "train.max_minutes": 0.02, "train.sample_every": 100_000,
                         "train.checkpoint_every": 100_000, "train.log_every": 100_000})
    record = train(cfg, tmp_path, progress=False)
    state = load(tmp_path / "checkpoints" / "latest.pt")
    step = state["step"]
    assert 0 < step < 100_000 and record["step"] == step  # the final record, checkpoint and samples of that step
    assert state["train_seconds"] >= 1.2 and record["minutes"] >= 0.02
    assert (tmp_path / "samples" / f"step-{step:07d}.png").is_file()
    assert f"time budget of 0.02 minutes reached at step {step}" in (tmp_path / "train.log").read_text()
    assert train(cfg, tmp_path, resume=True, progress=False) == {}  # the budget is spent: nothing to train
    cfg.train.max_minutes = state["train_seconds"] / 60 + 0.02  # room for more steps however long the first took
    assert train(cfg, tmp_path, resume=True, progress=False)["step"] > step

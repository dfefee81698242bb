"""The design document's recipe (the `seed` preset), scaled down: gradient penalty with BCE, clipping by value,
epochs with per-epoch means and schedules, the seeded 80/20 split and evaluation on its test part."""

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import make_celeba, tiny_config
from PIL import Image

from sagan import config, data
from sagan.cli import main
from sagan.data.splits import part_indices
from sagan.training.gan import GANTraining
from sagan.training.trainer import train

# 20 images: an 80/20 split gives 16 training images, 4 batches of 4 per epoch.
IMAGES, BATCH = 20, 4


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "faces"
    root.mkdir()
    for i in range(IMAGES):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def seed_recipe(root, *sets: str, epochs: int = 2) -> config.Config:
    """The seed preset at 32x32 with small networks on `root`."""
    return config.resolve("seed", sets=[
        "data.name=imagefolder", f"data.root={root}", "data.resolution=32", "data.workers=0", "data.cache=off",
        "model.g_attention=[16]", "model.d_attention=[16]", "model.g_channels=8", "model.d_channels=8",
        "model.z_dim=16", f"train.batch_size={BATCH}", f"train.epochs={epochs}", "train.log_every=1",
        "train.num_samples=4", "train.device=cpu", "train.lr_gamma=0.5", "train.report=false",
        "eval.backbone=swd", "eval.metrics=[swd]", "eval.num_samples=8", "eval.batch_size=8", *sets])


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_run_counted_in_steps_logs_its_epochs_without_printing_them(folder, tmp_path, capsys):
    # Its progress bar shows the run; a line per epoch would flood the console of a long run on a small dataset.
    run = tmp_path / "run"
    train(seed_recipe(folder, "train.steps=8"), run, progress=False)
    assert [r["epoch"] for r in records(run) if "d_loss_epoch" in r] == [1, 2]
    assert "Epoch: 2/2, Generator Loss:" in (run / "train.log").read_text()
    assert "Epoch:" not in capsys.readouterr().out


def test_seed_recipe_trains_as_the_document_says(folder, tmp_path, capsys):
    cfg = seed_recipe(folder)
    t = cfg.train
    assert (t.loss, t.gp_weight, t.clip_grad_value, t.lr_schedule, t.steps) == ("bce", 10.0, 5.0, "exponential", 0)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    lines = records(run)
    steps = [r for r in lines if "d_loss" in r]
    epochs = [r for r in lines if "d_loss_epoch" in r]
    assert len(steps) == 2 * 4 and all("gp" in r for r in steps)  # the penalty acts with loss=bce
    # Each epoch's record is the mean of its steps' losses, not of the last log interval.
    assert [r["epoch"] for r in epochs] == [1, 2]
    for e, record in enumerate(epochs):
        for key in ("d_loss", "g_loss", "gp"):
            assert record[f"{key}_epoch"] == pytest.approx(np.mean([r[key] for r in steps[4 * e:4 * e + 4]]))
    # The learning rate halves exactly where an epoch ends (lr is logged after the step's schedule update).
    assert [r["lr_g"] / 1e-4 for r in steps] == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25])
    log = (run / "train.log").read_text()
    assert "started: preset seed, imagefolder train part, 16 of 20 images (a seeded 80/20 split, seed 0)" in log
    assert f"Epoch: 2/2, Generator Loss: {epochs[1]['g_loss_epoch']:.4f}, " in log
    assert "Epoch: 1/2, Generator Loss:" in capsys.readouterr().out  # on the console too
    # Evaluation at the end, against the held-out part, and the per-epoch sheets.
    assert "evaluation at the end, against imagefolder test part, 4 of 20 images" in log
    assert "eval/swd" in lines[-2] or "eval/swd" in lines[-1]
    assert sorted(p.name for p in (run / "samples").glob("epoch-*.png")) == ["epoch-0001.png", "epoch-0002.png"]
    # `sagan evaluate` of the run, without --reference: the run's own test part, by default of the EMA generator.
    capsys.readouterr()
    for generator in ("ema", "raw"):
        assert main(["evaluate", "--checkpoint", str(run), "--backbone", "swd", "--num-samples", "8",
                     "--no-progress", "--generator", generator]) == 0
        out = capsys.readouterr().out
        assert "against: imagefolder test part, 4 of 20 images" in out
        assert json.loads(out.splitlines()[-1])["generator"] == generator


def test_clipping_by_value_bounds_every_gradient_entry(folder):
    cfg = seed_recipe(folder, "train.clip_grad_value=1e-3")
    torch.manual_seed(0)
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=4)
    real = torch.randint(0, 256, (BATCH, 3, 32, 32), dtype=torch.uint8)
    stats = gan.d_step(*gan.prepare(real, torch.zeros(BATCH, dtype=torch.long)))
    assert "gp" in stats
    d_grads = torch.cat([p.grad.flatten() for p in gan.D.parameters() if p.grad is not None])
    gan.g_step(BATCH)
    g_grads = torch.cat([p.grad.flatten() for p in gan.G.parameters() if p.grad is not None])
    for grads in (d_grads, g_grads):
        assert grads.abs().max() <= 1e-3 and (grads.abs() == 1e-3).any()  # clipped, not just small


def test_gradient_penalty_under_bf16_and_a_conditional_d():
    gan = GANTraining(tiny_config(**{"train.loss": "bce", "train.gp_weight": 10.0, "train.amp": "bf16",
                                     "model.num_classes": 10}), torch.device("cpu"), batches_per_epoch=1)
    real = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    stats = gan.d_step(*gan.prepare(real, torch.randint(0, 10, (8,))))
    assert torch.isfinite(stats["gp"]) and stats["gp"] > 0


def test_the_split_parts_are_disjoint_by_file_with_exact_sizes(folder):
    parts = {part: data.build("imagefolder", folder, split=part, test_fraction=0.2, split_seed=3)
             for part in ("train", "test")}
    files = {part: {str(p) for p in dataset.paths} for part, dataset in parts.items()}
    assert (len(files["train"]), len(files["test"])) == (16, 4)
    assert not files["train"] & files["test"] and len(files["train"] | files["test"]) == IMAGES
    again = data.build("imagefolder", folder, split="test", test_fraction=0.2, split_seed=3)
    other = data.build("imagefolder", folder, split="test", test_fraction=0.2, split_seed=4)
    assert {str(p) for p in again.paths} == files["test"] != {str(p) for p in other.paths}


def test_the_split_of_an_in_memory_dataset():
    whole = data.build("embedded", split="all")
    parts = {part: data.build("embedded", split=part, test_fraction=0.25) for part in ("train", "test")}
    indices = {part: part_indices(len(whole), 0.25, 0, part) for part in parts}
    assert len(indices["test"]) == round(len(whole) * 0.25)
    assert sorted(np.concatenate(list(indices.values()))) == list(range(len(whole)))  # disjoint, all of it
    for part, dataset in parts.items():
        assert np.array_equal(dataset.images, whole.images[indices[part]])
        assert np.array_equal(dataset.labels, whole.labels[indices[part]])


def test_resume_mid_epoch_keeps_the_epoch_means_exact(folder, tmp_path):
    straight = seed_recipe(folder, "train.epoch_sheets=false", "train.checkpoint_every=100")
    train(straight, tmp_path / "straight", progress=False)
    halves = seed_recipe(folder, "train.epoch_sheets=false", "train.checkpoint_every=100",
                         "train.steps=6")  # stops two steps into epoch 2
    train(halves, tmp_path / "halves", progress=False)
    resumed = config.resolve(resume=config.to_dict(halves), sets=["train.epochs=2"])
    train(resumed, tmp_path / "halves", resume=True, progress=False)
    epoch_record = lambda run: [r for r in records(run) if r.get("epoch") == 2 and "d_loss_epoch" in r]
    a, b = epoch_record(tmp_path / "straight"), epoch_record(tmp_path / "halves")
    assert len(a) == len(b) == 1
    assert {k: v for k, v in a[0].items()} == {k: v for k, v in b[0].items()}


def test_dry_run_prints_the_seed_recipe(tmp_path, capsys):
    root = make_celeba(tmp_path, {i: 0 for i in range(1, 81)})  # a batch of 64 in its 80% train part
    assert main(["train", "--preset", "seed", "--data-root", str(root), "--dry-run"]) == 0
    recipe = yaml.safe_load(capsys.readouterr().out)
    assert recipe["data"] | {"root": None} == recipe["data"] | {
        "name": "celeba", "resolution": 128, "test_fraction": 0.2, "split": "train", "root": None}
    assert {k: recipe["train"][k] for k in ("loss", "gp_weight", "clip_grad_value", "epochs", "steps", "lr_schedule",
                                           "weight_decay")} == {
        "loss": "bce", "gp_weight": 10.0, "clip_grad_value": 5.0, "epochs": 20, "steps": 0,
        "lr_schedule": "exponential", "weight_decay": 1e-5}
    assert recipe["model"]["attention"] == "paper" and recipe["eval"]["at_end"]


def test_a_dataset_without_a_preset_trains_the_paper_recipe(tmp_path, capsys):
    root = make_celeba(tmp_path, {i: 0 for i in range(1, 65)})
    assert main(["train", "--data", "celeba", "--data-root", str(root), "--dry-run"]) == 0
    recipe = yaml.safe_load(capsys.readouterr().out)
    assert (recipe["preset"], recipe["model"]["arch"], recipe["data"]["resolution"]) == ("paper", "resnet", 64)
    assert main(["train", "--dry-run"]) == 0  # no arguments: still the demo
    assert yaml.safe_load(capsys.readouterr().out)["preset"] == "demo"

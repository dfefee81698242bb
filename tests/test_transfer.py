"""Starting a run from another run's weights (train.init_from) and freezing blocks (train.freeze_g / freeze_d)."""

import pytest
import torch
from conftest import error_line, tiny_config

from sagan import api, checkpoints, config
from sagan.cli import main
from sagan.errors import ConfigError
from sagan.training import transfer
from sagan.training.gan import GANTraining
from sagan.training.trainer import train


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("transfer") / "source"
    train(tiny_config(**{"train.report": False}), run_dir, progress=False)
    return run_dir


def target(source, **overrides):
    return tiny_config(**{"train.init_from": str(source), "train.seed": 7, "train.lr_g": 3e-4,
                          "train.report": False} | overrides)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_run_starts_from_the_source_weights_with_fresh_optimisers(source, tmp_path):
    cfg = target(source)
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=10)
    lines = transfer.initialise(gan, source, cfg)
    state = checkpoints.load(source)
    for net, key in transfer.NETWORKS:
        assert same(getattr(gan, net).state_dict(), state[key]), net
    assert lines[0].startswith(f"initialised from {source} (step 4, embedded)")
    assert lines[1:] == [f"{net}: {len(state[key])} of {len(state[key])} tensors from the source"
                         for net, key in transfer.NETWORKS]

    run = api.train(cfg, tmp_path / "target", progress=False)
    log = (tmp_path / "target" / "train.log").read_text()
    assert f"initialised from {source} (step 4, embedded); fresh optimisers, step 0" in log
    after = checkpoints.load(run.run_dir)
    assert after["step"] == 4 and after["config"]["train"]["init_from"] == str(source)
    assert {int(s["step"]) for s in after["optimizer_d"]["state"].values()} == {4}  # the target's 4 steps only
    assert "init_from: " + str(source) in (tmp_path / "target" / "config.yaml").read_text()


def test_frozen_blocks_stay_bit_identical_and_get_no_optimiser_state(source, tmp_path):
    cfg = target(source, **{"train.freeze_d": 2, "train.freeze_g": 1})
    train(cfg, tmp_path / "frozen", progress=False)
    before, after = checkpoints.load(source), checkpoints.load(tmp_path / "frozen")
    for key, frozen in (("discriminator", ("blocks.block16.", "blocks.block8.")), ("generator", ("blocks.block4.",))):
        for name, value in after[key].items():
            if "_u" in name or "_v" in name or "running_" in name or "num_batches" in name:
                continue  # buffers: spectral-norm vectors and batch statistics move without gradients
            changed = not torch.equal(value, before[key][name])
            assert changed != name.startswith(frozen), name
    trainable = sum(1 for n in after["discriminator"] if not n.startswith(("blocks.block16.", "blocks.block8.")))
    assert len(after["optimizer_d"]["state"]) < trainable  # only the trainable parameters have Adam moments
    log = (tmp_path / "frozen" / "train.log").read_text()
    assert "frozen in D: block16, block8" in log and "frozen in G: block4" in log


def test_a_conditional_source_onto_an_unconditional_run_drops_its_class_embeddings(tmp_path):
    train(tiny_config(**{"model.num_classes": 10, "train.report": False, "train.steps": 2}), tmp_path / "cond",
          progress=False)
    cfg = target(tmp_path / "cond")
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=10)
    lines = transfer.initialise(gan, tmp_path / "cond", cfg)
    assert lines[1] == ("classes: the source has 10, this run 0: class embeddings (conditional batch norm, the "
                        "projection) are dropped")
    d = len(gan.D.state_dict())
    assert f"D: {d} of {d} tensors from the source; not carried over (1): embed.weight" in lines
    assert any(line.startswith("G: ") and "not carried over (" in line and "gain.weight" in line and
               "started fresh (" in line and "bn.weight" in line for line in lines)


@pytest.mark.parametrize("key,value,message", [
    ("data.resolution", 64, "the source's data.resolution is 32, this run's 64"),
    ("model.arch", "resnet", "the source's model.arch is 'dcgan', this run's 'resnet'"),
    ("model.g_channels", 32, "the source's model.g_channels is 16, this run's 32"),
])
def test_networks_of_another_shape_are_refused(source, key, value, message):
    overrides = {key: value} | ({"model.g_attention": [32], "model.d_attention": [16]} if key == "model.arch" else {})
    if key == "data.resolution":
        overrides |= {"model.g_attention": [16], "model.d_attention": [8]}
    cfg = target(source, **overrides)
    with pytest.raises(ConfigError, match=message):
        transfer.load_source(source, cfg)


def test_a_best_checkpoint_and_a_missing_source_are_one_line_errors(source, tmp_path, capsys):
    best = tmp_path / "best.pt"
    state = checkpoints.load(source)
    best.write_bytes(checkpoints.serialize({"generator_ema": state["generator_ema"], "config": state["config"],
                                            "step": 4}))
    with pytest.raises(ConfigError, match="holds no generator or discriminator"):
        transfer.load_source(best, target(source))
    assert main(["train", "--init-from", str(tmp_path / "nowhere"), "--dry-run"]) == 2
    assert "train.init_from: " in error_line(capsys)
    assert main(["train", "--set", "train.freeze_d=9", "--dry-run"]) == 2  # found before anything trains
    assert error_line(capsys) == ("sagan: error: train.freeze_d: 9 is more than the network's 4 blocks (block16, "
                                  "block8, attn8, block4)")


def test_a_fine_tuned_run_resumes_exactly(source, tmp_path):
    straight = target(source, **{"train.freeze_d": 1})
    train(straight, tmp_path / "straight", progress=False)
    half = target(source, **{"train.freeze_d": 1, "train.steps": 2})
    train(half, tmp_path / "halves", progress=False)
    resumed = config.resolve(resume=checkpoints.load(tmp_path / "halves")["config"], flags={"train.steps": 4})
    train(resumed, tmp_path / "halves", resume=True, progress=False)
    a, b = checkpoints.load(tmp_path / "straight"), checkpoints.load(tmp_path / "halves")
    assert same(a["generator"], b["generator"]) and same(a["discriminator"], b["discriminator"])

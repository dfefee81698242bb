"""The Python API the README shows: each command is one call, and the CLI gives the same results."""

import argparse
import importlib
import json
import pkgutil

import numpy as np
import pytest
from conftest import COLORS, solid, tiny_config

import sagan
from sagan.cli import build_parser, main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    result = sagan.train(tiny_config(), out, progress=False)
    assert result.run_dir == out and result.step == 4 and result.main and "d_loss" in result.record
    return out


def test_every_command_is_a_call_of_the_package():
    # The calls behind each command (`sagan presets` lists sagan.config.PRESETS; `preset` gives one).
    calls = {"train": "train", "generate": "generate", "export": "export", "evaluate": "evaluate",
             "visualize": "visualize", "app": "app", "report": "report", "bench": "bench", "compare": "compare",
             "data": "download_data describe_data prepare_data", "presets": "preset"}
    for module in pkgutil.walk_packages(sagan.__path__, "sagan."):  # a submodule named like a call would replace it
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == set(calls)
    for names in calls.values():
        for name in names.split():
            assert name in sagan.__all__ and callable(getattr(sagan, name)), name


def test_resolve_config_applies_preset_flags_and_sets_in_order():
    cfg = sagan.resolve_config("demo", flags={"train.steps": 10, "data.resolution": 32},
                               sets=["train.steps=20", "train.kernels=plain"])
    assert cfg.preset == "demo" and cfg.train.steps == 20 and cfg.train.kernels == "plain"
    assert isinstance(cfg, sagan.Config) and cfg.model == sagan.preset("demo").model
    with pytest.raises(sagan.UserError, match="train.kernels: 'fast' is not one of auto, plain"):
        sagan.resolve_config(sets=["train.kernels=fast"])


def test_resume_changes_only_the_resumable_fields(run):
    cfg = sagan.resolve_config(resume=run, flags={"train.steps": 6, "train.log_every": 1})
    assert cfg.train.steps == 6 and cfg.model.g_channels == 16  # the run's own model
    with pytest.raises(sagan.UserError, match="--resume: model.z_dim may not change"):
        sagan.resolve_config(resume=run, sets=["model.z_dim=32"])
    assert sagan.train(sagan.resolve_config(resume=run), run, resume=True).record == {}  # already at step 4


def test_generate_and_load_generator_agree(run, tmp_path):
    images, labels = sagan.generate(run, 5, seed=3, out=tmp_path / "samples.npz")
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8 and labels is None
    with np.load(tmp_path / "samples.npz") as f:
        assert (f["images"] == images).all()
    assert (sagan.load_generator(run).sample(5, seed=3) == images).all()


def test_visualize_and_report_write_their_files(run, tmp_path):
    paths = sagan.visualize("samples", run, out=tmp_path, num=4)
    assert [p.name for p in paths] == ["samples.png"] and paths[0].is_file()
    assert [p.name for p in sagan.visualize("interpolate", run, out=tmp_path, steps=3, pairs=2)] == [
        "interpolate-latent.png"]
    with pytest.raises(sagan.UserError, match="unknown figure 'nope'"):
        sagan.visualize("nope", run)
    assert sagan.report(run) == run / "report.html" and (run / "report.html").is_file()


def test_bench_times_training_steps_without_dataset_files():
    sets = ["train.batch_size=2", "model.g_channels=8", "model.d_channels=8", "data.resolution=32",
            "model.g_attention=[16]", "model.d_attention=[8]"]
    # dcgan64 trains on CelebA; its benchmark needs no data.root
    result = sagan.bench(sagan.resolve_config("dcgan64", sets=sets, scope="synthetic"), steps=1, warmup=0)
    assert result["batch_size"] == 2 and result["images_per_s"] > 0


def test_evaluate_from_python_and_the_cli_give_the_same_results(run, tmp_path, capsys):
    options = {"metrics": "swd", "backbone": "swd", "num_samples": 16, "reference": "embedded", "seed": 1}
    before = (run / "metrics.jsonl").read_text()
    results = sagan.evaluate(run, metrics="swd", backbone="swd", num_samples=16, reference="embedded", seed=1,
                             cache_dir=tmp_path, progress=False)
    assert results["step"] == 4 and results["num_samples"] == 16 and results["swd"] > 0
    assert (run / "metrics.jsonl").read_text() == before
    argv = ["evaluate", "--checkpoint", str(run), "--cache-dir", str(tmp_path), "--no-progress"]
    argv += [arg for key, value in options.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == results | {"source": str(run)}
    # The CLI records its results in the run; the Python call does so when asked.
    appended = (run / "metrics.jsonl").read_text()[len(before):].splitlines()
    assert [json.loads(line)["eval/swd"] for line in appended] == [results["swd"]]


def test_data_functions_describe_prepare_and_explain_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGAN_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    for i, color in enumerate(COLORS):
        solid(color).save(folder / f"{i}.png")
    cfg = sagan.resolve_config(flags={"data.name": "imagefolder", "data.root": str(folder), "data.workers": 0},
                               scope="data")
    info = sagan.describe_data(cfg)
    # without a preset, the data fields of the paper preset, which `sagan train --data` uses too
    assert (info["images"], info["shape"], info["classes"]) == (5, (3, 64, 64), 0)
    assert "image-net.org" in info["homepage"]
    cache = sagan.prepare_data(cfg, tmp_path / "images.npy", progress=False)
    assert cache.path == tmp_path / "images.npy" and len(cache) == 5
    assert sagan.download_data("celeba").startswith("celeba: get it from ")  # read from files, not downloaded
    with pytest.raises(sagan.UserError, match="--data-root: name the folder to download mnist into"):
        sagan.download_data("mnist")

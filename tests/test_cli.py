"""The command line: train / generate / bench end to end, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY, error_line, make_celeba
from PIL import Image

from sagan.cli import main
from sagan.config.presets import PRESETS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--out", str(run), *TINY, "--set", "model.num_classes=10"]) == 0
    return run


def test_train_writes_a_run(run_dir):
    assert (run_dir / "checkpoints" / "latest.pt").is_file()
    assert (run_dir / "samples" / "step-0000002.png").is_file()


def test_resume_continues_to_more_steps(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY]) == 0
    assert main(["train", "--resume", str(run), "--steps", "3", "--no-progress"]) == 0
    assert (run / "checkpoints" / "step-0000003.pt").is_file()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "already at step 3" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--batch-size", "4"]) == 2
    assert error_line(capsys).startswith("sagan: error: --resume: train.batch_size may not change (the run has 8, "
                                         "given 4); only data.root, data.workers")
    # What --resume may change is declared with the config fields; those changes are recorded.
    assert main(["train", "--resume", str(run), "--steps", "4", "--set", "train.log_every=1", "--no-progress"]) == 0
    assert "log_every: 1" in (run / "config.yaml").read_text()
    assert main(["train", "--resume", str(run), "--out", str(tmp_path / "other")]) == 2
    assert "--out does not apply" in error_line(capsys)


def test_generate_pngs_and_npz(run_dir, tmp_path):
    out = tmp_path / "pngs"
    assert main(["generate", "--checkpoint", str(run_dir), "--num", "3", "--out", str(out), "--class", "7"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert Image.open(out / "000000.png").size == (32, 32)
    npz = tmp_path / "samples.npz"
    checkpoint = run_dir / "checkpoints" / "latest.pt"
    assert main(["generate", "--checkpoint", str(checkpoint), "--num", "5", "--out", str(npz), "--seed", "4"]) == 0
    with np.load(npz) as f:
        assert f["images"].shape == (5, 32, 32, 3) and f["images"].dtype == np.uint8
        assert f["labels"].shape == (5,)
        again = tmp_path / "again.npz"
        main(["generate", "--checkpoint", str(checkpoint), "--num", "5", "--out", str(again), "--seed", "4"])
        with np.load(again) as g:
            assert (f["images"] == g["images"]).all()


def test_dry_run_prints_the_resolved_config(tmp_path, capsys):
    root = make_celeba(tmp_path / "celeba", {i: 0 for i in range(1, 65)})  # one batch of the preset
    assert main(["train", "--preset", "celeba128", "--data-root", str(root), "--set", "train.lr_g=5e-5",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "preset: celeba128" in out and f"root: {root}" in out and "lr_g: 5.0e-05" in out


def test_dry_run_checks_what_the_run_would_meet_first(tmp_path, capsys):
    # Whatever --dry-run accepts must train: the run directory, the transfer source and the dataset's files.
    root = make_celeba(tmp_path / "celeba", {i: 0 for i in range(1, 9)})
    (tmp_path / "file").write_text("")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    tiny = ["--data", "celeba", "--data-root", str(root), "--set", "train.batch_size=8",
            "--dry-run"]
    assert main(["train", *tiny]) == 0
    for args, message in [
        (["--out", str(tmp_path / "file")], f"run directory {tmp_path / 'file'} exists and is not a folder"),
        (["--out", ""], "--out: expected a folder, got an empty name"),
        (["--init-from", str(tmp_path / "text.pt")], "text.pt is truncated or not a sagan checkpoint"),
        (["--set", "train.batch_size=16"], "has fewer images than one batch (train.batch_size=16)"),
        (["--data-root", str(tmp_path)], "has no img_align_celeba/ folder"),
    ]:
        assert main(["train", *tiny, *args]) == 2
        assert message in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["celeba", "file", "text.pt"]  # nothing written


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("demo", "dcgan64", "celeba64", "celeba128", "mnist"))


def test_bench_prints_one_json_line(capsys):
    assert main(["bench", "train", "--preset", "demo", "--batch-size", "8", "--steps", "1", "--warmup", "0",
                 "--device", "cpu", "--set", "model.g_channels=16", "--set", "model.d_channels=16"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["batch_size"] == 8
    for key in ("images_per_s", "gflop_per_step", "gflop_per_s", "peak_mem_mb"):
        assert result[key] > 0


@pytest.mark.parametrize("args,message", [
    (["train", "--preset", "nope"], "unknown preset 'nope'; choose from demo"),
    (["train", "--set", "train.lrg=1"], "unknown config key 'train.lrg' (did you mean train.lr_g?)"),
    (["train", "--set", "steps"], "--set expects key=value"),
    (["train", "--resolution", "48"], "data.resolution: 48 is not a power of two"),
    (["train", "--data", "celeba", "--data-root", "/no/such/dir"], "data root /no/such/dir does not exist"),
    (["train", "--data", "celeba"], "needs a data root folder"),
    (["train", "--data-root", "."], "data.root: the embedded dataset ships with sagan and reads no folder; name the "
                                    "dataset of . with data.name (--data NAME, or --data . for a folder of images)"),
    (["train", "--data", "no-such-dataset"], "--data: 'no-such-dataset' is neither a dataset"),
    (["train", "--config", "/no/such.yaml"], "config file /no/such.yaml does not exist"),
    (["train", "--amp", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
    (["train", "--resume", "/no/such/run"], "checkpoint /no/such/run does not exist"),
    (["generate", "--checkpoint", "/no/such.pt", "--out", "x"], "checkpoint /no/such.pt does not exist"),
    (["train", "--steps", "many"], "argument --steps: invalid int value: 'many'"),
    (["train", "--amp", "fp8"], "train.amp: 'fp8' is not one of none, bf16, fp16"),
])
def test_user_mistakes_are_one_line_and_exit_2(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    assert message in error_line(capsys)


@pytest.mark.parametrize("sets, message", [
    (["data.name=imagefolder", "data.root=.", "data.split=test"], "data.split: imagefolder has no split 'test'"),
    (["eval.every=10", "eval.metrics=[fid,nope]"], "eval.metrics"),
    (["eval.every=10", "eval.backbone=resnet"], "eval.backbone: 'resnet' is not one of inception"),
    (["model.g_attention=[64]"], "model.g_attention: [64] not a feature resolution of the dcgan generator at 32x32"),
    (["model.d_attention=[32]"], "model.d_attention: [32] not a feature resolution"),
    (["train.loss=wgan-gp", "train.gp_weight=0"], "train.gp_weight: 0 leaves the wgan-gp critic unconstrained"),
    (["train.steps=0"], "train.steps and train.epochs: set exactly one above 0"),
    (["train.lr_step_size=2"], "train.lr_step_size: '2' applies only with train.lr_schedule=step"),
    (["data.split_seed=3"], "data.split_seed: '3' applies only with data.test_fraction > 0"),
    (["data.test_fraction=0.2", "data.split=valid"], "data.split: embedded split by data.test_fraction has no split"),
    (["data.test_fraction=1.5"], "data.test_fraction: must be in [0, 1), got 1.5"),
    (["eval.split=test"], "eval.split: 'test' applies only with eval.every > 0 or eval.at_end"),
    (["eval.at_end=true", "eval.split=test"], "eval.split: embedded has no split 'test'"),
    (["eval.every=10", "eval.at_end=true"], "eval.at_end: eval.every already evaluates the final generator"),
    (["eval.num_samples=100"], "eval.num_samples: '100' applies only with eval.every > 0"),
    (["eval.at_end=true", "eval.reference=stats.npz", "eval.reference_samples=500"],
     "eval.reference_samples: '500' applies only with real images as eval.reference, not a stats .npz"),
    (["train.ema_decay=0", "train.ema_start=100"], "train.ema_start: '100' applies only with train.ema_decay > 0"),
    (["train.loss=wasserstein"], "train.loss: 'wasserstein' is not one of hinge, bce, wgan-gp"),
    (["train.kernels=fast"], "train.kernels: 'fast' is not one of auto, plain"),
    (["data.labels=folders", "data.name=imagefolder", "data.root=."], "data.labels=folders labels the images"),
])
def test_dry_run_rejects_what_would_not_train(sets, message, capsys):
    assert main(["train", "--dry-run", *(arg for s in sets for arg in ("--set", s))]) == 2
    line = error_line(capsys)
    assert line.startswith("sagan: error: ") and message in line, line


def test_empty_image_folder_and_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2
    assert "no images" in error_line(capsys)
    assert not (tmp_path / "run").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["generate", "--checkpoint", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "bad.pt is truncated or not a sagan checkpoint" in error_line(capsys)


def test_the_console_entry_point_reports_errors_without_traceback():
    result = subprocess.run([sys.executable, "-m", "sagan", "train", "--preset", "nope"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"sagan: error: unknown preset 'nope'; choose from {', '.join(PRESETS)}"
    assert list(PRESETS)[:4] == ["demo", "paper", "seed", "dcgan64"] and "sngan" in PRESETS


def test_mistakes_with_a_run_are_one_line_and_exit_2(run_dir, tmp_path, capsys):
    # Each once a traceback: paths that cannot be read or written, values out of range, files of the wrong kind.
    file, folder, images = tmp_path / "file", tmp_path / "folder", tmp_path / "images"
    file.write_text("")
    folder.mkdir()
    (folder / "metrics.jsonl").write_text("{not json\n")
    images.mkdir()
    (images / "0.png").write_text("not an image")
    ckpt = str(run_dir / "checkpoints" / "latest.pt")
    run, gen = str(run_dir), ["generate", "--checkpoint", str(run_dir), "--num", "2", "--out", str(tmp_path / "g")]
    swd = ["evaluate", "--checkpoint", run, "--backbone", "swd", "--num-samples", "8", "--no-progress"]
    cases = [
        ([*gen, "--out", f"{file}/x.npz"], f"sagan: error: {file}/x.npz: {file} is not a folder"),
        (["export", run, "--format", "safetensors", "--out", f"{file}/sub"], f"{file}/sub"),
        (["visualize", "samples", "--checkpoint", run, "--out", f"{file}/sub"], f"{file}/sub"),
        ([*gen, "--device", "tpu"], "sagan: error: --device: 'tpu' is not a device (auto, cpu, cuda or cuda:N)"),
        ([*gen, "--seed", str(2**70)], f"seed: {2**70} is not in [0, 2^63)"),
        ([*gen, "--truncation", "nan"], "truncation must be positive, got nan"),
        ([*gen, "--num", "5", "--interpolate", "1", "2"], "--num: an interpolation has --frames images, not --num"),
        (["visualize", "curves", str(folder)], f"{folder / 'metrics.jsonl'} holds no records yet: nothing to draw"),
        (["train", "--config", ckpt, "--dry-run"], f"config file {ckpt} is not a text file; expected YAML"),
        (["train", "--config", str(folder), "--dry-run"], f"config file {folder} is a folder; expected a YAML file"),
        (["train", "--seed", "-1", "--dry-run"], "train.seed: must be in [0, 2^32), got -1"),
        (["train", "--set", "train.lr_g=inf", "--dry-run"], "train.lr_g: must be positive, got inf"),
        (["train", "--set", "model.g_attention=[16,", "--dry-run"], "model.g_attention expects a list of integers"),
        (["train", "--set", "version=5", "--dry-run"], "--set version: recorded by sagan, not set"),
        (["train", "--set", "preset=nope", "--dry-run"], "--set preset: recorded by sagan, not set (choose one"),
        (["app", run, "--port", "70000"], "--port 70000: expected 0-65535 (0: any free port)"),
        (["bench", "train", "--preset", "demo", "--steps", "0"], "--steps must be positive, got 0"),
        (["evaluate", "--images", str(images), "--backbone", "swd", "--reference", str(images)],
         f"--images: cannot decode image {images / '0.png'}"),
        ([*swd, "--reference", str(images), "--resolution", "64"],
         "--resolution 64: swd compares images of one size, and those scored are 32x32"),
        ([*swd, "--reference-samples", "-1"], "--reference-samples must not be negative (0: all), got -1"),
        ([*swd, "--reference", str(images), "--split", "test"], "imagefolder has no split 'test'"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        assert message in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "images"]

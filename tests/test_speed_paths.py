"""The fast paths compute what the plain ones do, and the benchmark's reference step is the architecture it claims."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DEVICES, tiny_config
from test_kernels import EVERYWHERE

from sagan import cli, kernels
from sagan.benchmarks import reference
from sagan.benchmarks.train import _count_gflop, build_reference
from sagan.config import preset
from sagan.runtime import seed_everything
from sagan.training.gan import GANTraining

PLAIN = {"train.fused_optimizer": False, "train.channels_last": False, "train.compile": False,
         "train.kernels": "plain"}


def train_steps(cfg, steps: int = 3, device: str = "cpu") -> tuple[list[dict[str, float]], torch.Tensor]:
    """Losses of `steps` D+G steps on fixed random images from the config's seed, and G's parameters after; with
    train.kernels=auto every kernel runs on the tiny networks (`EVERYWHERE`)."""
    seed_everything(cfg.train.seed)
    gan = GANTraining(cfg, torch.device(device), batches_per_epoch=1)
    if cfg.train.kernels == "auto":
        for net in (gan.G, gan.D, gan.G_ema):
            kernels.install(net, EVERYWHERE)
    images = torch.randint(0, 256, (cfg.train.batch_size, 3, 32, 32), generator=torch.Generator().manual_seed(1),
                           dtype=torch.uint8)
    labels = torch.zeros(cfg.train.batch_size, dtype=torch.long)
    losses = []
    for step in range(1, steps + 1):
        stats = gan.d_step(*gan.prepare(images, labels)) | gan.g_step(cfg.train.batch_size)
        gan.update_ema(step)
        losses.append({k: v.item() for k, v in stats.items()})
    return losses, torch.cat([p.detach().cpu().flatten() for p in gan.G.parameters()])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimised", [{}, {"train.channels_last": True}], ids=["defaults", "channels-last"])
def test_optimised_training_matches_the_plain_path(optimised, device, monkeypatch):
    # Plain: the per-tensor Adam loop, NCHW, the reference networks. Optimised: the defaults (fused Adam, the
    # kernels), optionally channels_last. cuDNN's TF32 convolutions (on by default) would round both paths to
    # 10-bit mantissas, far beyond this comparison's tolerance.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    plain_losses, plain_params = train_steps(tiny_config(**PLAIN), device=device)
    fast_losses, fast_params = train_steps(tiny_config(**optimised), device=device)
    for plain, fast in zip(plain_losses, fast_losses, strict=True):
        assert plain.keys() == fast.keys()
        for key in plain:
            assert fast[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-5), key
    # Adam's first steps move a weight by about lr whatever its gradient's size, so the few weights whose gradient
    # is at rounding level may differ by up to a few lr (2e-4 for G here); all others agree to float tolerance.
    close = torch.isclose(fast_params, plain_params, rtol=1e-4, atol=1e-5)
    assert close.float().mean() > 0.99
    torch.testing.assert_close(fast_params, plain_params, rtol=0, atol=5 * tiny_config().train.lr_g)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SAGAN_TEST_COMPILE"),
                    reason="torch.compile takes minutes on a 2-core CPU; run with SAGAN_TEST_COMPILE=1")
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_training_matches_eager(device, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    eager_losses, eager_params = train_steps(tiny_config(), device=device)
    compiled_losses, compiled_params = train_steps(tiny_config(**{"train.compile": True}), device=device)
    for eager, compiled in zip(eager_losses, compiled_losses, strict=True):
        for key in eager:
            assert compiled[key] == pytest.approx(eager[key], rel=1e-4, abs=1e-5), key
    torch.testing.assert_close(compiled_params, eager_params, rtol=0, atol=5 * tiny_config().train.lr_g)


def test_reference_step_has_the_dcgan64_parameter_counts():
    cfg = preset("dcgan64")
    step = build_reference(cfg, torch.device("cpu"))
    assert reference.trainable_parameters(step.G) == 3_832_885
    assert reference.trainable_parameters(step.D) == 3_175_299
    # The frozen power-iteration vectors are parameters too, as in the reference repository.
    assert any(name.endswith("weight_u") for name, _ in step.D.named_parameters())


def test_bench_compares_against_the_reference(capsys):
    argv = ["bench", "train", "--preset", "demo", "--batch-size", "4", "--steps", "1", "--warmup", "0",
            "--compare-reference", "--device", "cpu", "--set", "model.g_channels=16", "--set", "model.d_channels=16"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["speedup_vs_reference"] == pytest.approx(
        result["reference_seconds_per_step"] / result["seconds_per_step"], rel=0.02)
    assert result["reference_gflop_per_step"] > result["gflop_per_step"] > 0
    assert "speed-up" in err


def test_bench_counts_the_operators_of_both_steps(capsys):
    argv = ["bench", "train", "--preset", "demo", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--ops",
            "--compare-reference", "--device", "cpu", "--set", "model.g_channels=16", "--set", "model.d_channels=16"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    ops = json.loads(out)["ops"]
    for counts in ops.values():
        top = list(counts["top_ops"].values())
        assert counts["view_ops"] > 0 and top == sorted(top, reverse=True) and sum(top) <= counts["kernel_ops"]
    assert {"convolution", "convolution_backward"} <= ops["sagan"]["top_ops"].keys()
    assert "operators per step" in err


def test_bench_breakdown_splits_the_step_time(capsys):
    argv = ["bench", "train", "--preset", "demo", "--batch-size", "4", "--steps", "1", "--warmup", "1",
            "--breakdown", "--device", "cpu", "--set", "model.g_channels=16", "--set", "model.d_channels=16"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    b = json.loads(out)["breakdown"]
    shares = [b["matmul_share"], b["softmax_share"], b["other_share"]]
    assert all(0 < share < 1 for share in shares) and sum(shares) == pytest.approx(1, abs=0.002)
    assert b["matmul_gflop_per_s"] > 0 and b["matmul_2048_gflop_per_s"] > 0
    assert "matmul/convolution kernels" in err


def test_bench_with_reused_fakes_skips_a_generator_forward_pass(capsys):
    results = []
    for reuse in ("false", "true"):
        argv = ["bench", "train", "--preset", "demo", "--batch-size", "4", "--steps", "1", "--warmup", "0",
                "--device", "cpu", "--set", f"train.reuse_fakes={reuse}"]
        assert cli.main(argv) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert [r["reuse_fakes"] for r in results] == [False, True]
    assert results[1]["gflop_per_step"] < results[0]["gflop_per_step"]


def test_bench_refuses_a_reference_comparison_it_cannot_make(capsys):
    assert cli.main(["bench", "train", "--preset", "mnist", "--compare-reference", "--steps", "1"]) == 2
    assert "--compare-reference" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what the GPU script does without a GPU")
def test_the_gpu_script_stops_at_once_without_a_gpu(tmp_path):
    script = Path(__file__).parents[1] / "benchmarks" / "gpu.sh"
    def gpu_sh(*sections):
        return subprocess.run(["bash", str(script), *sections], check=False, capture_output=True, text=True,
                              cwd=tmp_path, env=os.environ | {"OUT": str(tmp_path / "out")}, timeout=60)

    done = gpu_sh("bench")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "benchmarks/gpu.sh: no CUDA GPU here (or no PyTorch); run it on a machine with one"]
    done = gpu_sh("bench", "test")  # a misspelt section stops it before any GPU time is spent
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "benchmarks/gpu.sh: unknown section 'test': expected bench, tests, memory, metrics or e2e"]
    # Its bench commands, run here, stop with one line too.
    assert cli.main(["bench", "train", "--preset", "celeba128", "--device", "cuda", "--amp", "bf16", "--ops"]) == 2


def test_the_gpu_scripts_sagan_commands_parse_and_resolve(monkeypatch):
    # GPU time is scarce: a flag the CLI refuses would cost a run of the script.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    text = (Path(__file__).parents[1] / "benchmarks" / "gpu.sh").read_text().replace("\\\n", " ")
    bench = shlex.split(re.search(r"^\s*bench=\((.*)\)$", text, re.MULTILINE).group(1))
    commands = []
    for line in text.replace('"${bench[@]}"', shlex.join(bench)).splitlines():
        words = shlex.split(line.split("#")[0]) if "-m sagan " in line else []
        if words and words[0] in ("python", "run"):  # a command, not the bench array's definition
            commands.append(words[words.index("sagan") + 1:])
    assert len(commands) >= 8 and sum(c[:2] == ["bench", "train"] for c in commands) == 5
    for argv in commands:
        args = cli.build_parser().parse_args(argv)
        if argv[0] in ("bench", "train"):
            cli.resolve_config(args, scope="synthetic" if argv[0] == "bench" else "run")


def run_benchmark(script: str, *args: str) -> dict:
    """The JSON line a script of benchmarks/ prints."""
    done = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "benchmarks" / script), *args], check=True,
                          capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_cuda_choices_a_steps_operators_do_not_grow_with_the_batch():
    # Unlike the CPU kernels, which run the attention a few images at a time.
    counts = [run_benchmark("ops_cuda_choices.py", "--preset", "dcgan64", "--batch-size", batch)["ops"]["kernel_ops"]
              for batch in ("2", "16")]
    assert counts[0] == counts[1] > 0


def test_the_spectral_norm_ab_times_both_paths():
    result = run_benchmark("spectral_norm_ab.py", "--preset", "demo", "--batch-size", "2", "--steps", "1",
                           "--warmup", "0")
    assert result["multi-tensor_seconds_per_step"] > 0 and result["per-layer_seconds_per_step"] > 0


@pytest.mark.parametrize("groups", [1, 16])
def test_bench_counts_a_convolutions_backward_as_twice_its_forward(groups):
    # torch's own formula counts a grouped (depthwise) convolution's backward `groups` times over.
    conv = torch.nn.Conv2d(16, 16, 3, padding=1, groups=groups)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    forward = 2 * 2 * 16 * (16 // groups) * 9 * 64
    assert _count_gflop(lambda: conv(x).sum().backward()) * 1e9 == pytest.approx(3 * forward)

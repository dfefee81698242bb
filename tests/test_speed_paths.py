"""The fast paths compute what the plain ones do, and the benchmark's reference step is the architecture it claims."""

import json
import os

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import DEVICES, needs_cuda, tiny_config
from sagan import bench, cli
from sagan.config import preset
from sagan.models import attention, conv
from sagan.training.gan import GANTraining
from sagan.training.runtime import seed_everything

PLAIN = {"train.fused_optimizer": False, "train.channels_last": False, "train.compile": False}


def train_steps(cfg, steps: int = 3, device: str = "cpu") -> tuple[list[dict[str, float]], torch.Tensor]:
    """Losses of `steps` D+G steps on fixed random images from the config's seed, and G's parameters after."""
    seed_everything(cfg.train.seed)
    gan = GANTraining(cfg, torch.device(device), batches_per_epoch=1)
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
    # Plain: the per-tensor Adam loop, NCHW, every attention map through the fused kernel, every convolution
    # oneDNN's. Optimised: the defaults (fused Adam, small attention maps as matmuls: G's 16x16 map 3 images at a
    # time on the CPU, D's 8x8 map the whole batch; the 4x4 layers' transposed convolutions and weight gradients as
    # matmuls on the CPU), optionally channels_last. cuDNN's TF32 convolutions (on by default) would round both
    # paths to 10-bit mantissas, far beyond this comparison's tolerance.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    with monkeypatch.context() as patch:
        patch.setattr(attention, "images_per_chunk", lambda q, k: 0)
        patch.setattr(conv, "MAX_MATMUL_POSITIONS", 0)
        plain_losses, plain_params = train_steps(tiny_config(**PLAIN), device=device)
    monkeypatch.setattr(attention, "CPU_CHUNK_BYTES", 3 * 256**2 * 4)
    monkeypatch.setattr(conv, "MIN_MATMUL_WEIGHTS", 0)  # the tiny nets' 4x4 layers as if their kernels were large
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


class OpNames(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__)
        return func(*args, **(kwargs or {}))


FLASH = "_scaled_dot_product_flash_attention_for_cpu"


@pytest.mark.parametrize("chunk_bytes,batch,kernels,absent", [
    (0, 5, {FLASH, FLASH + "_backward"}, {"_softmax"}),  # no chunk fits: the fused kernel
    # 2 images at a time, recomputed, softmax written over the scores (`softmax.int_out`)
    (2 * 64**2 * 4, 5, {"bmm", "softmax"}, {FLASH, "_softmax_backward_data"}),
    (2**30, 5, {"bmm", "_softmax", "_softmax_backward_data"}, {FLASH}),  # the whole batch: plain autograd
])
def test_attention_kernels_by_chunk_size_compute_the_same(chunk_bytes, batch, kernels, absent, monkeypatch):
    monkeypatch.setattr(attention, "CPU_CHUNK_BYTES", chunk_bytes)
    if chunk_bytes == 0:
        monkeypatch.setattr(attention, "MAX_SCORES_PER_IMAGE_CPU", 0)
    torch.manual_seed(0)
    q, k, v = (torch.randn(batch, 64, d, requires_grad=True) for d in (4, 4, 32))
    with OpNames() as ops:
        out = attention.attend(q, k, v)
        out.square().sum().backward()
    names = {name.split(".")[0] for name in ops.names}
    assert kernels <= names and not absent & names, names
    q2, k2, v2 = (t.detach().double().requires_grad_() for t in (q, k, v))
    expected = torch.softmax(q2 @ k2.transpose(1, 2), dim=-1) @ v2
    expected.square().sum().backward()
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
    for got, want in zip((q.grad, k.grad, v.grad), (q2.grad, k2.grad, v2.grad)):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


def test_chunked_attention_has_first_and_second_derivatives():
    # Second derivatives: WGAN-GP's penalty differentiates D's input gradient again. Fewer keys than queries: the
    # official form's pooled keys. Three images in chunks of two.
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, n, d, dtype=torch.float64, requires_grad=True) for n, d in ((6, 2), (5, 2), (5, 4)))

    def chunked(*args):
        return attention._ChunkedAttention.apply(*args, 2)

    assert torch.autograd.gradcheck(chunked, (q, k, v))
    assert torch.autograd.gradgradcheck(chunked, (q, k, v))
    assert torch.autograd.gradgradcheck(chunked, (q, k.detach(), v))  # some inputs without gradients


def test_gradient_penalty_through_chunked_attention_matches_whole_batches(monkeypatch):
    cfg = tiny_config(**{"train.loss": "wgan-gp"})
    with monkeypatch.context() as patch:
        patch.setattr(attention, "CPU_CHUNK_BYTES", 2**40)
        whole, _ = train_steps(cfg, steps=2)
    monkeypatch.setattr(attention, "CPU_CHUNK_BYTES", 3 * 64**2 * 4)  # D's 8x8 map 3 images at a time, G's 16x16 1
    chunked, _ = train_steps(cfg, steps=2)
    for a, b in zip(whole, chunked, strict=True):
        assert a.keys() == b.keys() and "gp" in a
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key


def test_chunked_attention_in_bfloat16_is_as_close_as_plain_autograd():
    torch.manual_seed(0)
    q, k = (torch.randn(4, 256, 8) for _ in range(2))
    v, grad = torch.randn(4, 256, 64), torch.randn(4, 256, 64)

    def run(fn, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        out = fn(*leaves)
        out.backward(grad.to(dtype))
        return [t.double() for t in (out.detach(), *(leaf.grad for leaf in leaves))]

    def plain(a, b, c):
        return torch.softmax(a @ b.transpose(1, 2), dim=-1) @ c

    exact = run(plain, torch.float64)
    autograd = run(plain, torch.bfloat16)
    chunked = run(lambda a, b, c: attention._ChunkedAttention.apply(a, b, c, 1), torch.bfloat16)
    for want, reference, got in zip(exact, autograd, chunked):
        # bf16 rounding of the recomputed scores' gradient: within a quarter more error than autograd's
        assert (got - want).norm() <= 1.25 * (reference - want).norm()


@pytest.mark.parametrize("batch,positions,dtype,expected", [
    (64, 8 * 8, torch.float32, 64),  # D's small maps: the whole batch at once
    (128, 16 * 16, torch.float32, 64),  # 16 MiB of scores per chunk
    (64, 32 * 32, torch.float32, 4),  # G's 32x32 map: four images' scores at a time in float32
    (64, 32 * 32, torch.bfloat16, 8),  # ... and eight in bfloat16
    (64, 64 * 32, torch.float32, 0),  # the fused kernel is as fast from N = 2048 in float32 ...
    (64, 64 * 32, torch.bfloat16, 0),  # ... and 3x faster in bfloat16 with AMX
    (256, 32 * 32, torch.bfloat16, 8),  # memory bounded by the chunk, not the batch
    (1, 64 * 64, torch.bfloat16, 0),  # 64x64 maps always take the fused kernel, in memory linear in N
])
def test_attention_chunks_by_speed_and_memory(batch, positions, dtype, expected):
    q = torch.empty(batch, positions, 8, dtype=dtype)
    assert attention.images_per_chunk(q, q) == expected


def test_other_devices_materialise_whole_batches_with_the_float32_limit():
    q = torch.empty(64, 32 * 32, 8, dtype=torch.bfloat16, device="meta")  # the bf16 limit was measured on the CPU
    assert attention.images_per_chunk(q, q) == 0
    q = torch.empty(64, 16 * 16, 8, device="meta")
    assert attention.images_per_chunk(q, q) == 64


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("value_dim", [64, 512])
def test_large_attention_on_cuda_runs_a_fused_kernel(dtype, value_dim, monkeypatch):
    # The flash kernel takes head sizes up to 256 in half precision, the memory-efficient one float32 and larger
    # heads; either keeps memory linear in N. The math fallback would show as `_softmax`.
    monkeypatch.setattr(attention, "MAX_MATERIALISED_BYTES", 0)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 1024, d, device="cuda", dtype=dtype, requires_grad=True) for d in (8, 8, value_dim))
    with OpNames() as ops:
        out = attention.attend(q, k, v)
        out.float().square().sum().backward()
    names = {name.split(".")[0] for name in ops.names}
    assert "_softmax" not in names and "bmm" not in names, names
    q2, k2, v2 = (t.detach().double().requires_grad_() for t in (q, k, v))
    expected = torch.softmax(q2 @ k2.transpose(1, 2), dim=-1) @ v2
    expected.square().sum().backward()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)
    for got, want in zip((q.grad, k.grad, v.grad), (q2.grad, k2.grad, v2.grad)):
        assert (got.double() - want).norm() <= tol * want.norm()


def test_reference_step_has_the_dcgan64_parameter_counts():
    reference = bench.load_reference_module()
    cfg = preset("dcgan64")
    step = bench.build_reference(cfg, torch.device("cpu"))
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

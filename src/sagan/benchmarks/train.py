"""`sagan bench train`: speed of the real training step (the one the loop runs) on synthetic batches, optionally side
by side with the reference implementation's step (`sagan.benchmarks.reference`)."""

import resource
import sys
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils import flop_counter

from ..config import Config
from ..errors import ConfigError
from ..runtime import check_amp, resolve_device, seed_everything, tune_backends
from ..training.gan import GANTraining
from .ops import count_ops
from .reference import ReferenceTraining

# Dense bf16 (= fp16) tensor-core peaks (TFLOP/s) from the vendors' data sheets, matched in this order against the
# CUDA device name.
BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.5, "H100": 989.4, "H200": 989.4, "A100": 312.0}


# FlopCounterMode has no formula for PyTorch's CPU flash-attention kernels; they do the work of the fused GPU ones.
def _flash_cpu_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _flash_cpu_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                         output_padding, groups, output_mask, out_shape=None, **kwargs) -> int:
    """torch's formula, except for grouped (depthwise) convolutions, which it counts `groups` times over: there each
    input and weight gradient costs what the forward does."""
    if groups == 1:
        return flop_counter.conv_backward_flop(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation,
                                               transposed, output_padding, groups, output_mask, out_val=out_shape)
    forward = flop_counter.conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


# The aten ops whose (self) time is matmul or convolution kernels on the CPU: the FLOPs the counter sees. `_convolution`
# itself runs oneDNN's transposed convolutions.
MATMUL_OPS = {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::_convolution", "aten::mkldnn_convolution",
              "aten::convolution_backward", "aten::_scaled_dot_product_flash_attention_for_cpu",
              "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}
SOFTMAX_OPS = {"aten::_softmax", "aten::_softmax_backward_data"}

_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _flash_cpu_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _flash_cpu_backward_flops,
    torch.ops.aten.convolution_backward: _conv_backward_flops,
}


def bench_train(cfg: Config, steps: int = 10, warmup: int = 3, compare_reference: bool = False,
                peak_tflops: float | None = None, breakdown: bool = False, ops: bool = False) -> dict:
    """Time `steps` full training steps (n_dis D steps, one G step, the EMA update) after `warmup` untimed ones.

    With `compare_reference`, the reference step at the same architecture and batch runs in the same process,
    interleaved step by step with sagan's (same warm-up, same threads, same clock), so both see the same machine load.
    With `breakdown` (CPU only), one more step is profiled to say where its time goes (`step_breakdown`); with `ops`,
    the operators one step dispatches are counted (`ops.count_ops`).
    """
    t, res = cfg.train, cfg.data.resolution
    device = resolve_device(t.device, "train.device")
    check_amp(t.amp, device)
    if breakdown and device.type != "cpu":
        raise ConfigError("--breakdown: profiles CPU steps only; on a GPU use torch.profiler with "
                          "ProfilerActivity.CUDA")
    tune_backends(device)
    gan, images, sagan_step = synthetic_training(cfg, device)
    runs = {"sagan": sagan_step}
    if compare_reference:
        reference = build_reference(cfg, device)
        real = images.to(device).float().div_(127.5).sub_(1)
        runs["reference"] = lambda: [reference.step(real) for _ in range(t.n_dis)]

    for _ in range(warmup):
        for step in runs.values():
            step()
    gflop = {name: _count_gflop(step) for name, step in runs.items()}
    peak_mb = {name: _peak_cuda_mb(step, device) for name, step in runs.items()} if device.type == "cuda" else {}
    seconds = _interleaved_seconds(runs, steps, device)

    result = {
        "preset": cfg.preset, "arch": cfg.model.arch, "attention": cfg.model.attention, "resolution": res,
        "batch_size": t.batch_size, "g_params": sum(p.numel() for p in gan.G.parameters()),
        "d_params": sum(p.numel() for p in gan.D.parameters()),
        "amp": t.amp, "kernels": t.kernels, "channels_last": gan.channels_last, "fused_optimizer": t.fused_optimizer,
        "compile": gan.compiling.mode, "reuse_fakes": t.reuse_fakes,
        "device": str(device), "device_name": _device_name(device), "threads": torch.get_num_threads(),
        "steps": steps, "seconds_per_step": round(seconds["sagan"], 4),
        "images_per_s": round(t.batch_size / seconds["sagan"], 2),
        "gflop_per_step": round(gflop["sagan"], 2),
        "gflop_per_s": round(gflop["sagan"] / seconds["sagan"], 1),
    }
    if device.type == "cuda":
        result |= {"peak_mem_mb": round(peak_mb["sagan"], 1), "peak_mem_kind": "cuda max allocated, one step"}
    else:
        result |= {"peak_mem_mb": round(_process_peak_rss_mb(), 1),
                   "peak_mem_kind": "process peak RSS" + (" (sagan and reference)" if compare_reference else "")}
    if peak_tflops is None and t.amp != "none":
        peak_tflops = default_peak_tflops(device)
    if peak_tflops:
        result |= {"peak_tflops": peak_tflops,
                   "peak_fraction": round(gflop["sagan"] / seconds["sagan"] / (peak_tflops * 1000), 4)}
    if compare_reference:
        result |= {
            "reference_seconds_per_step": round(seconds["reference"], 4),
            "reference_images_per_s": round(t.batch_size / seconds["reference"], 2),
            "reference_gflop_per_step": round(gflop["reference"], 2),
            "reference_gflop_per_s": round(gflop["reference"] / seconds["reference"], 1),
            "speedup_vs_reference": round(seconds["reference"] / seconds["sagan"], 2),
        }
        if device.type == "cuda":
            result["reference_peak_mem_mb"] = round(peak_mb["reference"], 1)
    if breakdown:
        result["breakdown"] = step_breakdown(sagan_step, seconds["sagan"], gflop["sagan"], t.amp)
    if ops:
        result["ops"] = {name: count_ops(step) for name, step in runs.items()}
    result["torch"] = torch.__version__
    return result


def synthetic_training(cfg: Config, device: torch.device) -> tuple[GANTraining, torch.Tensor, Callable[[], None]]:
    """A GANTraining of `cfg` on `device` from its seed, fixed random uint8 images of the batch's shape, and one
    training step on them: what `bench_train` times (and the scripts in benchmarks/ count or compare)."""
    t, res, ch = cfg.train, cfg.data.resolution, cfg.data.channels
    seed_everything(t.seed)
    gan = GANTraining(cfg, device, batches_per_epoch=1)
    images = torch.randint(0, 256, (t.batch_size, ch, res, res), dtype=torch.uint8)
    labels = torch.randint(max(cfg.model.num_classes, 1), (t.batch_size,))

    def step() -> None:
        gan.train_step([(images, labels)] * t.n_dis, t.batch_size, 1, log=lambda line: print(line, file=sys.stderr))

    return gan, images, step


def step_breakdown(step: Callable[[], None], seconds: float, gflop: float, amp: str) -> dict:
    """The shares of a CPU step's time in matmul and convolution kernels, in softmax and in everything else (element-
    wise ops, normalisation, the optimisers; torch.profiler self times of one step), the rate of its matmul kernels,
    and for scale what a 2048^3 matmul reaches at the step's precision on this machine."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    times = dict.fromkeys(("matmul", "softmax", "other"), 0.0)
    for event in prof.key_averages():
        kind = "matmul" if event.key in MATMUL_OPS else "softmax" if event.key in SOFTMAX_OPS else "other"
        times[kind] += event.self_cpu_time_total
    total = sum(times.values())
    shares = {kind: time / total for kind, time in times.items()}
    a = torch.randn(2048, 2048, dtype=torch.bfloat16 if amp == "bf16" else torch.float32)
    matmul_seconds = min(_seconds(lambda: a @ a, torch.device("cpu")) for _ in range(6))
    return {**{f"{kind}_share": round(share, 3) for kind, share in shares.items()},
            "matmul_gflop_per_s": round(gflop / (shares["matmul"] * seconds), 1),
            "matmul_2048_gflop_per_s": round(2 * 2048**3 / matmul_seconds / 1e9, 1)}


def summary_line(result: dict) -> str:
    """One human-readable line of a `bench_train` result."""
    line = (f"sagan {result['preset']} batch {result['batch_size']} amp {result['amp']} kernels {result['kernels']} "
            f"on {result['device_name']}: "
            f"{result['images_per_s']} images/s ({result['gflop_per_s']} GFLOP/s)")
    if "speedup_vs_reference" in result:
        line += (f"; reference (fp32, N x N attention): {result['reference_images_per_s']} images/s; "
                 f"speed-up {result['speedup_vs_reference']}x")
    if "peak_fraction" in result:
        line += f"; {100 * result['peak_fraction']:.1f}% of {result['peak_tflops']} TFLOP/s"
    if "breakdown" in result:
        b = result["breakdown"]
        line += (f"; time in matmul/convolution kernels {100 * b['matmul_share']:.0f}% (at {b['matmul_gflop_per_s']}"
                 f" GFLOP/s; a 2048^3 matmul here: {b['matmul_2048_gflop_per_s']}), softmax "
                 f"{100 * b['softmax_share']:.0f}%, the rest {100 * b['other_share']:.0f}%")
    if "ops" in result:
        ops = result["ops"]["sagan"]
        line += (f"; operators per step: {ops['kernel_ops']} running kernels (most: "
                 + ", ".join(f"{name} {n}" for name, n in ops["top_ops"].items()) + f") and {ops['view_ops']} views")
        if "reference" in result["ops"]:
            reference = result["ops"]["reference"]
            line += f"; the reference's: {reference['kernel_ops']} and {reference['view_ops']}"
    return line


def build_reference(cfg: Config, device: torch.device):
    """The reference networks and optimisers at the config's DCGAN architecture."""
    m, t = cfg.model, cfg.train
    if m.arch != "dcgan" or m.num_classes or cfg.data.channels != 3 or m.g_channels != m.d_channels:
        raise ConfigError("--compare-reference: the reference is the unconditional RGB DCGAN SAGAN; use a dcgan "
                          "preset such as dcgan64 (model.arch=dcgan, num_classes 0, equal g/d_channels)")
    if m.attention != "popular" or t.loss != "hinge" or t.n_dis != 1:
        raise ConfigError("--compare-reference: the reference has model.attention=popular, train.loss=hinge and "
                          "train.n_dis=1")
    return ReferenceTraining(
        device, image_size=cfg.data.resolution, z_dim=m.z_dim, conv_dim=m.g_channels, g_attention=m.g_attention,
        d_attention=m.d_attention, lr_g=t.lr_g, lr_d=t.lr_d, betas=(t.beta1, t.beta2))


def default_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def _interleaved_seconds(runs: dict[str, Callable[[], None]], steps: int, device: torch.device) -> dict[str, float]:
    """Mean seconds per call of each function, alternating them call by call."""
    total = dict.fromkeys(runs, 0.0)
    for _ in range(steps):
        for name, step in runs.items():
            total[name] += _seconds(step, device)
    return {name: seconds / steps for name, seconds in total.items()}


def _seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of one call, including the device work it queued."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _count_gflop(step: Callable[[], None]) -> float:
    # Counted on the eager modules: a compiled graph would recompile under the counting mode.
    with torch.compiler.set_stance("force_eager"), \
            flop_counter.FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        step()
    return counter.get_total_flops() / 1e9


def _peak_cuda_mb(step: Callable[[], None], device: torch.device) -> float:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _process_peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux

"""`sagan bench train`: speed of the real training step (the one the loop runs) on synthetic batches."""

import resource
import sys
import time

import torch
from torch.utils import flop_counter

from .config import Config
from .training.gan import GANTraining
from .training.runtime import check_amp, resolve_device, seed_everything



# FlopCounterMode has no formula for PyTorch's CPU flash-attention kernels; they do the work of the fused GPU ones.
def _flash_cpu_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _flash_cpu_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _flash_cpu_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _flash_cpu_backward_flops,
}


def bench_train(cfg: Config, steps: int = 10, warmup: int = 3) -> dict:
    """Time `steps` full training steps (n_dis D steps, one G step, the EMA update) after `warmup` untimed ones."""
    t, res, ch = cfg.train, cfg.data.resolution, cfg.data.channels
    device = resolve_device(t.device)
    check_amp(t.amp, device)
    seed_everything(t.seed)
    gan = GANTraining(cfg, device, batches_per_epoch=1)
    images = torch.randint(0, 256, (t.batch_size, ch, res, res), dtype=torch.uint8)
    labels = torch.randint(max(cfg.model.num_classes, 1), (t.batch_size,))

    def step() -> None:
        for _ in range(t.n_dis):
            gan.d_step(*gan.prepare(images, labels))
        gan.g_step(t.batch_size)
        gan.update_ema(1)

    for _ in range(warmup):
        step()
    with flop_counter.FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        step()
    gflop = counter.get_total_flops() / 1e9

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / steps
    return {
        "preset": cfg.preset, "arch": cfg.model.arch, "resolution": res, "batch_size": t.batch_size,
        "amp": t.amp, "channels_last": t.channels_last, "device": str(device), "threads": torch.get_num_threads(),
        "steps": steps, "seconds_per_step": round(seconds, 4),
        "images_per_s": round(t.batch_size / seconds, 2),
        "gflop_per_step": round(gflop, 2),
        "gflop_per_s": round(gflop / seconds, 1),
        "peak_mem_mb": round(_peak_memory_mb(device), 1),
        "peak_mem_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
        "torch": torch.__version__,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux

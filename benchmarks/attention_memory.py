"""Peak memory of one sagan training step (D step + G step) with self-attention at a 64x64 feature map (N = 4096).

The network is the `dcgan64` preset's backbone at 128x128, so G's last and D's first feature maps are 64x64, with
attention after exactly those two maps (G attn64, D attn64), at batch 32 (D sees 64 images: real and fake together).
Each configuration runs in a fresh process so that one's peak cannot hide another's:

- one per attention form (`--forms`, default all of `model.attention`'s), as it trains: full attention this large
  goes through the fused (flash) attention kernel, linear in N; the local and deformable forms are linear anyway;
- `no-attention`: the same network without the two attention blocks;
- `materialised`: the same network with every N x N score matrix materialised, as the reference implementation
  computes attention (`torch.bmm` of the full energy matrix, then softmax).

On the CPU the figure is the process's peak resident memory (`ru_maxrss`, which includes the ~0.3-0.5 GB of the
Python process and torch) and its growth during the step; on CUDA `torch.cuda.max_memory_allocated`. The attention
ops each configuration dispatched are listed, to show which kernel ran in the forward and the backward pass.

    .venv/bin/python benchmarks/attention_memory.py [--batch-size 32] [--device cpu|cuda] [--amp none|bf16]
        [--forms paper,local,...]

The `materialised` run needs about 3 x (2 x batch) x 4096^2 x 4 bytes (12 GiB at batch 32, fp32) for the
discriminator's scores alone; it is skipped, with the estimate, when the machine has less memory available.
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

FEATURE_MAP = 64
BASELINES = ("no-attention", "materialised")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--forms", help="attention forms to measure, comma-separated (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.batch_size, args.device, args.amp)))
        return 0
    from sagan.models import ATTENTION

    forms = args.forms.split(",") if args.forms else list(ATTENTION)
    if unknown := set(forms) - set(ATTENTION):
        parser.error(f"--forms: {', '.join(sorted(unknown))} not one of {', '.join(ATTENTION)}")
    results = {}
    for name in [*forms, *BASELINES]:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--batch-size", str(args.batch_size),
                              "--device", args.device, "--amp", args.amp],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            results[name] = {"config": name, "error": (out.stderr.strip().splitlines() or ["killed"])[-1]}
        else:
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(_row(results[name]), file=sys.stderr)
    base = results["no-attention"].get("peak_mb")
    for name in [*forms, "materialised"]:
        if base and results[name].get("peak_mb"):
            results[name]["vs_no_attention"] = round(results[name]["peak_mb"] / base, 2)
    print(json.dumps({"feature_map": FEATURE_MAP, "batch_size": args.batch_size, "device": args.device,
                      "amp": args.amp, "results": list(results.values())}))
    return 0


def measure(name: str, batch_size: int, device_name: str, amp: str) -> dict:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from sagan import config
    from sagan.models import SelfAttention
    from sagan.runtime import resolve_device, seed_everything
    from sagan.training.gan import GANTraining

    cfg = config.preset("dcgan64")
    attn = [] if name == "no-attention" else [FEATURE_MAP]
    form = cfg.model.attention if name in BASELINES else name
    for key, value in {"data.resolution": 2 * FEATURE_MAP, "model.g_attention": attn, "model.d_attention": attn,
                       "model.attention": form, "train.batch_size": batch_size, "train.device": device_name,
                       "train.amp": amp}.items():
        config.set_value(cfg, key, value)
    device = resolve_device(device_name)
    if name == "materialised":
        needed = 3 * (2 * batch_size) * (FEATURE_MAP**2) ** 2 * (2 if amp != "none" else 4)
        available = _available_bytes(device)
        if needed > available:
            return {"config": name, "skipped": f"needs about {needed / 2**30:.1f} GiB for D's score matrices, "
                                               f"{available / 2**30:.1f} GiB available"}
        config.set_value(cfg, "train.kernels", "plain")
        SelfAttention.attend = lambda self, q, k, v: torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v

    class AttentionOps(TorchDispatchMode):
        """Records the attention-related aten ops the step dispatches (no tensors kept)."""

        def __init__(self):
            super().__init__()
            self.seen: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            op = func.__name__
            if "attention" in op or "softmax" in op or op.startswith("bmm"):
                self.seen.add(op)
            return func(*args, **(kwargs or {}))

    seed_everything(0)
    gan = GANTraining(cfg, device, batches_per_epoch=1)
    images = torch.randint(0, 256, (batch_size, 3, 2 * FEATURE_MAP, 2 * FEATURE_MAP), dtype=torch.uint8)
    labels = torch.zeros(batch_size, dtype=torch.long)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    before = _peak_mb(device)
    ops = AttentionOps()
    with ops:
        gan.d_step(*gan.prepare(images, labels))
        gan.g_step(batch_size)
    peak = _peak_mb(device)
    return {"config": name, "attention": None if name == "no-attention" else form, "peak_mb": round(peak, 1),
            "before_step_mb": round(before, 1), "step_growth_mb": round(peak - before, 1),
            "attention_ops": sorted(ops.seen),
            "kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS"}


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def _available_bytes(device) -> int:
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return sys.maxsize
    fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines())
    return int(fields["MemAvailable"].split()[0]) * 1024


def _row(result: dict) -> str:
    if "peak_mb" in result:
        return (f"{result['config']:13s} peak {result['peak_mb']:9.1f} MB (step growth {result['step_growth_mb']:.1f}"
                f" MB) attention ops: {', '.join(result['attention_ops']) or '-'}")
    return f"{result['config']:13s} {result.get('skipped') or result.get('error')}"


if __name__ == "__main__":
    sys.exit(main())

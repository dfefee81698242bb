"""FID Inception feature extraction speed: sagan's prepared network against the reference computation.

For each input size and batch size, times `InceptionFeatures(...)` on uint8 N x 3 x S x S batches (resize to 299,
network, pool3 / logits) twice in one process, interleaved:
- `sagan`: the default path (batch norm folded into the convolutions, the 1x1 convolutions of each block merged,
  conv + ReLU fused, channels_last);
- `reference`: `fast=False`, the network exactly as the published weights define it and as torch-fidelity runs it
  (NCHW, separate conv / batch norm / ReLU, the same TF1 resize), i.e. the reference code's computation.
`--precision bf16` adds sagan's opt-in bfloat16 path (faster, not comparable with published FID).
Weights are seeded random (speed does not depend on their values). Prints one JSON line per measurement with
images/s (wall clock) and images per CPU-second (process time; steadier than wall time on a shared machine).
On a GPU (`--device cuda`) the uint8 batch starts on the host, as images from a folder do, and the timing waits for
the device to finish.

    .venv/bin/python benchmarks/metrics_speed.py                      # 32 and 64 px, batches 50 and 100
    .venv/bin/python benchmarks/metrics_speed.py --sizes 64 --batch-sizes 50 --repeats 3 --threads 2 --precision bf16
    python benchmarks/metrics_speed.py --device cuda --batch-sizes 200 --repeats 5 --precision bf16
"""

import argparse
import json
import time

import torch

from sagan.metrics.inception import FIDInceptionV3, InceptionFeatures


def measure(model: InceptionFeatures, images: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Best-of-`repeats` wall and CPU seconds of one call."""
    model(images)  # warm up: first-call allocations and kernel selection (cuDNN tries algorithms per shape)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        model(images)["pool3"].cpu()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per measurement (best one reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--resize", default="tf1", choices=["tf1", "clean"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-reference", action="store_true", help="time only sagan's path")
    parser.add_argument("--precision", choices=["bf16"], action="append", default=[],
                        help="also time sagan's path at this precision")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    state = FIDInceptionV3().state_dict()
    paths = {"sagan": InceptionFeatures(state, resize=args.resize, device=args.device)}
    for precision in args.precision:
        paths[f"sagan-{precision}"] = InceptionFeatures(state, resize=args.resize, device=args.device,
                                                        precision=precision)
    if not args.no_reference:
        paths["reference"] = InceptionFeatures(state, resize=args.resize, device=args.device, fast=False)
    generator = torch.Generator().manual_seed(0)
    for size in args.sizes:
        for batch in args.batch_sizes:
            images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)
            for name, model in paths.items():
                wall, cpu = measure(model, images, args.repeats)
                print(json.dumps({"path": name, "device": args.device, "size": size, "batch": batch,
                                  "threads": torch.get_num_threads(),
                                  "resize": args.resize, "images_per_s": round(batch / wall, 2),
                                  "images_per_cpu_s": round(batch / cpu, 2)}), flush=True)


if __name__ == "__main__":
    main()

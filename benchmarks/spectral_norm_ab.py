"""A/B of the multi-tensor spectral norm (`sagan.kernels.spectral_norm`) against the per-layer reference layer: two
trainings of one preset from one seed in one process, their eager steps timed interleaved (alternating which goes
first), so both see the same machine load.

    .venv/bin/python benchmarks/spectral_norm_ab.py --preset dcgan64 --batch-size 16 --steps 40

Prints one JSON line: the median seconds per step of each and their ratio (per-layer / multi-tensor).
"""

import argparse
import json
import statistics
import sys
import time

import torch

from sagan.benchmarks.train import synthetic_training
from sagan.config import preset
from sagan.kernels import spectral_norm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan64")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    cfg = preset(args.preset)
    cfg.train.batch_size = args.batch_size
    runs = {name: synthetic_training(cfg, torch.device("cpu")) for name in ("multi-tensor", "per-layer")}
    for net in (runs["per-layer"][0].G, runs["per-layer"][0].D):
        net.__dict__[spectral_norm.GROUP] = []  # an empty group: every layer runs the reference's power iteration
    seconds = {name: [] for name in runs}
    for i in range(args.warmup + args.steps):
        for name, (_, _, step) in list(runs.items())[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            step()
            if i >= args.warmup:
                seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(json.dumps({"preset": args.preset, "batch_size": args.batch_size, "steps": args.steps,
                      "threads": torch.get_num_threads()}
                     | {f"{name}_seconds_per_step": round(value, 4) for name, value in median.items()}
                     | {"per_layer_over_multi_tensor": round(median["per-layer"] / median["multi-tensor"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

from sagan.config import preset
from sagan.kernels import spectral_norm
from sagan.runtime import seed_everything
from sagan.training.gan import GANTraining


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan64")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    cfg = preset(args.preset)
    t, res, ch = cfg.train, cfg.data.resolution, cfg.data.channels
    t.batch_size = args.batch_size
    gans = {}
    for name in ("multi-tensor", "per-layer"):
        seed_everything(t.seed)
        gans[name] = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=1)
    for net in (gans["per-layer"].G, gans["per-layer"].D):
        net.__dict__[spectral_norm.GROUP] = []  # an empty group: every layer runs the reference's power iteration
    images = torch.randint(0, 256, (t.batch_size, ch, res, res), dtype=torch.uint8)
    labels = torch.randint(max(cfg.model.num_classes, 1), (t.batch_size,))
    seconds = {name: [] for name in gans}
    for i in range(args.warmup + args.steps):
        for name, gan in list(gans.items())[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            gan.train_step([(images, labels)] * t.n_dis, t.batch_size, 1, log=lambda line: print(line, file=sys.stderr))
            if i >= args.warmup:
                seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(json.dumps({"preset": args.preset, "batch_size": t.batch_size, "steps": args.steps,
                      "threads": torch.get_num_threads()}
                     | {f"{name}_seconds_per_step": round(value, 4) for name, value in median.items()}
                     | {"per_layer_over_multi_tensor": round(median["per-layer"] / median["multi-tensor"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

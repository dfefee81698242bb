"""Stress check of bit-exact resume: train the demo preset N steps straight, and N/2 then `--resume` to N, and compare
every floating-point tensor of the two checkpoints, over many repetitions with varying thread counts and background
load. Each run is a fresh `sagan train` process, as a user runs them.

    .venv/bin/python benchmarks/resume_stress.py [--repeats 50] [--steps 20] [--threads 1 2] [--seed 1]

Repetition i runs every process with OMP_NUM_THREADS = threads[i % len(threads)], and with a busy background process
per core on every other repetition. One JSON line per repetition, then a summary line: how many were bit-exact (all
must be). A resume at another thread count than the run's is a different case: sagan warns that it is not exact.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    exact = 0
    for i in range(args.repeats):
        threads, loaded = args.threads[i % len(args.threads)], i % 2 == 1
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, background_load(os.cpu_count() if loaded else 0):
            straight, halves = Path(tmp) / "straight", Path(tmp) / "halves"
            common = ["--seed", str(args.seed), "--no-progress"]
            train(threads, "--out", str(straight), "--steps", str(args.steps), *common)
            train(threads, "--out", str(halves), "--steps", str(args.steps // 2), *common)
            train(threads, "--resume", str(halves), "--steps", str(args.steps), "--no-progress")
            differing = compare(straight / "checkpoints" / "latest.pt", halves / "checkpoints" / "latest.pt")
        exact += not differing
        print(json.dumps({"repeat": i, "threads": threads, "background_load": loaded, "bit_exact": not differing,
                          "differing_tensors": differing[:5], "seconds": round(time.perf_counter() - start, 1)}),
              flush=True)
    print(json.dumps({"repeats": args.repeats, "bit_exact": exact, "steps": args.steps, "threads": args.threads}))
    return 0 if exact == args.repeats else 1


def train(threads: int, *args: str) -> None:
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-m", "sagan", "train", *args], env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)


def compare(a: Path, b: Path) -> list[str]:
    """The names of the floating-point tensors that differ between two checkpoints."""
    sa, sb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    return [name for name, x in flat(sa) if x.is_floating_point() and not torch.equal(x, dict(flat(sb))[name])]


def flat(state, prefix: str = ""):
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from flat(value, f"{prefix}/{key}" if prefix else str(key))


class background_load:
    """`n` busy processes for the duration of the `with` block."""

    def __init__(self, n: int):
        self.n, self.processes = n, []

    def __enter__(self):
        self.processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]

    def __exit__(self, *exc):
        for p in self.processes:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())

"""Cost of the metrics themselves, after feature extraction: FID (2048-d, eigenvalues of S1 S2), KID (100 subsets
of 1000), precision / recall (k = 3, 4096-d VGG16 fc2 size, blocked float64 distances) and SWD (descriptors of
N 64x64 images). Synthetic features (the cost does not depend on their values); one JSON line per metric with
wall and CPU seconds.

    .venv/bin/python benchmarks/metric_compute.py                 # N = 2000
    .venv/bin/python benchmarks/metric_compute.py --n 50000 --only pr --threads 16
"""

import argparse
import json
import time

import numpy as np
import torch

from sagan.metrics.fid import fid, gaussian_stats
from sagan.metrics.kid import kid
from sagan.metrics.precision_recall import precision_recall
from sagan.metrics.swd import SWDDescriptors, swd


def timed(name: str, fn, n: int) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    print(json.dumps({"metric": name, "n": n, "wall_s": round(time.perf_counter() - wall, 3),
                      "cpu_s": round(time.process_time() - cpu, 3), "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="samples per set (default 2000)")
    parser.add_argument("--only", choices=["fid", "kid", "pr", "swd"], action="append", help="metrics to time")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only or ["fid", "kid", "pr", "swd"])
    rng = np.random.default_rng(0)
    n = args.n
    if only & {"fid", "kid"}:
        a, b = rng.normal(size=(n, 2048)).astype(np.float32), rng.normal(size=(n, 2048)).astype(np.float32)
        if "fid" in only:
            stats_b = gaussian_stats(b)
            timed("fid (mean, cov, eigvals)", lambda: fid(a, stats_b), n)
        if "kid" in only:
            timed("kid (100 x 1000)", lambda: kid(a, b, subsets=100, subset_size=min(1000, n)), n)
    if "pr" in only:
        a, b = rng.normal(size=(n, 4096)).astype(np.float32), rng.normal(size=(n, 4096)).astype(np.float32)
        timed("precision_recall (k=3, 4096-d)", lambda: precision_recall(a, b), n)
    if "swd" in only:
        images = torch.from_numpy(rng.integers(0, 256, size=(n, 3, 64, 64), dtype=np.uint8))

        def run_swd():
            swd(SWDDescriptors(0)(images), SWDDescriptors(1)(images))

        timed("swd (64 px, descriptors + distance)", run_swd, n)


if __name__ == "__main__":
    main()

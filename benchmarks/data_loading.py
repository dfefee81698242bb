"""Images per second delivered to the training loop: decoding the JPEG files vs reading the preprocessing cache.

Both go through the loader `sagan train` uses (`sagan.training.batches.batch_loader`, batches of 64): the JPEG
folder with 2 decoding workers (data.workers), the cache file as the trainer reads it (in the main process) and
with 2 workers as well. For comparison it also times what the training step consumes (`sagan bench train`'s step
of the dcgan64 preset, fp32). Data: the CelebA sample in ../shared/data if present, else a synthetic folder of
178x218 JPEGs made here.

    .venv/bin/python benchmarks/data_loading.py                      # all of it
    .venv/bin/python benchmarks/data_loading.py --train-steps 0      # loading only
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sagan import config
from sagan.benchmarks import bench_train
from sagan.data import build, cached
from sagan.training.batches import batch_loader

SHARED_CELEBA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"


def synthetic_folder(folder: Path, count: int) -> Path:
    """`count` smooth 178x218 JPEGs (gradients and a disc, about as costly to decode as photos of faces)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:218, 0:178]
    for i in range(count):
        base = rng.integers(0, 256, 3)
        pixels = (base + 0.4 * x[..., None] + 0.3 * y[..., None]) % 256
        disc = (x - rng.integers(40, 140)) ** 2 + (y - rng.integers(40, 180)) ** 2 < rng.integers(400, 3000)
        pixels[disc] = rng.integers(0, 256, 3)
        pixels += rng.normal(0, 6, pixels.shape)  # sensor noise, so the JPEGs are not trivially compressible
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)
    return folder


def images_per_second(dataset, batch_size: int, workers: int, batches: int) -> float:
    """Batches per second times the batch size, after one untimed batch (which starts the workers)."""
    loader = batch_loader(dataset, batch_size, seed=0, start=0, workers=workers)
    next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="decoding processes of the JPEG path (default 2)")
    parser.add_argument("--jpeg-batches", type=int, default=20, help="timed batches from the JPEG files")
    parser.add_argument("--cache-batches", type=int, default=200, help="timed batches from the cache")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="use N synthetic JPEGs even when the CelebA sample is present")
    parser.add_argument("--train-steps", type=int, default=3, help="timed dcgan64 training steps (0: skip)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if SHARED_CELEBA.is_dir() and not args.synthetic:
            name, root, source = "celeba", SHARED_CELEBA, f"CelebA sample ({SHARED_CELEBA})"
        else:
            count = args.synthetic or 600
            name, root = "imagefolder", synthetic_folder(tmp / "images", count)
            source = f"{count} synthetic 178x218 JPEGs"
        dataset = build(name, root, resolution=args.resolution)
        print(f"data: {source}, {dataset.description}, {args.resolution}x{args.resolution}, batch {args.batch_size}")
        results = {"data": source, "resolution": args.resolution, "batch_size": args.batch_size}

        results["jpeg_images_per_s"] = images_per_second(dataset, args.batch_size, args.workers, args.jpeg_batches)
        print(f"JPEG files, {args.workers} workers:   {results['jpeg_images_per_s']:8.0f} images/s")

        start = time.perf_counter()
        cache = cached(dataset, {"name": name, "root": str(root), "resolution": args.resolution}, tmp / "cache.npy",
                       workers=args.workers, progress=False)
        results["prepare_images_per_s"] = len(cache) / (time.perf_counter() - start)
        print(f"building the cache, {args.workers} workers: {results['prepare_images_per_s']:6.0f} images/s "
              f"({cache.path.stat().st_size / 1e6:.1f} MB)")
        for workers in (0, args.workers):
            key = f"cache_images_per_s_{workers}_workers"
            results[key] = images_per_second(cache, args.batch_size, workers, args.cache_batches)
            how = "in the training process (as sagan train reads it)" if workers == 0 else f"{workers} workers"
            print(f"cache file, {how}: {results[key]:8.0f} images/s")

    if args.train_steps:
        cfg = config.preset("dcgan64")
        config.set_value(cfg, "train.batch_size", args.batch_size)
        config.set_value(cfg, "train.device", "cpu")
        step = bench_train(cfg, steps=args.train_steps, warmup=1)
        results["train_step_images_per_s"] = step["images_per_s"]
        print(f"dcgan64 fp32 training step consumes:   {step['images_per_s']:8.1f} images/s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

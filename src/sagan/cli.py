"""The `sagan` command: parses options, turns user mistakes into one-line errors (exit status 2), calls the library."""

import argparse
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import config as config_mod
from . import data
from .bench import bench_train, summary_line
from .errors import ConfigError, UserError
from .files import atomic_write_bytes
from .images import save_png
from .training import checkpoint, load_generator, train
from .training.runtime import resolve_device

# Flags that set one config field each; None means "not given" so presets and files keep their values.
TRAIN_FLAGS = {
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "resolution": "data.resolution",
    "seed": "train.seed",
    "device": "train.device",
    "amp": "train.amp",
    "data_root": "data.root",
}


class ArgumentParser(argparse.ArgumentParser):
    """Reports bad arguments as one line and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as e:
        print(f"sagan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sagan: interrupted", file=sys.stderr)
        return 130


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="sagan", description="Self-Attention GANs: train, generate, benchmark.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    p = commands.add_parser("train", help="train a SAGAN (default: the offline demo preset)")
    p.add_argument("--preset", help=f"starting config: {', '.join(config_mod.PRESETS)} (default demo)")
    p.add_argument("--config", help="YAML file of config overrides (same layout as RUN/config.yaml)")
    p.add_argument("--data", help="dataset name (embedded, imagefolder, celeba, mnist, fashion-mnist) or an image "
                                  "folder, which is short for --data imagefolder --data-root PATH")
    p.add_argument("--data-root", help="dataset folder")
    p.add_argument("--out", help="run directory (default runs/PRESET-TIMESTAMP)")
    p.add_argument("--steps", type=int, help="total generator steps of the run")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--resolution", type=int, help="image size: 32, 64, 128 or 256")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], help="mixed precision")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint (up to --steps)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config field, e.g. --set train.loss=wgan-gp (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run_train)

    p = commands.add_parser("generate", help="generate images from a checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="RUN|FILE", help="run directory or checkpoint file")
    p.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", required=True, metavar="DIR|FILE.npz",
                   help="folder for PNGs, or an .npz file for one uint8 NHWC array 'images' (+ 'labels')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class", dest="label", type=int, help="class to generate (conditional models)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run_generate)

    p = commands.add_parser("bench", help="measure speed")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=ArgumentParser)
    p = bench.add_parser("train", help="images/s, GFLOP/s and peak memory of training steps on synthetic data")
    p.add_argument("--preset", default="dcgan64")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"])
    p.add_argument("--device")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--compare-reference", action="store_true",
                   help="also time the reference implementation's step (benchmarks/reference_sagan.py), interleaved "
                        "with sagan's, and print the speed-up")
    p.add_argument("--peak-tflops", type=float,
                   help="the device's peak TFLOP/s at this precision, to report the fraction reached "
                        "(default with --amp bf16/fp16: the dense peak of known GPUs; none on the CPU)")
    p.set_defaults(run=run_bench_train)

    p = commands.add_parser("presets", help="list the presets")
    p.set_defaults(run=run_presets)
    return parser


def resolve_config(args: argparse.Namespace) -> config_mod.Config:
    """Preset, then --config file, then flags, then --set overrides."""
    cfg = config_mod.preset(args.preset or "demo")
    if getattr(args, "config", None):
        config_mod.update(cfg, config_mod.load_yaml(args.config), source=args.config)
    if getattr(args, "data", None):
        _set_data(cfg, args.data)
    _apply_flags(cfg, args, TRAIN_FLAGS)
    for assignment in args.set:
        config_mod.set_value(cfg, *config_mod.parse_assignment(assignment))
    config_mod.validate(cfg)
    return cfg


def _apply_flags(cfg: config_mod.Config, args: argparse.Namespace, flags) -> None:
    """Set the config field of every flag in `flags` (names of TRAIN_FLAGS) that was given."""
    for flag in flags:
        if getattr(args, flag, None) is not None:
            config_mod.set_value(cfg, TRAIN_FLAGS[flag], getattr(args, flag), source=f"--{flag.replace('_', '-')}")


def _set_data(cfg: config_mod.Config, value: str) -> None:
    if value in data.DATASETS:
        cfg.data.name = value
    elif Path(value).is_dir():
        cfg.data.name, cfg.data.root = "imagefolder", value
    else:
        raise ConfigError(f"--data: '{value}' is neither a dataset ({', '.join(data.DATASETS)}) nor an existing folder")


def run_train(args: argparse.Namespace) -> int:
    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in ("preset", "config", "data", "data_root", "out",
                                                            "batch_size", "resolution", "seed", "amp")
                 if getattr(args, name) is not None]
        if given or args.set:
            raise ConfigError(f"--resume continues a run with its recorded config; only --steps and --device may "
                              f"change (got {', '.join(given + ['--set'] * bool(args.set))})")
        run_dir = Path(args.resume)
        state = checkpoint.load(run_dir)
        cfg = config_mod.from_dict(state["config"])
        _apply_flags(cfg, args, ("steps", "device"))
        config_mod.validate(cfg)
        if state["step"] >= cfg.train.steps:
            print(f"sagan: {run_dir} is already at step {state['step']}; pass --steps N above it to train further")
            return 0
    else:
        cfg = resolve_config(args)
        run_dir = Path(args.out or f"runs/{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.dry_run:
        print(config_mod.to_yaml(cfg), end="")
        return 0
    record = train(cfg, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    print(f"sagan: step {record['step']}: D loss {record['d_loss']:.3f}, G loss {record['g_loss']:.3f}; "
          f"samples in {run_dir / 'samples'}, checkpoint {run_dir / 'checkpoints' / 'latest.pt'}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    if args.num <= 0 or args.batch_size <= 0:
        raise ConfigError("--num and --batch-size must be positive")
    G = load_generator(args.checkpoint, resolve_device(args.device))
    labels = G.make_labels(args.num, args.label, torch.Generator().manual_seed(args.seed))
    images = G.sample(args.num, seed=args.seed, labels=labels, batch_size=args.batch_size)
    out = Path(args.out)
    if out.suffix == ".npz":
        buffer = io.BytesIO()
        arrays = {"images": images} | ({"labels": labels.numpy()} if labels is not None else {})
        np.savez(buffer, **arrays)
        atomic_write_bytes(out, buffer.getvalue())
    else:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder (use a folder or a .npz file name)")
        for i, image in enumerate(images):
            save_png(image, out / f"{i:06d}.png")
    print(f"sagan: wrote {args.num} images to {out}")
    return 0


def run_bench_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(args)
    result = bench_train(cfg, steps=args.steps, warmup=args.warmup, compare_reference=args.compare_reference,
                         peak_tflops=args.peak_tflops)
    print(summary_line(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


def run_presets(args: argparse.Namespace) -> int:
    for name, values in config_mod.PRESETS.items():
        print(f"{name:10s} {values['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

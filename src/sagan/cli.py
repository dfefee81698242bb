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

from . import checkpoints
from . import config as config_mod
from . import data
from .bench import bench_train, summary_line
from .data import download
from .errors import ConfigError, UserError
from .files import atomic_write_bytes
from .images import save_png
from .metrics.evaluate import (BACKBONES, METRICS, Evaluator, array_batches, default_metrics, generator_batches,
                               parse_metrics)
from .metrics.stats import save_stats
from .training import checkpoint, distributed, evaluation, load_generator, train
from .training.runtime import resolve_device
from .viz import attention, curves, interpolate, sheets
from .viz.report import write_report

# Flags that set one config field each; None means "not given" so presets and files keep their values.
TRAIN_FLAGS = {
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "resolution": "data.resolution",
    "seed": "train.seed",
    "device": "train.device",
    "amp": "train.amp",
    "data_root": "data.root",
    "split": "data.split",
    "crop": "data.crop",
    "channels": "data.channels",
    "workers": "data.workers",
    "strict": "data.strict",
    "report": "train.report",
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
    p.add_argument("--data", help="dataset name (embedded, imagefolder, celeba, mnist, fashion-mnist, cifar10, "
                                  "lsun) or an image folder, which is short for --data imagefolder --data-root PATH")
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
    p.add_argument("--strict", action="store_const", const=True,
                   help="stop at an unreadable image instead of skipping it with a warning (data.strict)")
    p.add_argument("--no-report", dest="report", action="store_false", default=None,
                   help="do not refresh RUN/report.html at each checkpoint")
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
    p.add_argument("--breakdown", action="store_true",
                   help="CPU: profile one more step and report the shares of its time in matmul/convolution kernels, "
                        "softmax and the rest")
    p.set_defaults(run=run_bench_train)

    p = commands.add_parser("data", help="download, describe and prepare (cache) datasets")
    data_commands = p.add_subparsers(dest="data_command", required=True, parser_class=ArgumentParser)
    p = data_commands.add_parser("download", help="fetch cifar10, mnist or fashion-mnist and check its MD5s; "
                                                  "for the others, say where to get them and how to lay them out")
    add_dataset_arguments(p)
    p.add_argument("--mirror", action="append", metavar="URL",
                   help="base URL to fetch the files from instead of the official ones (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run_data_download)
    p = data_commands.add_parser("info", help="read a dataset and describe it: images, classes, item shape, source")
    add_dataset_arguments(p)
    p.add_argument("--split", help="train, valid, test or all (default train)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any data field, e.g. --set data.attribute=Smiling or data.labels=folders (repeatable)")
    p.set_defaults(run=run_data_info)

    p = data_commands.add_parser("prepare", help="decode an image-file dataset once into the memory-mapped cache "
                                                 "that training reads (sagan train does it on first use)")
    add_dataset_arguments(p)
    p.add_argument("--preset", help="take the data fields (resolution, crop, ...) of this preset")
    p.add_argument("--resolution", type=int, help="image size (default 32)")
    p.add_argument("--split", help="train, valid, test or all (default train)")
    p.add_argument("--crop", type=int, help="center-crop size before resizing (default: the dataset's)")
    p.add_argument("--channels", type=int, help="3 (RGB, default) or 1 (grayscale)")
    p.add_argument("--workers", type=int, help="decoding processes (default 2)")
    p.add_argument("--out", metavar="FILE.npy|DIR", help="the cache file, or a folder for it (default: the "
                   "automatic cache that sagan train reads, in $SAGAN_CACHE/datasets or ~/.cache/sagan/datasets)")
    p.add_argument("--strict", action="store_const", const=True,
                   help="stop at the first unreadable image instead of leaving it out with a warning")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any data field, e.g. --set data.attribute=Smiling (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run_data_prepare)

    p = commands.add_parser("visualize", help="pictures of a run: samples, real vs generated, attention maps, "
                                              "interpolations, training curves")
    figures = p.add_subparsers(dest="figure", required=True, parser_class=ArgumentParser)
    p = _figure_parser(figures, "samples", run_visualize_samples,
                       "a sample grid of the EMA generator (conditional: one row per class)")
    p.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--truncation", type=float, metavar="T", help="redraw latent entries with |z| > T")
    p = _figure_parser(figures, "compare", run_visualize_compare,
                       "real and generated images side by side in one labelled sheet")
    p.add_argument("--num", type=int, default=32, help="images of each kind (default 32)")
    _data_arguments(p)
    p = _figure_parser(figures, "attention", run_visualize_attention,
                       "attention maps of chosen query points over the image")
    p.add_argument("--layer", default="all", help="attention layer, e.g. attn16, or all (default)")
    p.add_argument("--queries", type=int, default=4, help="query points per image (default 4, at most 8)")
    p.add_argument("--num", type=int, default=8, help="number of images (default 8)")
    p.add_argument("--net", choices=["g", "d"], default="g",
                   help="g: the EMA generator on its samples (default); d: the discriminator on real images")
    _data_arguments(p)
    p = _figure_parser(figures, "interpolate", run_visualize_interpolate,
                       "latent interpolation rows (and class interpolation rows)")
    p.add_argument("--steps", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--pairs", type=int, default=4, help="rows (default 4)")
    p = figures.add_parser("curves", help="training curves from RUN/metrics.jsonl (needs the viz extra)")
    p.add_argument("run_dir", metavar="RUN", help="run directory")
    p.add_argument("--out", metavar="DIR", help="folder for the PNGs (default RUN/figures)")
    p.set_defaults(run=run_visualize_curves)

    p = commands.add_parser("report", help="write RUN/report.html, a page to explore the run in a browser")
    p.add_argument("run_dir", metavar="RUN", help="run directory")
    p.set_defaults(run=run_report)

    p = commands.add_parser("evaluate", help="score a checkpoint or images: FID, IS, KID, precision/recall, SWD")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", metavar="RUN|FILE", help="run directory or checkpoint file to sample from")
    source.add_argument("--images", metavar="DIR|FILE.npz", help="score these images instead of a checkpoint")
    p.add_argument("--metrics", help=f"comma-separated: {', '.join(METRICS)} (default fid,is; efficientnet-lite0: "
                                     f"fid,kid; swd: swd)")
    p.add_argument("--num-samples", type=int, default=50_000,
                   help="generated images (default 50000; --images scores all)")
    p.add_argument("--reference", metavar="DATASET|DIR|STATS.npz",
                   help="real images: a dataset name (with --data-root), an image folder, or a stats file")
    p.add_argument("--data-root", help="dataset folder for --reference DATASET")
    p.add_argument("--reference-samples", type=int, default=0,
                   help="real images for the statistics, a seeded random subset (default 0: all)")
    p.add_argument("--split", default="train", help="dataset split of --reference (default train)")
    p.add_argument("--crop", type=int, default=0, help="center-crop size before resizing (0: dataset default)")
    p.add_argument("--resolution", type=int, help="image size of the reference (default: the generator's / images')")
    p.add_argument("--backbone", choices=BACKBONES, default="inception",
                   help="network for fid / kid; efficientnet-lite0 and swd work offline, their numbers are not "
                        "comparable with published FID")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="FID Inception weight file (else $SAGAN_INCEPTION_WEIGHTS, the torch hub cache or a download)")
    p.add_argument("--vgg16-weights", metavar="PATH",
                   help="VGG16 weight file for pr / dc (else $SAGAN_VGG16_WEIGHTS, the torch hub cache or a download)")
    p.add_argument("--resize", choices=["tf1", "clean"], default="tf1",
                   help="Inception preprocessing: tf1 (TTUR / torch-fidelity, default) or clean (clean-fid)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="Inception arithmetic: fp32 (default, comparable) or bf16 (faster; recorded in the stats, "
                        "not comparable with published FID)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated latents")
    p.add_argument("--save-stats", metavar="FILE.npz", help="also write the reference statistics to this file")
    p.add_argument("--cache-dir",
                   help="reference statistics cache (default $SAGAN_CACHE/stats or ~/.cache/sagan/stats)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(run=run_evaluate)

    p = commands.add_parser("presets", help="list the presets")
    p.set_defaults(run=run_presets)
    return parser


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """The NAME and --data-root arguments of the `sagan data` commands."""
    p.add_argument("name", choices=list(data.DATASETS), metavar="NAME", help=", ".join(data.DATASETS))
    p.add_argument("--data-root", metavar="DIR", help="the dataset folder, as given to sagan train --data-root")


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
            got = ", ".join(given + ["--set"] * bool(args.set))
            raise ConfigError(f"--resume continues a run with its recorded config; only --steps, --device, --strict "
                              f"and --no-report may change (got {got})")
        run_dir = Path(args.resume)
        state = checkpoint.load(run_dir)
        cfg = config_mod.from_dict(state["config"])
        _apply_flags(cfg, args, ("steps", "device", "strict", "report"))
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
    on_checkpoint = _report_refresher(run_dir) if cfg.train.report else None
    # Under torchrun every process gets here and trains its share; otherwise this is a plain single-process run.
    with distributed.process_group(cfg.train.device):
        record = train(cfg, run_dir, resume=bool(args.resume), progress=not args.no_progress,
                       on_checkpoint=on_checkpoint)
        if not distributed.is_main():
            return 0
    print(f"sagan: step {record['step']}: D loss {record['d_loss']:.3f}, G loss {record['g_loss']:.3f}; "
          f"samples in {run_dir / 'samples'}, checkpoint {run_dir / 'checkpoints' / 'latest.pt'}")
    return 0


def _figure_parser(figures, name: str, run, help: str) -> ArgumentParser:
    """A `sagan visualize NAME` parser with the options every figure drawn from a checkpoint takes."""
    p = figures.add_parser(name, help=help)
    p.add_argument("--checkpoint", required=True, metavar="RUN|FILE", help="run directory or checkpoint file")
    p.add_argument("--out", metavar="DIR", help="folder for the PNGs (default RUN/figures)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run)
    return p


def _data_arguments(p: ArgumentParser) -> None:
    p.add_argument("--data", help="real images: dataset name or image folder (default: the run's dataset)")
    p.add_argument("--data-root", help="dataset folder (default: the run's)")


def _load_run(args: argparse.Namespace, discriminator: bool = False):
    """The checkpoint state, its config, the EMA generator and, if asked for, the discriminator (else None)."""
    state, device = checkpoints.load(args.checkpoint), resolve_device(args.device)
    G, D = checkpoints.networks(state, device) if discriminator else (checkpoints.generator(state, device), None)
    return state, config_mod.from_dict(state["config"]), G, D


def _real_images(args: argparse.Namespace, cfg: config_mod.Config, num: int):
    """`num` random images (NHWC uint8), their labels and the dataset's description, from --data or the run's
    dataset, at the run's resolution and channels."""
    if args.data:
        if args.data != cfg.data.name:
            cfg.data.root = None  # the run's folder belongs to the run's dataset
        _set_data(cfg, args.data)
    if args.data_root:
        cfg.data.root = args.data_root
    dataset = data.from_config(cfg.data)
    images, labels = sheets.real_images(dataset, num, args.seed)
    return images, labels if cfg.model.num_classes else None, dataset.description


def _write_figures(args: argparse.Namespace, figures: dict[str, np.ndarray | bytes]) -> int:
    """Write each figure as OUT/NAME.png (default OUT: the run's figures/ folder) and print the paths."""
    run_dir = checkpoints.run_dir(args.checkpoint if "checkpoint" in args else args.run_dir)
    out = Path(args.out) if args.out else run_dir / "figures"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    for name, figure in figures.items():
        path = out / f"{name}.png"
        if isinstance(figure, bytes):
            atomic_write_bytes(path, figure)
        else:
            save_png(figure, path)
        print(path)
    return 0


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")


def run_visualize_samples(args: argparse.Namespace) -> int:
    _positive(num=args.num)
    _, _, G, _ = _load_run(args)
    return _write_figures(args, {"samples": sheets.sample_grid(G, args.num, args.seed, args.truncation)})


def run_visualize_compare(args: argparse.Namespace) -> int:
    _positive(num=args.num)
    state, cfg, G, _ = _load_run(args)
    real, labels, description = _real_images(args, cfg, args.num)
    generated = G.sample(args.num, args.seed, labels)
    sheet = sheets.comparison(real, generated, f"real: {description}",
                              f"generated: EMA generator at step {state['step']:,}",
                              f"{checkpoints.run_dir(args.checkpoint).resolve().name}: real and generated images")
    return _write_figures(args, {"compare": sheet})


def run_visualize_attention(args: argparse.Namespace) -> int:
    _positive(num=args.num, queries=args.queries)
    state, cfg, G, D = _load_run(args, discriminator=args.net == "d")
    net = G if args.net == "g" else D
    if not attention.layers(net):
        raise ConfigError(f"the {'generator' if args.net == 'g' else 'discriminator'} of this run has no "
                          "self-attention layers")
    with attention.Recorder(net, args.layer) as recorder:
        if args.net == "g":
            images = G.sample(args.num, args.seed)
        else:
            images, labels, _ = _real_images(args, cfg, args.num)
            with torch.no_grad():
                device = next(D.parameters()).device
                D(attention.to_tensor(images).to(device), None if labels is None else labels.to(device))
    figures = {}
    for name, maps in recorder.maps.items():
        queries = attention.spread_queries(maps.feature_size, args.queries, args.seed)
        title = f"{args.net.upper()} {name}, step {state['step']:,}"
        figures[f"attention-{args.net.upper()}-{name}"] = attention.figure(images, maps, queries, title)
    return _write_figures(args, figures)


def run_visualize_interpolate(args: argparse.Namespace) -> int:
    _positive(steps=args.steps, pairs=args.pairs)
    _, _, G, _ = _load_run(args)
    figures = {"interpolate-latent": interpolate.latent_rows(G, args.pairs, args.steps, args.seed)}
    if G.num_classes > 1:
        pairs = interpolate.class_pairs(G.num_classes, args.pairs, args.seed)
        figures["interpolate-class"] = interpolate.class_rows(G, pairs, args.steps, args.seed)
        print("class interpolation rows: " + ", ".join(f"{a} -> {b}" for a, b in pairs))
    return _write_figures(args, figures)


def run_visualize_curves(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    figures = curves.figures(curves.read_metrics(run_dir), run_dir.resolve().name)
    return _write_figures(args, {f"curves-{name}": png for name, png in figures.items()})


def run_report(args: argparse.Namespace) -> int:
    print(write_report(args.run_dir))
    return 0


def _report_refresher(run_dir: Path):
    """Rewrites RUN/report.html after each checkpoint; a failure is a warning, never the end of training."""
    def refresh(checkpoint_path: Path) -> None:
        try:
            write_report(run_dir)
        except Exception as e:  # noqa: BLE001 - the report is a convenience, training goes on
            print(f"sagan: warning: report not refreshed: {type(e).__name__}: {e}", file=sys.stderr)
    return refresh


def run_generate(args: argparse.Namespace) -> int:
    _positive(num=args.num, batch_size=args.batch_size)
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
                         peak_tflops=args.peak_tflops, breakdown=args.breakdown)
    print(summary_line(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


def run_data_download(args: argparse.Namespace) -> int:
    if args.name not in download.SOURCES:
        raise ConfigError(f"{args.name} is not downloaded: it is read from files that come with sagan")
    if not download.SOURCES[args.name].files:
        print(download.instructions(args.name))
        return 0
    if args.data_root is None:
        raise ConfigError(f"--data-root: name the folder to download {args.name} into")
    download.download(args.name, args.data_root, tuple(args.mirror or ()) or None, progress=not args.no_progress)
    dataset = data.build(args.name, args.data_root, split="all")
    print(f"sagan: {args.data_root} holds {dataset.description}; train with "
          f"--data {args.name} --data-root {args.data_root}")
    return 0


def run_data_info(args: argparse.Namespace) -> int:
    cfg = config_mod.Config()
    for key, value, flag in [("data.name", args.name, "NAME"), ("data.root", args.data_root, "--data-root"),
                             ("data.split", args.split, "--split")]:
        if value is not None:
            config_mod.set_value(cfg, key, value, source=flag)
    for assignment in args.set:
        config_mod.set_value(cfg, *config_mod.parse_assignment(assignment))
    config_mod.validate(cfg)
    dataset = data.from_config(cfg.data)
    image, _ = dataset[0]
    print(dataset.description)
    print(f"images: {len(dataset)}, each {' x '.join(map(str, image.shape))} uint8 (channels x height x width)")
    print(f"classes: {dataset.num_classes}" + (f" (train conditionally with --set model.num_classes="
                                               f"{dataset.num_classes})" if dataset.num_classes else ""))
    if args.name in download.SOURCES:
        print(f"source: {download.SOURCES[args.name].homepage}")
    return 0


def run_data_prepare(args: argparse.Namespace) -> int:
    args.data = args.name
    cfg, out = resolve_config(args), args.out
    d = cfg.data
    dataset = data.from_config(d)
    if not isinstance(dataset, data.ImageFileDataset):
        raise ConfigError(f"{d.name} is read into memory as one array; only image-file datasets need a cache")
    cache = data.cached(dataset, config_mod.dataset_options(d), out or ("auto" if d.cache == "off" else d.cache),
                        workers=d.workers, strict=d.strict, progress=not args.no_progress)
    state = f"built ({cache.rebuilt_because})" if cache.rebuilt_because else "up to date"
    use = f"--set data.cache={cache.path}" if out else "data.cache=auto (the default)"
    print(f"sagan: {cache.path} {state}: {len(cache)} images of {d.resolution}x{d.resolution}x{d.channels}, "
          f"{cache.path.stat().st_size / 1e6:.1f} MB; sagan train with the same data options reads it with {use}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if not (args.checkpoint or args.images or args.save_stats):
        raise ConfigError("evaluate needs --checkpoint RUN or --images DIR|FILE.npz (or --save-stats FILE)")
    _positive(num_samples=args.num_samples, batch_size=args.batch_size)
    device = resolve_device(args.device)
    metrics = parse_metrics(args.metrics or default_metrics(args.backbone), args.backbone)
    G, images, step = None, None, None
    if args.checkpoint:
        state = checkpoints.load(args.checkpoint, device)
        step, G = state["step"], checkpoints.generator(state, device)
        resolution, channels, total = G.resolution, G.channels, args.num_samples
    elif args.images:
        images = evaluation.load_images(args.images)
        resolution, channels, total = images.shape[1], images.shape[-1], len(images)
    else:
        resolution, channels = args.resolution, 3
        if resolution is None:
            raise ConfigError("--save-stats without --checkpoint or --images needs --resolution")
    evaluator = Evaluator(metrics, args.backbone, device, args.inception_weights, args.vgg16_weights, args.resize,
                          args.batch_size, progress=not args.no_progress, precision=args.precision)
    reference = {}
    if evaluator.reference_extractors:
        if not args.reference:
            raise ConfigError(f"--metrics {','.join(metrics)} compare with real images: give --reference")
        reference = evaluation.reference_stats(
            evaluator, args.reference, data_root=args.data_root, split=args.split,
            resolution=args.resolution or resolution, channels=channels, crop=args.crop,
            max_images=args.reference_samples, batch_size=args.batch_size, cache_dir=args.cache_dir)
    if args.save_stats:
        save_stats(args.save_stats, reference)
        print(f"sagan: wrote reference statistics ({', '.join(reference) or 'none needed'}) to {args.save_stats}")
    if G is None and images is None:
        return 0
    batches = (generator_batches(G, total, args.seed, args.batch_size) if G is not None
               else array_batches(images, args.batch_size))
    results = evaluator(batches, total, reference)
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:{width}s}  {value:.6g}")
    if args.backbone != "inception" or "swd" in results:
        print("(fd_*, kid_* of other networks and swd are not comparable with published FID / KID)")
    if args.precision != "fp32":
        print(f"(Inception in {args.precision}: not comparable with published FID / IS / KID)")
    record = {"step": step, "num_samples": total, "backbone": args.backbone, "precision": args.precision,
              "reference": args.reference, "source": args.checkpoint or args.images} | results
    print(json.dumps(record))
    run_dir = checkpoints.run_dir(args.checkpoint) if args.checkpoint else None
    if run_dir is not None and (run_dir / "config.yaml").is_file():
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step} | {f"eval/{k}": v for k, v in results.items()}
                               | {"eval/num_samples": total}) + "\n")
    return 0


def run_presets(args: argparse.Namespace) -> int:
    for name, values in config_mod.PRESETS.items():
        print(f"{name:10s} {values['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `sagan` command: parses options, calls one `sagan.api` function per command, prints the result. A user
mistake (`UserError`) becomes one line and exit status 2."""

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from . import api, checkpoints, data
from . import config as config_mod
from .errors import ConfigError, RunError, UserError
from .exporting import FORMATS as EXPORT_FORMATS
from .metrics.evaluate import BACKBONES, METRICS

# Flags that set one config field each (argparse dest -> config key); a flag left out keeps the preset's value.
CONFIG_FLAGS = {
    "steps": "train.steps",
    "max_minutes": "train.max_minutes",
    "init_from": "train.init_from",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "train.device",
    "amp": "train.amp",
    "report": "train.report",
    "data_root": "data.root",
    "resolution": "data.resolution",
    "split": "data.split",
    "crop": "data.crop",
    "channels": "data.channels",
    "workers": "data.workers",
    "strict": "data.strict",
}


class ArgumentParser(argparse.ArgumentParser):
    """Reports bad arguments as one line and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = lambda message, *args: f"sagan: warning: {message}\n"
    try:
        return args.run(args) or 0
    except UserError as e:
        print(f"sagan: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:  # a run stopped: diverged, a write failed, a signal (its checkpoint written)
        print(f"sagan: {e}", file=sys.stderr)
        return e.status
    except OSError as e:  # a path given that cannot be read or written: a file in the way, no such folder, no room
        print(f"sagan: error: {e.filename or 'a file'}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sagan: interrupted", file=sys.stderr)
        return 130


def resolve_config(args: argparse.Namespace, scope: str = "run", **fixed) -> config_mod.Config:
    """The one config resolution of a command: --preset, --config, the CONFIG_FLAGS given, --data, `fixed` (config
    key -> value) and --set, on the recorded config with --resume."""
    flags = {key: getattr(args, dest) for dest, key in CONFIG_FLAGS.items() if getattr(args, dest, None) is not None}
    if getattr(args, "data", None):
        flags = config_mod.data_flags(args.data) | flags
    return api.resolve_config(getattr(args, "preset", None), getattr(args, "config", None), flags | fixed,
                              args.set, resume=getattr(args, "resume", None), scope=scope)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="sagan", description="Self-Attention GANs: train, evaluate, see, benchmark.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    p = commands.add_parser("train", help="train a SAGAN (default: the offline demo preset)")
    p.add_argument("--preset", help=f"starting config: {', '.join(config_mod.PRESETS)} (default: paper with "
                                    f"--data, else demo)")
    p.add_argument("--config", help="YAML file of config overrides (same layout as RUN/config.yaml)")
    p.add_argument("--data", help=f"dataset name ({', '.join(data.DATASETS)}) or an image folder, which is short "
                                  f"for --data imagefolder --data-root PATH")
    p.add_argument("--data-root", help="dataset folder")
    p.add_argument("--out", help="run directory (default runs/PRESET-TIMESTAMP)")
    p.add_argument("--steps", type=int, help="total generator steps of the run")
    p.add_argument("--max-minutes", type=float, help="stop the run after this much training time, its resumes "
                   "included, as at its last step (train.max_minutes)")
    p.add_argument("--init-from", metavar="RUN|CHECKPOINT", help="start from another run's G, D and EMA weights "
                   "(new data or config allowed; fresh optimisers, step 0; train.init_from)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--resolution", type=int, help="image size: 32, 64, 128 or 256")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", help="mixed precision: none, bf16 or fp16")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint with its recorded "
                   f"config; only {', '.join(config_mod.resumable_keys())} may change")
    _set_argument(p, "any config field, e.g. --set train.loss=wgan-gp")
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
    p.add_argument("--truncation", type=float, metavar="T", help="redraw latent entries with |z| > T")
    p.add_argument("--grid", action="store_true", help="one sheet, OUT/grid.png, instead of a PNG per image")
    p.add_argument("--interpolate", type=int, nargs=2, metavar=("SEED_A", "SEED_B"),
                   help="frames along the path from seed A's latent to seed B's (and OUT/interpolation.gif)")
    p.add_argument("--frames", type=int, default=8, help="images of an --interpolate path (default 8)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    _generator_argument(p)
    p.set_defaults(run=run_generate)

    p = commands.add_parser("export", help="the EMA generator as ONNX, TorchScript or safetensors, for use "
                                           "without sagan")
    p.add_argument("checkpoint", metavar="RUN|FILE", help="run directory or checkpoint file")
    p.add_argument("--format", dest="fmt", required=True, choices=list(EXPORT_FORMATS))
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the file and generator.json")
    p.set_defaults(run=lambda args: print("\n".join(map(str, api.export(args.checkpoint, args.fmt, args.out)))))

    p = commands.add_parser("evaluate", help="score a checkpoint or images: FID, IS, KID, precision/recall, SWD")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", metavar="RUN|FILE", help="run directory or checkpoint file to sample from")
    source.add_argument("--images", metavar="DIR|FILE.npz", help="score these images instead of a checkpoint")
    p.add_argument("--metrics", help=f"comma-separated: {', '.join(METRICS)} (default fid,is; efficientnet-lite0: "
                                     f"fid,kid; swd: swd)")
    p.add_argument("--num-samples", type=int, default=50_000,
                   help="generated images (default 50000; --images scores all)")
    p.add_argument("--reference", metavar="DATASET|DIR|STATS.npz",
                   help="real images: a dataset name (with --data-root), an image folder, or a stats file "
                        "(default for --checkpoint: the run's own data)")
    p.add_argument("--data-root", help="dataset folder for --reference DATASET (or to find the run's data)")
    p.add_argument("--reference-samples", type=int, default=0,
                   help="real images for the statistics, a seeded random subset (default 0: all)")
    p.add_argument("--split", default="auto", help="split of the real images (default auto: the held-out test part "
                   "where there is one: the run's data.test_fraction part or the dataset's test split)")
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
    _generator_argument(p)
    p.set_defaults(run=run_evaluate)

    p = commands.add_parser("visualize", help="pictures of a run: samples, real vs generated, attention maps, "
                                              "D saliency, interpolations, training curves")
    figures = p.add_subparsers(dest="figure", required=True, parser_class=ArgumentParser)
    p = _figure_parser(figures, "samples", "a sample grid of the EMA generator (conditional: one row per class)")
    p.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--truncation", type=float, metavar="T", help="redraw latent entries with |z| > T")
    p = _figure_parser(figures, "compare", "real and generated images side by side in one labelled sheet")
    p.add_argument("--num", type=int, default=32, help="images of each kind (default 32)")
    _real_data_arguments(p)
    p = _figure_parser(figures, "attention", "attention maps of chosen query points over the image")
    p.add_argument("--layer", default="all", help="attention layer, e.g. attn16, or all (default)")
    p.add_argument("--queries", type=int, default=4, help="query points per image (default 4, at most 8)")
    p.add_argument("--num", type=int, default=8, help="number of images (default 8)")
    p.add_argument("--net", choices=["g", "d"], default="g",
                   help="g: the EMA generator on its samples (default); d: the discriminator on real images")
    _real_data_arguments(p)
    p = _figure_parser(figures, "saliency", "where D's decision comes from: its input gradient and Grad-CAM")
    p.add_argument("--num", type=int, default=8, help="number of images (default 8)")
    p.add_argument("--block", help="D block for Grad-CAM, e.g. block8 (default: the last with 8x8 outputs or more)")
    p.add_argument("--class", dest="target_class", type=int, metavar="C",
                   help="conditional D: the projection term of class C instead of the whole output")
    p.add_argument("--images", choices=["real", "generated"], default="real",
                   help="real images of the run's (or --data) dataset (default), or the EMA generator's")
    _real_data_arguments(p)
    p = _figure_parser(figures, "interpolate", "latent interpolation rows (and class interpolation rows)")
    p.add_argument("--steps", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--pairs", type=int, default=4, help="rows (default 4)")
    p = figures.add_parser("curves", help="training curves from RUN/metrics.jsonl (needs the viz extra)")
    p.add_argument("source", metavar="RUN", help="run directory")
    p.add_argument("--out", metavar="DIR", help="folder for the PNGs (default RUN/figures)")
    p.set_defaults(run=run_visualize)

    p = commands.add_parser("app", help="a local web page to sample, walk between seeds and see attention maps")
    p.add_argument("run_dir", metavar="RUN|FILE", help="run directory or checkpoint file")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free one)")
    p.set_defaults(run=run_app)

    p = commands.add_parser("report", help="write RUN/report.html, a page to explore the run in a browser")
    p.add_argument("run_dir", metavar="RUN", help="run directory")
    p.set_defaults(run=lambda args: print(api.report(args.run_dir)))

    p = commands.add_parser("bench", help="measure speed")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=ArgumentParser)
    p = bench.add_parser("train", help="images/s, GFLOP/s and peak memory of training steps on synthetic data")
    p.add_argument("--preset", default="dcgan64")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", dest="bench_steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--amp", help="mixed precision: none, bf16 or fp16")
    p.add_argument("--device")
    _set_argument(p, "any config field, e.g. --set train.kernels=plain")
    p.add_argument("--compare-reference", action="store_true",
                   help="also time the reference implementation's step (sagan.benchmarks.reference), interleaved with "
                        "sagan's, and print the speed-up")
    p.add_argument("--peak-tflops", type=float,
                   help="the device's peak TFLOP/s at this precision, to report the fraction reached "
                        "(default with --amp bf16/fp16: the dense peak of known GPUs; none on the CPU)")
    p.add_argument("--breakdown", action="store_true",
                   help="CPU: profile one more step and report the shares of its time in matmul/convolution kernels, "
                        "softmax and the rest")
    p.add_argument("--ops", action="store_true",
                   help="count the operators one step dispatches (those running a kernel, the views) and print the "
                        "most frequent")
    p.set_defaults(run=run_bench_train)

    p = commands.add_parser("data", help="download, describe and prepare (cache) datasets")
    data_commands = p.add_subparsers(dest="data_command", required=True, parser_class=ArgumentParser)
    p = _dataset_parser(data_commands, "download", "fetch cifar10, mnist or fashion-mnist and check its MD5s; for "
                                                   "the others, say where to get them and how to lay them out")
    p.add_argument("--mirror", action="append", default=[], metavar="URL",
                   help="base URL to fetch the files from instead of the official ones (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run_data_download)
    p = _dataset_parser(data_commands, "info", "read a dataset and describe it: images, classes, item shape, source")
    p.add_argument("--split", help="train, valid, test or all (default train)")
    _set_argument(p, "any data field, e.g. --set data.attribute=Smiling")
    p.set_defaults(run=run_data_info)
    p = _dataset_parser(data_commands, "prepare", "decode an image-file dataset once into the memory-mapped cache "
                                                  "that training reads (sagan train does it on first use)")
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
    _set_argument(p, "any data field, e.g. --set data.attribute=Smiling")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run_data_prepare)

    p = commands.add_parser("presets", help="list the presets")
    p.set_defaults(run=run_presets)

    from .experiments import packaged
    p = commands.add_parser("compare", help="train variants x seeds under one protocol; write the table and a page")
    p.add_argument("spec", metavar="SPEC", help=f"a spec YAML file, or a packaged spec: {', '.join(packaged())}")
    p.add_argument("--out", required=True, metavar="DIR", help="the comparison's folder (a second call resumes it)")
    p.add_argument("--data", help="dataset name or image folder for every run (replaces the spec's)")
    p.add_argument("--data-root", metavar="DIR", help="the dataset folder for every run")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N for every run")
    p.add_argument("--seeds", type=_integers, metavar="LIST", help="seeds instead of the spec's, e.g. 0,1,2")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="G steps per run instead of the spec's budget")
    budget.add_argument("--epochs", type=int, help="epochs per run instead of the spec's budget")
    p.add_argument("--max-minutes", type=float, metavar="M", help="minutes of training per run (with or without "
                   "--steps / --epochs) instead of the spec's budget")
    _set_argument(p, "any config field for every run, e.g. --set eval.num_samples=2000")
    p.add_argument("--dry-run", action="store_true", help="check every run's config, list the runs and exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(run=run_compare)
    return parser


def _integers(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,2, got '{text}'") from None


def _set_argument(p: ArgumentParser, example: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=f"{example} (repeatable)")


def _generator_argument(p: ArgumentParser) -> None:
    p.add_argument("--generator", choices=list(checkpoints.GENERATORS), default="ema",
                   help="the checkpoint's EMA generator (default), or raw: the one the optimiser trained")


def _dataset_parser(commands, name: str, help: str) -> ArgumentParser:
    """A `sagan data NAME` parser: the dataset and its folder."""
    p = commands.add_parser(name, help=help)
    p.add_argument("name", choices=list(data.DATASETS), metavar="NAME", help=", ".join(data.DATASETS))
    p.add_argument("--data-root", metavar="DIR", help="the dataset folder, as given to sagan train --data-root")
    return p


def _figure_parser(figures, name: str, help: str) -> ArgumentParser:
    """A `sagan visualize NAME` parser with the options of every figure drawn from a checkpoint."""
    p = figures.add_parser(name, help=help)
    p.add_argument("--checkpoint", dest="source", required=True, metavar="RUN|FILE",
                   help="run directory or checkpoint file")
    p.add_argument("--out", metavar="DIR", help="folder for the PNGs (default RUN/figures)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run_visualize)
    return p


def _real_data_arguments(p: ArgumentParser) -> None:
    p.add_argument("--data", dest="data_name", help="real images: dataset name or image folder (default: the run's)")
    p.add_argument("--data-root", help="dataset folder (default: the run's)")


def run_train(args: argparse.Namespace) -> int:
    if args.resume and args.out:
        raise ConfigError("--resume RUN continues RUN in place: --out does not apply")
    cfg = resolve_config(args)
    if args.dry_run:
        api.check_train(cfg, args.resume or args.out, resume=bool(args.resume))
        print(config_mod.to_yaml(cfg), end="")
        return 0
    result = api.train(cfg, args.resume or args.out, resume=bool(args.resume), progress=not args.no_progress)
    if not result.main:
        return 0
    if not result.record:
        print(f"sagan: {result.run_dir} is already at step {result.step}; raise --steps (or --max-minutes) to train "
              "further")
        return 0
    r = result.record
    # A last log interval left out whole by train.on_nonfinite=rollback has no losses.
    losses = ", ".join(f"{name} loss {r[key]:.3f}" for name, key in (("D", "d_loss"), ("G", "g_loss")) if key in r)
    print(f"sagan: step {r['step']}{': ' + losses if losses else ''}; samples in {result.run_dir / 'samples'}, "
          f"checkpoint {result.run_dir / 'checkpoints' / 'latest.pt'}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    if args.frames != 8 and not args.interpolate:
        raise ConfigError("--frames: applies only with --interpolate")
    if args.num != 64 and args.interpolate:
        raise ConfigError("--num: an interpolation has --frames images, not --num")
    images, _ = api.generate(args.checkpoint, args.num, seed=args.seed, label=args.label, truncation=args.truncation,
                             grid=args.grid, interpolate=args.interpolate, frames=args.frames,
                             batch_size=args.batch_size, device=args.device, out=args.out, generator=args.generator)
    print(f"sagan: wrote {len(images)} images to {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    options = {name: getattr(args, name) for name in (
        "metrics", "num_samples", "reference", "data_root", "reference_samples", "split", "crop", "resolution",
        "backbone", "inception_weights", "vgg16_weights", "resize", "precision", "batch_size", "device", "seed",
        "cache_dir", "generator")}
    result = api.evaluate(args.checkpoint, args.images, save_stats_to=args.save_stats,
                          progress=not args.no_progress, record=True, **options)
    if args.save_stats:
        print(f"sagan: wrote the reference statistics to {args.save_stats}")
    if not result:
        return 0
    results = {k: v for k, v in result.items() if k not in api.EVALUATION_FIELDS}
    if result["against"]:
        print(f"against: {result['against']}")
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:{width}s}  {value:.6g}")
    if args.backbone != "inception" or "swd" in results:
        print("(fd_*, kid_* of other networks and swd are not comparable with published FID / KID)")
    if args.precision != "fp32":
        print(f"(Inception in {args.precision}: not comparable with published FID / IS / KID)")
    print(json.dumps(result))
    return 0


def run_app(args: argparse.Namespace) -> int:
    server = api.app(args.run_dir, host=args.host, port=args.port)
    print(f"sagan: serving {args.run_dir} at {server.address}; Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def run_visualize(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("command", "figure", "run", "source", "out")}
    for path in api.visualize(args.figure, args.source, out=args.out, **options):
        print(path)
    return 0


def run_bench_train(args: argparse.Namespace) -> int:
    from .benchmarks import summary_line

    result = api.bench(resolve_config(args, scope="synthetic"), steps=args.bench_steps, warmup=args.warmup,
                       compare_reference=args.compare_reference, peak_tflops=args.peak_tflops,
                       breakdown=args.breakdown, ops=args.ops)
    print(summary_line(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


def run_data_download(args: argparse.Namespace) -> int:
    description = api.download_data(args.name, args.data_root, args.mirror, progress=not args.no_progress)
    print(f"sagan: {args.data_root} holds {description}; train with --data {args.name} --data-root {args.data_root}"
          if args.data_root else description)
    return 0


def run_data_info(args: argparse.Namespace) -> int:
    info = api.describe_data(resolve_config(args, scope="data", **{"data.name": args.name}))
    print(info["description"])
    print(f"images: {info['images']}, each {' x '.join(map(str, info['shape']))} uint8 (channels x height x width)")
    print(f"classes: {info['classes']}" + (f" (train conditionally with --set model.num_classes={info['classes']})"
                                           if info["classes"] else ""))
    if info["homepage"]:
        print(f"source: {info['homepage']}")
    return 0


def run_data_prepare(args: argparse.Namespace) -> int:
    cfg = resolve_config(args, scope="data", **{"data.name": args.name})
    cache = api.prepare_data(cfg, args.out, progress=not args.no_progress)
    d = cfg.data
    state = f"built ({cache.rebuilt_because})" if cache.rebuilt_because else "up to date"
    use = f"--set data.cache={cache.path}" if args.out else "data.cache=auto (the default)"
    print(f"sagan: {cache.path} {state}: {len(cache)} images of {d.resolution}x{d.resolution}x{d.channels}, "
          f"{cache.path.stat().st_size / 1e6:.1f} MB; sagan train with the same data options reads it with {use}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    overrides = dict(config_mod.data_flags(args.data)) if args.data else {}
    overrides |= {key: value for key, value in (("data.root", args.data_root), ("train.device", args.device))
                  if value is not None}
    overrides |= dict(config_mod.parse_assignment(a) for a in args.set)
    budget = {key: value for key, value in (("steps", args.steps), ("epochs", args.epochs),
                                            ("minutes", args.max_minutes)) if value is not None}
    spec = api.load_comparison(args.spec, overrides=overrides, seeds=args.seeds, budget=budget or None)
    if args.dry_run:
        api.check_compare(spec, args.out)
        print(f"{spec.name}: {len(spec.variants)} variants x {len(spec.seeds)} seeds = {len(spec.runs)} runs, "
              f"budget {spec.source['budget']}, each config valid")
        for run in spec.runs:
            m = run.config.model
            print(f"  {args.out}/runs/{run.name}: preset {run.config.preset}, {m.arch}, attention G {m.g_attention} "
                  f"D {m.d_attention}")
        return 0
    page = api.compare(spec, args.out, progress=not args.no_progress, log=lambda line: print(f"sagan: {line}"))
    print(f"sagan: wrote {page.parent / 'results.md'}, {page.parent / 'results.csv'} and {page}")
    return 0


def run_presets(args: argparse.Namespace) -> int:
    for name, values in config_mod.PRESETS.items():
        print(f"{name:10s} {values['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

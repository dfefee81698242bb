"""Transfer benchmark: a generator trained on a source dataset, fine-tuned onto a target dataset, against training
from scratch at equal steps, as one `sagan compare` (variants scratch / fine-tune / fine-tune with FreezeD).

    .venv/bin/python benchmarks/transfer.py --out runs/transfer [--source fashion-mnist] [--target mnist]
        [--data ../shared/data] [--source-steps 1500] [--steps 500] [--seeds 0,1] [--freeze-d 2]

The source run trains the demo preset's networks on the source dataset (skipped if OUT/source is done). Every
variant then trains `--steps` on the target's train split and is scored with FD / KID of the offline
EfficientNet-Lite0 (1,000 samples) against 2,000 images of the target's test split. Prints OUT/results.md.
"""

import argparse
import sys
from pathlib import Path

import yaml

import sagan
from sagan import checkpoints
from sagan.files import atomic_write_text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--source", default="fashion-mnist")
    parser.add_argument("--target", default="mnist")
    parser.add_argument("--source-steps", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--freeze-d", type=int, default=2)
    args = parser.parse_args()

    source = args.out / "source"
    flags = {"data.name": args.source, "data.root": str(args.data / args.source), "train.steps": args.source_steps,
             "train.report": False}
    cfg = sagan.resolve_config("demo", flags=flags)
    done = (checkpoints.checkpoint_dir(source) / checkpoints.LATEST).is_file()
    if not done or checkpoints.load(source)["step"] < args.source_steps:
        sagan.train(cfg, source, resume=done)
    spec = {
        "description": f"{args.source} -> {args.target}: fine-tuning against training from scratch at equal steps",
        "base": {"preset": "demo", "data": {"name": args.target, "root": str(args.data / args.target)},
                 "train": {"report": False}},
        "variants": {"scratch": {}, "fine-tune": {"train.init_from": str(source)},
                     f"fine-tune-freezed{args.freeze_d}": {"train.init_from": str(source),
                                                           "train.freeze_d": args.freeze_d}},
        "seeds": [int(s) for s in args.seeds.split(",")],
        "budget": {"steps": args.steps},
        "eval": {"metrics": ["fid", "kid"], "backbone": "efficientnet-lite0", "num_samples": 1000,
                 "reference_samples": 2000},
    }
    path = args.out / "transfer.yaml"  # the spec as a file: it names the comparison
    atomic_write_text(path, yaml.safe_dump(spec, sort_keys=False))
    page = sagan.compare(path, args.out / "compare")
    print((page.parent / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

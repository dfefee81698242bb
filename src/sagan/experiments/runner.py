"""`sagan compare`: every run of a spec (variants x seeds) trained as an ordinary run directory under OUT/runs,
evaluated with the spec's protocol, then the table (results.csv, results.md) and the page (index.html).

Resumable: a run whose `compare.json` records its config is skipped; a run with a checkpoint continues from it
(its config must be the spec's, but for the fields a resume may change: a larger budget extends it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .. import checkpoints
from ..config import check_resumable, from_dict, to_dict
from ..errors import ConfigError
from ..evaluation import evaluate
from ..files import atomic_write_text
from ..images import save_png
from ..metrics.evaluate import headlines
from ..models import attention_layers
from ..training.trainer import preflight, train
from ..viz import curves, figures, sheets
from ..viz.report import refresher
from . import page, results
from .results import DONE, final_evaluation
from .spec import Run, Spec

GRID_SEED = 0  # the latents of every variant's sample grid on the page


def compare(spec: Spec, out: str | Path, *, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Train and evaluate every run of `spec` (see `spec.load`) under `out`, then write the table and the page;
    returns index.html."""
    out = Path(out)
    check(spec, out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "spec.yaml", yaml.safe_dump(spec.source, sort_keys=False))
    for i, run in enumerate(spec.runs, 1):
        run_dir = out / "runs" / run.name
        if finished(run_dir, run):
            log(f"[{i}/{len(spec.runs)}] {run.name}: done, skipped")
            continue
        resume = (checkpoints.checkpoint_dir(run_dir) / checkpoints.LATEST).is_file()
        log(f"[{i}/{len(spec.runs)}] {run.name}: {'resuming' if resume else 'training'}")
        train_and_evaluate(run, run_dir, resume, progress)
    rows = results.collect(spec, out)
    results.write_csv(rows, out / "results.csv")
    results.write_markdown(spec, rows, out / "results.md")
    page.write(spec, rows, out, draw_figures(spec, out))
    return out / "index.html"


def check(spec: Spec, out: Path) -> None:
    """What `compare` checks before it writes anything: OUT, and every run as `train` checks it (each dataset's
    files listed once)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    if (checkpoints.checkpoint_dir(out) / checkpoints.LATEST).exists():
        raise ConfigError(f"--out {out} holds a training run; a comparison needs a folder of its own")
    listed = {}
    for run in spec.runs:
        run_dir, key = out / "runs" / run.name, repr(run.config.data)
        resume = (checkpoints.checkpoint_dir(run_dir) / checkpoints.LATEST).is_file()  # as `compare` decides
        listed[key] = preflight(run.config, run_dir, resume, dataset=listed.get(key))


def config_record(run: Run) -> dict[str, Any]:
    """What a run's entry in the table depends on: its whole config (seed, budget and evaluation included)."""
    return json.loads(json.dumps(to_dict(run.config)))  # as read back from JSON: lists, not tuples


def finished(run_dir: Path, run: Run) -> bool:
    """Whether the run's DONE marker records its config; read as a config, so fields added since take defaults."""
    path = run_dir / DONE
    return path.is_file() and from_dict(json.loads(path.read_text())["config"]) == from_dict(config_record(run))


def train_and_evaluate(run: Run, run_dir: Path, resume: bool, progress: bool) -> None:
    if resume:
        recorded = from_dict(checkpoints.load(run_dir)["config"])
        check_resumable(recorded, run.config, source=f"{run_dir} holds another run")
    train(run.config, run_dir, resume=resume, progress=progress,
          on_checkpoint=refresher(run_dir) if run.config.train.report else None)
    state = checkpoints.load(run_dir)
    e = run.config.eval
    if final_evaluation(curves.read_metrics(run_dir), state["step"], headlines(e.metrics, e.backbone)) is None:
        # Killed during the final evaluation, after the last checkpoint: evaluate that checkpoint as training would.
        d = run.config.data
        evaluate(run_dir, metrics=e.metrics, num_samples=e.num_samples, reference=e.reference, data_root=d.root,
                 crop=d.crop, reference_samples=e.reference_samples, split=e.split, backbone=e.backbone,
                 inception_weights=e.inception_weights, vgg16_weights=e.vgg16_weights, batch_size=e.batch_size,
                 device=run.config.train.device, seed=run.config.train.seed, progress=progress, record=True)
    G, D = checkpoints.networks(state)
    done = {"variant": run.variant, "seed": run.seed, "step": state["step"], "config": config_record(run),
            "g_params": sum(p.numel() for p in G.parameters()), "d_params": sum(p.numel() for p in D.parameters())}
    atomic_write_text(run_dir / DONE, json.dumps(done, indent=1))


def draw_figures(spec: Spec, out: Path) -> dict[str, dict[str, str]]:
    """For each variant, its first seed's final sample grid (the same latents for every variant) and, where it has
    attention, its attention maps: {variant: {"grid": path, "attention": path}} relative to `out`."""
    drawn = {}
    for variant in spec.variants:
        run = next(r for r in spec.runs if r.variant == variant)
        run_dir = out / "runs" / run.name
        G, D = checkpoints.networks(checkpoints.load(run_dir))
        paths = {"grid": f"figures/{variant}-samples.png"}
        save_png(sheets.sample_grid(G, 36, GRID_SEED), out / paths["grid"])
        net = "g" if attention_layers(G) else "d" if attention_layers(D) else None
        if net:  # G's maps on its samples, or D's on real images when only D attends
            maps = figures.attention_maps(run_dir, queries=3, num=3, net=net, seed=GRID_SEED, device="cpu")
            figures.write({f"{variant}-attention": next(iter(maps.values()))}, out / "figures")
            paths["attention"] = f"figures/{variant}-attention.png"
        drawn[variant] = paths
    return drawn

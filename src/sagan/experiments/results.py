"""The comparison's table: one row per run read from its own records (metrics.jsonl, compare.json), and the mean
+- std over seeds per variant with the best of each column marked."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..files import atomic_write_text
from ..metrics.evaluate import HIGHER_IS_BETTER, headlines
from ..viz import curves
from .spec import Spec

DONE = "compare.json"  # in a run directory: trained and evaluated under the config it records
# Summary columns where a larger value is better; the metrics follow HIGHER_IS_BETTER.
FASTER = ("steps", "images_per_s")


def metric_names(spec: Spec) -> list[str]:
    e = spec.runs[0].config.eval
    return headlines(e.metrics, e.backbone)


def final_evaluation(records: list[dict], step: int, names: list[str]) -> dict | None:
    """The last record at `step` holding every `eval/NAME`, if any."""
    found = [r for r in records if r["step"] == step and all(f"eval/{n}" in r for n in names)]
    return found[-1] if found else None


def collect(spec: Spec, out: Path) -> list[dict]:
    """One row per run: its variant, seed, the step it reached, its training seconds and real images per second
    (from its last training record), G and D parameters, and each metric of its final evaluation."""
    names, rows = metric_names(spec), []
    for run in spec.runs:
        run_dir = out / "runs" / run.name
        done = json.loads((run_dir / DONE).read_text())
        records = curves.read_metrics(run_dir)
        trained = [r for r in records if "g_loss" in r and r["step"] <= done["step"]][-1]
        evaluation = final_evaluation(records, done["step"], names) or {}
        seconds = trained["minutes"] * 60
        rows.append({"variant": run.variant, "seed": run.seed, "steps": done["step"], "train_seconds": seconds,
                     "images_per_s": trained["kimg"] * 1000 / seconds if seconds else math.nan,
                     "g_params": done["g_params"], "d_params": done["d_params"]}
                    | {name: evaluation.get(f"eval/{name}", math.nan) for name in names})
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def summary(spec: Spec, rows: list[dict]) -> tuple[list[str], list[dict]]:
    """(columns, one row per variant): mean and std over seeds of each number, and which variant is best in each
    column (`best`: the set of columns where this variant is)."""
    columns = ["steps", "train_seconds", "images_per_s", "g_params", "d_params", *metric_names(spec)]
    table = []
    for variant in spec.variants:
        own = [r for r in rows if r["variant"] == variant]
        stats = {c: (float(np.mean([r[c] for r in own])), float(np.std([r[c] for r in own]))) for c in columns}
        table.append({"variant": variant, "seeds": len(own), "stats": stats, "best": set()})
    for c in [*FASTER, *metric_names(spec)]:
        means = [row["stats"][c][0] for row in table]
        if len(table) > 1 and all(math.isfinite(m) for m in means) and len(set(means)) > 1:
            best = max(means) if c in FASTER or c in HIGHER_IS_BETTER else min(means)
            for row in table:
                if row["stats"][c][0] == best:
                    row["best"].add(c)
    return columns, table


def cell(column: str, mean: float, std: float, seeds: int) -> str:
    """A number as the table shows it: parameters in millions, counts whole, metrics to 4 significant digits, +- std."""
    if not math.isfinite(mean):
        return "n/a"
    if column.endswith("_params"):
        return f"{mean / 1e6:.2f}M"
    digits = {"steps": ".0f", "images_per_s": ".0f", "train_seconds": ".1f"}.get(column)
    if digits is None:  # 4 significant digits of the mean; the std to the same decimal place
        digits = f".{max(0, 3 - math.floor(math.log10(abs(mean)))) if mean else 4}f"
    spread = f" ± {std:{digits}}" if seeds > 1 else ""
    return f"{mean:{digits}}{spread}"


HEADINGS = {"steps": "G steps", "train_seconds": "train s", "images_per_s": "images/s", "g_params": "G params",
            "d_params": "D params"}


def write_markdown(spec: Spec, rows: list[dict], path: Path) -> None:
    columns, table = summary(spec, rows)
    b = spec.source["budget"]
    lines = [f"# {spec.name}", "", spec.description, "",
             (f"{len(spec.seeds)} seed(s) per variant ({', '.join(map(str, spec.seeds))}); budget "
              f"{', '.join(f'{k} {v}' for k, v in b.items())}; mean ± std over seeds; **bold**: best per column."),
             "",
             "| variant | " + " | ".join(HEADINGS.get(c, c) for c in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    for row in table:
        cells = [cell(c, *row["stats"][c], row["seeds"]) for c in columns]
        cells = [f"**{v}**" if c in row["best"] else v for c, v in zip(columns, cells)]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    atomic_write_text(path, "\n".join(lines) + "\n")

"""OUT/index.html: the comparison on one offline page: the table, every variant's samples of the same latents side
by side, attention maps where a variant has attention, and the metric and loss curves of all runs on shared axes
(inline SVG)."""

from __future__ import annotations

import html
import time
from pathlib import Path

import yaml

from ..files import atomic_write_text
from ..viz import curves, svg
from .results import HEADINGS, cell, metric_names, summary
from .spec import Spec

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; } td.best { font-weight: bold; background: #eef6ee; }
.gallery { display: flex; flex-wrap: wrap; gap: 16px; } .gallery figure { margin: 0; text-align: center; }
.gallery img { image-rendering: pixelated; width: 224px; border: 1px solid #ccc; }
.gallery img.attention { width: auto; max-width: 560px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } .charts svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; font-size: 0.85em; }
"""


def write(spec: Spec, rows: list[dict], out: Path, drawn: dict[str, dict[str, str]]) -> Path:
    """Write OUT/index.html from the table rows and the figures `drawn` (paths relative to OUT); returns it."""
    colors = {v: svg.COLORS[i % len(svg.COLORS)] for i, v in enumerate(spec.variants)}
    body = [f"<h1>{html.escape(spec.name)}</h1><p class=sub>{html.escape(spec.description)}</p>",
            (f"<p class=sub>{len(spec.runs)} runs: {len(spec.variants)} variants x {len(spec.seeds)} seed(s) · "
             f"written {time.strftime('%Y-%m-%d %H:%M:%S')}</p>"),
            "<h2>Results</h2>", _table(spec, rows),
            ("<p class=sub>mean ± std over seeds; bold: the best variant in the column. One row per run: "
             "<a href=\"results.csv\">results.csv</a>; each run's own directory: <code>runs/</code>.</p>"),
            "<h2>Samples</h2><p class=sub>each variant's first seed, final generator, the same latents</p>",
            _gallery(spec, drawn, "grid"),
            "<h2>Curves</h2><p class=sub>solid: first seed; dashed: the others</p>",
            f"<div class=charts>{''.join(_charts(spec, out, colors))}</div>"]
    if any("attention" in paths for paths in drawn.values()):
        body += [("<h2>Attention</h2><p class=sub>where a variant has attention: G's maps on its samples, or D's "
                  "on real images when only D attends</p>"), _gallery(spec, drawn, "attention")]
    body += ["<h2>Spec</h2>", f"<pre>{html.escape(yaml.safe_dump(spec.source, sort_keys=False))}</pre>"]
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(spec.name)}: sagan "
            f"compare</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def _table(spec: Spec, rows: list[dict]) -> str:
    columns, table = summary(spec, rows)
    head = "".join(f"<th>{html.escape(HEADINGS.get(c, c))}</th>" for c in columns)
    def cells(row: dict) -> str:
        return "".join(f"<td{' class=best' if c in row['best'] else ''}>"
                       f"{html.escape(cell(c, *row['stats'][c], row['seeds']))}</td>" for c in columns)

    body = "".join(f"<tr><td>{html.escape(row['variant'])}</td>{cells(row)}</tr>" for row in table)
    return f"<table><tr><th>variant</th>{head}</tr>{body}</table>"


def _gallery(spec: Spec, drawn: dict[str, dict[str, str]], kind: str) -> str:
    figures = "".join(f'<figure><img class="{kind}" src="{html.escape(drawn[v][kind])}" alt="{html.escape(v)} '
                      f'{kind}"><figcaption>{html.escape(v)}</figcaption></figure>'
                      for v in spec.variants if kind in drawn[v])
    return f"<div class=gallery>{figures}</div>"


def _charts(spec: Spec, out: Path, colors: dict[str, str]) -> list[str]:
    """The evaluation metrics and the losses against the generator step, a series per run."""
    records = {run.name: curves.read_metrics(out / "runs" / run.name) for run in spec.runs}
    charts = []
    keys = [(f"eval/{m}", m, m) for m in metric_names(spec)] + [("d_loss", "D loss", "loss"),
                                                                 ("g_loss", "G loss", "loss")]
    for key, title, ylabel in keys:
        series = [svg.Series(f"{run.variant} seed {run.seed}", curves.points(records[run.name], key),
                             colors[run.variant], dashed=run.seed != spec.seeds[0]) for run in spec.runs]
        charts.append(svg.line_chart(series, title, "generator step", ylabel))
    return charts

"""`RUN/report.html`: one page a person opens in a browser to see a run: config, curves, the sample grids of the
whole run, the latest metrics, an attention explorer and where D looks. No network: the pictures made for the page
are embedded as data URIs and the run's sample grids are referenced relatively."""

import base64
import html
import io
import json
import re
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import checkpoints
from ..config import from_dict, to_yaml
from ..files import atomic_write_text
from ..models.base import seeded
from . import attention, card, curves, layout, saliency

REPORT = "report.html"


def write_report(run_dir: str | Path, num_images: int = 4, grid: int = 16, seed: int = 0) -> Path:
    """Write `RUN/report.html` (and `RUN/MODEL_CARD.md`) from the run's latest checkpoint and files; returns the
    report's path. The explorer shows
    `num_images` generated images with precomputed maps for a lattice of up to `grid` x `grid` query positions."""
    run_dir = Path(run_dir)
    state = checkpoints.load(run_dir)
    cfg = from_dict(state["config"])
    G, D = checkpoints.networks(state)
    records = curves.read_metrics(run_dir, missing_ok=True)
    title = run_dir.resolve().name
    labels = G.make_labels(num_images, None, seeded(seed + 1))
    with attention.Recorder(G) as g_maps:
        images = G.sample(num_images, seed, labels)
    explorer, sprites = explorer_data(images, labels, g_maps.maps, D, grid)
    samples = [{"step": int(p.stem.split("-")[-1]), "src": p.relative_to(run_dir).as_posix(),
                "raw": (run_dir / "samples" / "raw" / p.name).relative_to(run_dir).as_posix()
                if (run_dir / "samples" / "raw" / p.name).is_file() else None}
               for p in sorted((run_dir / "samples").glob("step-*.png"))]
    parts = {
        "title": html.escape(title),
        "subtitle": html.escape(f"checkpoint at step {state['step']:,} of {cfg.train.steps:,} · "
                                f"{cfg.model.arch} SAGAN, {cfg.data.resolution}x{cfg.data.resolution}, "
                                f"{cfg.model.attention} attention · written {time.strftime('%Y-%m-%d %H:%M:%S')}"),
        "explorer": _explorer_html(explorer, sprites),
        "saliency": data_uri(saliency.figure(D, images, labels, title=f"D on generated images, step "
                                                                      f"{state['step']:,}")),
        "progress": _progress_html(samples),
        "curves": _curves_html(records, title),
        "metrics": _metrics_html(records),
        "config": html.escape(to_yaml(cfg)),
        "data": json.dumps({"explorer": explorer, "samples": samples}).replace("</", "<\\/"),
    }
    page = resources.files(__package__).joinpath("templates", "report.html").read_text()
    page = re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m[1]], page)  # one pass: inserted text is never re-read
    path = run_dir / REPORT
    atomic_write_text(path, page)
    atomic_write_text(run_dir / card.CARD,
                      card.model_card(run_dir, state, G, records, samples[-1]["src"] if samples else None))
    return path


def refresher(run_dir: str | Path):
    """A training run's `on_checkpoint`: rewrites RUN/report.html; a failure is a warning, never the end of
    training."""
    def refresh(checkpoint_path: Path) -> None:
        try:
            write_report(run_dir)
        except Exception as e:  # noqa: BLE001 - the report is a convenience, training goes on
            print(f"sagan: warning: report not refreshed: {type(e).__name__}: {e}", file=sys.stderr)
    return refresh


def explorer_data(images: np.ndarray, labels: torch.Tensor | None, g_maps: dict, D: torch.nn.Module,
                  grid: int) -> tuple[dict, list[list[str]]]:
    """Generated images and, for every attention layer of G (`g_maps`, recorded while they were generated) and of
    D (run on the same images), the heat layer of each query of a grid, as sprite sheets (one per layer and image,
    data URIs) that the page draws over the image."""
    with attention.Recorder(D) as d_maps, torch.no_grad():
        D(attention.to_tensor(images), labels)
    height, width = images.shape[1:3]
    layers, sprites = [], []
    for net, recorded in (("G", g_maps), ("D", d_maps.maps)):
        for name, maps in recorded.items():
            queries = attention.query_grid(maps.feature_size, grid)
            rows, columns = (min(grid, f) for f in maps.feature_size)
            layers.append({
                "name": f"{net} {name}",
                "feature": list(maps.feature_size),
                "keys": list(maps.weights.shape[3:]),
                "grid": [rows, columns],
                "queries": [[round(v, 2) for v in maps.query_pixel(q, (height, width))] for q in queries],
                "features": [list(q) for q in queries],
            })
            sprites.append([data_uri(attention.sprite(maps, b, queries, columns)) for b in range(len(images))])
    explorer = {"size": [height, width], "scale": layout.readable_scale(max(height, width), 256),
                "images": [data_uri(image) for image in images], "layers": layers,
                "colorbar": data_uri(attention.colorbar(256, 12))}
    return explorer, sprites


def data_uri(image: np.ndarray | bytes) -> str:
    """A PNG (uint8 HWC array, C = 1, 3 or 4, or PNG bytes) as a data: URI."""
    if isinstance(image, np.ndarray):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG", optimize=True)
        image = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(image).decode("ascii")


def _explorer_html(explorer: dict, sprites: list[list[str]]) -> str:
    if not explorer["layers"]:
        return "<p class=note>This model has no self-attention layers.</p>"
    thumbs = "".join(f'<img class="thumb" data-index="{i}" src="{src}" alt="generated image {i + 1}">'
                     for i, src in enumerate(explorer["images"]))
    options = "".join(f'<option value="{i}">{html.escape(layer["name"])} ({layer["feature"][0]}x'
                      f'{layer["feature"][1]} queries, {layer["keys"][0]}x{layer["keys"][1]} keys)</option>'
                      for i, layer in enumerate(explorer["layers"]))
    hidden = "".join(f'<img id="sprite-{i}-{b}" src="{src}" alt="">' for i, row in enumerate(sprites)
                     for b, src in enumerate(row))
    return (f'<div class="controls"><label>layer <select id="layer">{options}</select></label>'
            f'<span class="thumbs">{thumbs}</span></div>'
            '<div class="explorer"><figure><canvas id="query-canvas"></canvas>'
            '<figcaption>generated image: hover to choose a query position, click to pin it</figcaption></figure>'
            '<figure><canvas id="map-canvas"></canvas><figcaption id="map-caption"></figcaption></figure></div>'
            f'<p class="legend">low <img src="{explorer["colorbar"]}" alt="colour scale"> high attention '
            '(each map scaled to its maximum)</p>'
            f'<div class="sprites" hidden>{hidden}</div>')


def _progress_html(samples: list[dict]) -> str:
    if not samples:
        return "<p class=note>No sample grids in samples/ yet.</p>"
    last = samples[-1]
    ema = f'<img id="progress-image" src="{html.escape(last["src"])}" alt="EMA sample grid at the chosen step">'
    if last["raw"]:  # train.sample_raw: the raw generator's grid of the same latents beside the EMA's
        ema = (f'<div class="pair"><figure>{ema}<figcaption>EMA generator</figcaption></figure><figure><img '
               f'id="progress-raw" src="{html.escape(last["raw"])}" alt="raw sample grid at the chosen step">'
               '<figcaption>raw generator (what the optimiser trained)</figcaption></figure></div>')
    return (f'<div class="controls"><input type="range" id="step-slider" min="0" max="{len(samples) - 1}" '
            f'value="{len(samples) - 1}" aria-label="training step"> <span id="step-label">step '
            f'{last["step"]:,}</span></div>{ema}')


def _curves_html(records: list[dict], title: str) -> str:
    if not records:
        return "<p class=note>No metrics.jsonl records yet.</p>"
    return "".join(f'<figure class="curve">{chart}</figure>' for chart in curves.charts(records, title).values())


def _metrics_html(records: list[dict]) -> str:
    if not records:
        return "<p class=note>No metrics yet.</p>"
    # Evaluation results may come in records of their own: show the last value of every key and its step.
    latest = {key: (value, r["step"]) for r in records for key, value in r.items() if key != "step"}
    rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{_number(value)}</td><td>step {step:,}</td></tr>"
                   for key, (value, step) in latest.items())
    return f"<table>{rows}</table>"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))

"""Training curves from `RUN/metrics.jsonl`: as inline SVG charts (the run report), or as PNG figures
(`sagan visualize curves`, matplotlib's Agg renderer; the optional `viz` extra)."""

import io
import json
import math
from pathlib import Path

from ..errors import MissingExtraError, MissingPathError
from . import svg

# (figure name, title, y label, which keys, log-scale y); keys no figure claims get a figure each.
FIGURES = [
    ("losses", "Losses", "loss", lambda k: k in ("d_loss", "g_loss", "gp", "r1", "lecam"), False),
    ("discriminator", "Discriminator outputs (batch mean logits)", "logit", lambda k: k in ("d_real", "d_fake"), False),
    ("gamma", "Attention gamma (weight of each attention branch)", "gamma", lambda k: k.startswith("gamma/"), False),
    ("learning-rate", "Learning rates", "learning rate", lambda k: k.startswith("lr_"), True),
    ("augment", "Adaptive augmentation (p and the overfitting signal r_t)", "value",
     lambda k: k in ("ada_p", "ada_rt"), False),
    ("speed", "Training speed", "generator steps / s", lambda k: k == "steps_per_s", False),
]
NOT_PLOTTED = {"step", "epoch", "kimg"}
LABELS = {"d_loss": "D loss", "g_loss": "G loss", "gp": "gradient penalty", "r1": "R1 penalty", "lecam": "LeCam",
          "ada_p": "augmentation p", "ada_rt": "r_t = E[sign D(real)]",
          "d_real": "D(real)", "d_fake": "D(fake)", "lr_g": "G", "lr_d": "D", "steps_per_s": "steps / s"}


def label(key: str) -> str:
    """A curve's legend: 'D loss', 'D loss (epoch mean)', a gamma's layer name."""
    base = key.removesuffix("_epoch")
    return LABELS.get(base, base.removeprefix("gamma/")) + (" (epoch mean)" if key != base else "")


def read_metrics(run_dir: str | Path, missing_ok: bool = False) -> list[dict]:
    """The records of `RUN/metrics.jsonl` (a line cut short by a killed run is skipped); with `missing_ok`, none
    when there is no such file yet."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        if missing_ok:
            return []
        raise MissingPathError(f"{path} does not exist: not a run directory with metrics")
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def groups(records: list[dict]) -> list[tuple[str, str, str, list[str], bool]]:
    """The figures to draw: (name, title, y label, keys, log scale), for the numeric keys present."""
    keys = list(dict.fromkeys(k for r in records for k, v in r.items()
                              if k not in NOT_PLOTTED and isinstance(v, (int, float)) and not isinstance(v, bool)))
    out, claimed = [], set()
    for name, title, ylabel, wanted, log in FIGURES:
        chosen = [k for k in keys if wanted(k.removesuffix("_epoch"))]  # epoch means join their statistic's figure
        claimed.update(chosen)
        if chosen:
            out.append((name, title, ylabel, chosen, log))
    for key in keys:
        if key not in claimed:  # evaluation metrics (FID, IS, ...) differ in scale: one figure each
            out.append((f"metric-{key.replace('/', '-')}", f"Metric: {key}", key, [key], False))
    return out


def points(records: list[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) of `key` in the records that hold a finite number for it."""
    return [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))
            and not isinstance(r[key], bool) and math.isfinite(r[key])]


def charts(records: list[dict], title: str) -> dict[str, str]:
    """The figures of `figures` as inline SVG, by the same names."""
    return {name: svg.line_chart([svg.Series(label(key), points(records, key)) for key in keys],
                                 f"{heading} · {title}", "generator step", ylabel, log_y=log)
            for name, heading, ylabel, keys, log in groups(records)}


def figures(records: list[dict], title: str) -> dict[str, bytes]:
    """PNG bytes of each figure by name (`losses`, `discriminator`, `gamma`, `learning-rate`, `speed`, and
    `metric-KEY` for any other key, `/` written `-`), each with the run `title`, labelled axes and a legend."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise MissingExtraError("training curves need matplotlib: pip install 'sagan[viz]'") from None
    out = {}
    for name, heading, ylabel, keys, log in groups(records):
        fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        for key in keys:
            if found := points(records, key):
                steps, values = zip(*found)
                ax.plot(steps, values, label=label(key), marker="o" if len(found) < 20 else None, markersize=3)
        if log and all(v > 0 for line in ax.get_lines() for v in line.get_ydata()):
            ax.set_yscale("log")
        ax.set_title(f"{heading}\n{title}", fontsize=11)
        ax.set_xlabel("generator step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        out[name] = buffer.getvalue()
    return out

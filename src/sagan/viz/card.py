"""MODEL_CARD.md: what a run's generator is, how it was made and measured, and what it is for, in the shape of a
model card (Mitchell et al. 2019), written from the run's checkpoint and records alone."""

from pathlib import Path

from torch import nn

from ..config import from_dict
from ..evaluation import held_out
from ..metrics.evaluate import headlines

CARD = "MODEL_CARD.md"


def model_card(run_dir: str | Path, state: dict, G: nn.Module, records: list[dict],
               samples: str | None = None) -> str:
    """The card's Markdown for the run's loaded checkpoint `state`, its generator `G` and its metrics `records`;
    `samples`: the path of a sample grid to show, as the card's reader will find it."""
    run_dir = Path(run_dir)
    cfg = from_dict(state["config"])
    m, d, t, e = cfg.model, cfg.data, cfg.train, cfg.eval
    conditional = f"class-conditional, {m.num_classes} classes" if m.num_classes else "unconditional"
    attention = (f"`{m.attention}` self-attention after G's {_list(m.g_attention)} and D's {_list(m.d_attention)} "
                 "feature maps" if m.g_attention or m.d_attention else "no self-attention")
    split = f"the train part of a {1 - d.test_fraction:.0%} / {d.test_fraction:.0%} split (seed {d.split_seed})" \
        if d.test_fraction else f"its `{d.split}` split"
    lines = [
        f"# {run_dir.resolve().name}: a SAGAN generator",
        "",
        f"Written by sagan from the checkpoint at step {state['step']:,}.",
        "",
        "## Model",
        "",
        (f"- A `{m.arch}` generator, {conditional}, {attention}; {sum(p.numel() for p in G.parameters()):,} "
        f"parameters; latents of {m.z_dim} standard normal values; {d.resolution}x{d.resolution} images with "
        f"{d.channels} channel(s). Sampling uses the exponential moving average of G's weights."),
        (f"- Spectral norm: G {'yes' if m.g_spectral_norm else 'no'}, D {'yes' if m.d_spectral_norm else 'no'}; "
        f"init `{m.init}`."),
        "",
        "## Training data",
        "",
        f"- Dataset `{d.name}`{f' from `{d.root}`' if d.root else ''}, {split}, at {d.resolution}x{d.resolution}"
        + (f", center crop {d.crop}" if d.crop else "") + (f", labels: attribute `{d.attribute}`" if d.attribute
                                                           else f", labels: {d.labels}" if d.labels != "none"
                                                           else "") + ".",
        "",
        "## Training",
        "",
        (f"- Preset `{cfg.preset}`; loss `{t.loss}`, Adam lr G {t.lr_g:g} / D {t.lr_d:g}, betas ({t.beta1:g}, "
        f"{t.beta2:g}), batch {t.batch_size}, {t.n_dis} D step(s) per G step, EMA decay {t.ema_decay:g}, "
        f"augmentation `{t.augment}`, seed {t.seed}."),
        f"- {state['step']:,} of {t.steps or '?'} G steps"
        + (f" ({t.epochs} epochs planned)" if t.epochs else "")
        + f" in {state.get('train_seconds', 0) / 60:,.1f} minutes of training; device setting `{t.device}`, "
        f"mixed precision `{t.amp}`.",
        "",
        "## Evaluation",
        "",
        *_evaluation(records, e, d),
        "",
    ]
    if samples:
        lines += ["## Samples", "", f"![samples of the EMA generator]({samples})", ""]
    lines += [
        "## Intended use and limits",
        "",
        ("- For research and teaching: studying GAN training, self-attention and evaluation metrics. The images are "
        "synthetic and resemble the training data; they are not photographs of anything."),
        ("- The generator reproduces the content, style and biases of its training data (for face datasets such "
        "as CelebA: celebrity photos, skewed in age, ethnicity and presentation), and at this size and number of "
        "steps it may show artefacts and limited variety (mode collapse)."),
        "- Not for identifying, impersonating or depicting real people, or for media meant to deceive.",
        ("- Scores depend on their protocol (feature network, sample and reference counts, reference images): "
        "compare them only with scores of the same protocol."),
        "",
    ]
    return "\n".join(lines)


def _evaluation(records: list[dict], e, d) -> list[str]:
    names = headlines(e.metrics, e.backbone)
    found = [r for r in records if any(f"eval/{n}" in r for n in names)]
    if not found:
        return ["- Not evaluated during training; `sagan evaluate --checkpoint RUN` scores it."]
    last = found[-1]
    reference = e.reference or f"`{d.name}`, its `{held_out(d, e.split).split}` part"
    scores = ", ".join(f"{n} {last[f'eval/{n}']:.4g}" for n in names if f"eval/{n}" in last)
    features = ""
    if {"fid", "kid"} & set(e.metrics):
        features = f"; FID / KID on `{e.backbone}` features" + (
            "" if e.backbone == "inception" else " (not comparable with published scores, which use Inception)")
    return [f"- At step {last['step']:,}: {scores}.",
            f"- Protocol: {e.num_samples:,} samples of the EMA generator against {reference}"
            + (f" ({e.reference_samples:,} images)" if e.reference_samples else "") + f"{features}."]


def _list(resolutions: list[int]) -> str:
    return ", ".join(f"{r}x{r}" for r in resolutions) or "no"

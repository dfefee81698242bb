"""Starting a run from another run's weights (`train.init_from`), and freezing the first blocks of G or D
(`train.freeze_g`, `train.freeze_d`; FreezeD: Mo, Cho and Shin 2020, arXiv 2002.10964).

The target run has its own config, data and step 0, fresh optimisers and schedules; only G, D and the EMA generator
start from the source's tensors, matched by name and shape. Networks of another backbone, resolution, width or
latent size are refused: their tensors would not line up. Tensors that do not carry over (class embeddings when the
number of classes changes, attention layers placed elsewhere) are listed in the run's log.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import checkpoints
from ..config import Config, from_dict, get_value
from ..errors import ConfigError

# What the source's and the target's networks must share for their tensors to line up.
SAME = ("model.arch", "model.z_dim", "model.g_channels", "model.d_channels", "data.resolution", "data.channels")
NETWORKS = (("G", "generator"), ("D", "discriminator"), ("G_ema", "generator_ema"))


def load_source(path: str | Path, cfg: Config) -> dict:
    """The source checkpoint (a run directory or a training checkpoint file), checked against the target `cfg`."""
    state = checkpoints.load(path)
    missing = [key for _, key in NETWORKS if key not in state]
    if missing:
        raise ConfigError(f"train.init_from: {path} holds no {' or '.join(missing)} (best.pt keeps only the EMA "
                          f"generator); use the run directory or a step-*.pt checkpoint")
    source = from_dict(state["config"])
    for key in SAME:
        if get_value(source, key) != get_value(cfg, key):
            raise ConfigError(f"train.init_from: the source's {key} is {get_value(source, key)!r}, this run's "
                              f"{get_value(cfg, key)!r}; weights carry over only between networks of the same shape")
    return state


def initialise(gan, path: str | Path, cfg: Config) -> list[str]:
    """Copy the source's tensors into `gan`'s G, D and G_ema where name and shape match; returns the lines that say
    what carried over and what did not."""
    state = load_source(path, cfg)
    source = from_dict(state["config"])
    lines = [f"initialised from {path} (step {state['step']:,}, {source.data.name}); fresh optimisers, step 0"]
    if source.model.num_classes != cfg.model.num_classes:
        lines.append(f"classes: the source has {source.model.num_classes}, this run {cfg.model.num_classes}: class "
                     f"embeddings (conditional batch norm, the projection) "
                     f"{'start fresh' if cfg.model.num_classes else 'are dropped'}")
    for name, key in NETWORKS:
        net: nn.Module = getattr(gan, name)
        own = net.state_dict()
        carried = {k: v for k, v in state[key].items() if k in own and own[k].shape == v.shape}
        with torch.no_grad():
            for k, v in carried.items():
                own[k].copy_(v)
        dropped = _readable(set(state[key]) - set(carried))
        fresh = _readable(set(own) - set(carried))
        lines.append(f"{name}: {len(carried)} of {len(own)} tensors from the source" + "".join(
            f"; {what} ({len(keys)}): {_names(keys)}" for what, keys in (("not carried over", dropped),
                                                                         ("started fresh", fresh)) if keys))
    return lines


def _readable(keys: set[str]) -> list[str]:
    """State-dict keys as the weights they are: a spectrally normalised weight once, without its power-iteration
    vectors."""
    names = {k.replace(".parametrizations.weight.original", ".weight") for k in keys
             if not k.endswith(("weight.0._u", "weight.0._v"))}
    return sorted(names)


def _names(keys: list[str], shown: int = 4) -> str:
    return ", ".join(keys[:shown]) + (f", ... ({len(keys) - shown} more)" if len(keys) > shown else "")


def freeze(net: nn.Module, blocks: int) -> list[str]:
    """Stop gradients to the first `blocks` entries of `net.blocks` (layers such as attn16 count as entries; the
    config's validation checks there are that many); returns their names."""
    names = list(net.blocks)[:blocks]
    for name in names:
        net.blocks[name].requires_grad_(False)
    return names

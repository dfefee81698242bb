"""Checkpoints: written atomically, found in a run directory, loaded with `weights_only=True`, networks rebuilt.

The one module that writes and reads them (and reads the generator of a safetensors export); it depends only on
the config and the models.
"""

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .config import from_dict
from .config.fields import VERSION
from .errors import MissingExtraError, MissingPathError, UserError
from .files import atomic_write_bytes
from .models import Generator, build_discriminator, build_generator

LATEST = "latest.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_name(step: int) -> str:
    return f"step-{step:07d}"


def serialize(state: dict) -> bytes:
    """The bytes `torch.save` writes for `state`, to hand to `atomic_write_bytes`."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save(run_dir: Path, state: dict, keep: int) -> Path:
    """Write `state` as `checkpoints/step-XXXXXXX.pt` and `checkpoints/latest.pt`, keeping the newest `keep`
    step files. Both files are complete or absent, never half-written."""
    folder = checkpoint_dir(run_dir)
    data = serialize(state | {"sagan_version": __version__})
    path = folder / f"{step_name(state['step'])}.pt"
    atomic_write_bytes(path, data)
    atomic_write_bytes(folder / LATEST, data)
    for old in sorted(folder.glob("step-*.pt"))[:-keep] if keep else sorted(folder.glob("step-*.pt")):
        old.unlink()
    return path


def candidates(path: str | Path) -> list[Path]:
    """The checkpoint files to try for a run directory (latest.pt, then the step files, newest first) or a file."""
    path = Path(path)
    if path.is_dir():
        folder = checkpoint_dir(path)
        found = [folder / LATEST] * (folder / LATEST).is_file() + sorted(folder.glob("step-*.pt"), reverse=True)
        if not found:
            raise MissingPathError(f"{path} has no checkpoints/{LATEST}: not a run directory with a checkpoint")
        return found
    if not path.is_file():
        raise MissingPathError(f"checkpoint {path} does not exist")
    return [path]


class FallbackWarning(UserWarning):
    """A run's latest checkpoint was unreadable and an older one is used."""


def run_dir(path: str | Path) -> Path:
    """The run directory of a run directory or of a checkpoint file in its `checkpoints/` folder."""
    path = Path(path)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint safely (tensors and plain Python types only). Memory-mapped, so reading only its config
    costs little. For a run directory whose latest.pt is unreadable (say, truncated by a full disk), the newest
    readable step-*.pt, with a FallbackWarning."""
    return load_newest(path, device)[0]


def load_newest(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict, Path]:
    """`load`, and the file it read."""
    first_error = None
    for file in candidates(path):
        try:
            state = _read(file, device)
        except UserError as e:
            first_error = first_error or e
            continue
        if first_error:
            warnings.warn(f"{first_error}; using {file}, the newest readable checkpoint", FallbackWarning,
                          stacklevel=3)
        return state, file
    raise first_error


def _read(path: Path, device: str | torch.device) -> dict:
    unreadable = UserError(f"{path} is truncated or not a sagan checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:  # weights_only refuses anything that could run code on load
        raise UserError(f"{path} is not a sagan checkpoint: it holds objects other than tensors and plain "
                        f"values ({str(e).splitlines()[0][:120]})") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError):
        raise unreadable from None
    if not isinstance(state, dict) or "config" not in state or "generator_ema" not in state:
        raise unreadable
    if state["config"].get("version", 1) > VERSION:
        raise UserError(f"{path} was written by a newer sagan (config version {state['config']['version']}, "
                        f"{state.get('sagan_version', 'unknown')}); this one reads up to version {VERSION}: "
                        f"upgrade sagan")
    return state


# --generator: which generator of a checkpoint samples. The EMA is what a run's samples and evaluations show; raw
# is the network the optimiser trained.
GENERATORS = {"ema": "generator_ema", "raw": "generator"}


def load_generator(path: str | Path, device: str | torch.device = "cpu", which: str = "ema") -> Generator:
    """A generator (GENERATORS) of a checkpoint (a run directory or a .pt file), or the generator of a safetensors
    export (`sagan export`), in eval mode, with `.sample()`."""
    if Path(path).suffix == ".safetensors":
        return load_export(path, device)
    return generator(load(path, device), device, which)


EXPORT_META = "generator.json"  # beside an export: how to call it, and the run's config


def load_export(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The generator of a safetensors export, built from the config in its generator.json, in eval mode."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MissingExtraError("reading a safetensors export needs safetensors: pip install 'sagan[export]'") from None
    path = Path(path)
    meta_path = path.parent / EXPORT_META
    if not path.is_file() or not meta_path.is_file():
        raise MissingPathError(f"{path} and {EXPORT_META} beside it: expected a `sagan export --format safetensors` "
                               "folder")
    cfg = from_dict(json.loads(meta_path.read_text())["config"])
    cfg.model.g_spectral_norm = False  # the export's weights have it baked in
    with torch.random.fork_rng(devices=[]):
        G = build_generator(cfg.model, cfg.data.resolution, cfg.data.channels)
    G.load_state_dict(load_file(path))
    return G.to(device).eval().requires_grad_(False)


def generator(state: dict, device: str | torch.device = "cpu", which: str = "ema") -> Generator:
    """The `which` generator (GENERATORS: ema, raw) of a loaded checkpoint, in eval mode; best.pt has only the
    EMA."""
    if which not in GENERATORS:
        raise UserError(f"--generator: '{which}' is not one of {', '.join(GENERATORS)}")
    if GENERATORS[which] not in state:
        raise UserError(f"this checkpoint has no {which} generator (best.pt holds the EMA only); use a training "
                        f"checkpoint, RUN or RUN/checkpoints/latest.pt")
    return _network(build_generator, state, GENERATORS[which], device)


def networks(state: dict, device: str | torch.device = "cpu") -> tuple[Generator, nn.Module]:
    """The EMA generator and the discriminator of a loaded training checkpoint, in eval mode, without gradients."""
    if "discriminator" not in state:
        raise UserError("this checkpoint holds only the generator (best.pt); use a training checkpoint, "
                        "RUN or RUN/checkpoints/latest.pt")
    return generator(state, device), _network(build_discriminator, state, "discriminator", device)


def _network(build, state: dict, key: str, device: str | torch.device) -> nn.Module:
    """`build`'s network at the checkpoint's config with the weights `state[key]`, in eval mode, without gradients."""
    cfg = from_dict(state["config"])
    # Building draws random initial weights; leave the caller's random stream (a training run refreshing its
    # report) as it was, so resumed runs stay exact.
    with torch.random.fork_rng(devices=[]):
        net = build(cfg.model, cfg.data.resolution, cfg.data.channels)
    net.load_state_dict(state[key])
    return net.to(device).eval().requires_grad_(False)

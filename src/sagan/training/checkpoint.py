"""Checkpoint files: written atomically, read with `weights_only=True`, and the generator loader of the public API."""

import io
import pickle
import zipfile
from pathlib import Path

import torch

from ..config import from_dict
from ..errors import MissingPathError, UserError
from ..files import atomic_write_bytes
from ..models import Generator, build_generator

LATEST = "latest.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_name(step: int) -> str:
    return f"step-{step:07d}"


def save(run_dir: Path, state: dict, keep: int) -> Path:
    """Write `state` as `checkpoints/step-XXXXXXX.pt` and `checkpoints/latest.pt`, keeping the newest `keep`
    step files. Both files are complete or absent, never half-written."""
    folder = checkpoint_dir(run_dir)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = folder / f"{step_name(state['step'])}.pt"
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_bytes(folder / LATEST, buffer.getvalue())
    for old in sorted(folder.glob("step-*.pt"))[:-keep] if keep else sorted(folder.glob("step-*.pt")):
        old.unlink()
    return path


def resolve(path: str | Path) -> Path:
    """A checkpoint file from a run directory (its latest checkpoint) or a file path."""
    path = Path(path)
    if path.is_dir():
        latest = checkpoint_dir(path) / LATEST
        if not latest.is_file():
            raise MissingPathError(f"{path} has no checkpoints/{LATEST}: not a run directory with a checkpoint")
        return latest
    if not path.is_file():
        raise MissingPathError(f"checkpoint {path} does not exist")
    return path


def load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint safely (tensors and plain Python types only). Memory-mapped, so reading only its config
    costs little."""
    path = resolve(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True, mmap=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as e:
        raise UserError(f"{path} is not a readable sagan checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or "config" not in state or "generator_ema" not in state:
        raise UserError(f"{path} is not a sagan checkpoint (no config / generator_ema entries)")
    return state


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The EMA generator of a checkpoint (a run directory or a .pt file), in eval mode, with `.sample()`."""
    state = load(path, device)
    cfg = from_dict(state["config"])
    G = build_generator(cfg.model, cfg.data.resolution, cfg.data.channels)
    G.load_state_dict(state["generator_ema"])
    return G.to(device).eval().requires_grad_(False)


"""Checkpoint files, written atomically; reading them is `sagan.checkpoints` (re-exported here)."""

import io
from pathlib import Path

import torch

from ..checkpoints import LATEST, checkpoint_dir, load, load_generator, resolve
from ..files import atomic_write_bytes

__all__ = ["LATEST", "checkpoint_dir", "load", "load_generator", "resolve", "save", "step_name"]


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

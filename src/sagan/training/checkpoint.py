"""Checkpoint files, written atomically; reading them is `sagan.checkpoints` (re-exported here)."""

import io
from pathlib import Path

import torch

from ..checkpoints import LATEST, checkpoint_dir, load, load_generator, resolve
from ..files import atomic_write_bytes

__all__ = ["LATEST", "checkpoint_dir", "load", "load_generator", "resolve", "save", "serialize", "step_name"]


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
    data = serialize(state)
    path = folder / f"{step_name(state['step'])}.pt"
    atomic_write_bytes(path, data)
    atomic_write_bytes(folder / LATEST, data)
    for old in sorted(folder.glob("step-*.pt"))[:-keep] if keep else sorted(folder.glob("step-*.pt")):
        old.unlink()
    return path

"""Where and how a run computes: device choice, mixed precision, seeding and the random state a resume restores."""

import contextlib
import random

import numpy as np
import torch

from .errors import ConfigError

# train.amp: name -> the autocast dtype (None: float32 throughout)
PRECISIONS = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """The device `name` (auto: CUDA where there is one, else the CPU); `option` names it in errors."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{option}: '{name}' is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option}: '{name}' requested but CUDA is not available here (use cpu or auto)")
    return device


def check_amp(amp: str, device: torch.device) -> None:
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp: fp16 needs a CUDA device; use bf16 on the CPU")


def tune_backends(device: torch.device) -> None:
    """On CUDA, let cuDNN time its convolution algorithms once per shape: a GAN step's shapes never change."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed-precision context for forward passes; losses are computed in float32 outside it."""
    if PRECISIONS[amp] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[amp])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def capture_rng() -> dict:
    """The global random state as plain types and tensors, so a checkpoint loads with `weights_only=True`."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Undo `capture_rng`; the state may have been loaded onto any device."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

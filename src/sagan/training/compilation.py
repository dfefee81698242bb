"""`train.compile`: whether G and D run through torch.compile, in which mode, and the fall-back to eager.

auto (the default) compiles on CUDA only, with CUDA graphs (mode reduce-overhead) where every step has the same
shapes and no output outlives its step; true compiles on any device in `train.compile_mode`; false never does.
"""

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Config
from ..losses import gp_weight


@dataclass(frozen=True)
class Plan:
    mode: str | None  # the torch.compile mode of G and D; None: eager
    note: str  # one line for the run's log, "" when there is nothing to say (eager on the CPU by default)


def plan(cfg: Config, device: torch.device, processes: int = 1) -> Plan:
    """What `train.compile` means for this run on `device` with `processes` training processes."""
    t = cfg.train
    if t.compile:
        return Plan(t.compile_mode, f"torch.compile: G and D, mode {t.compile_mode}")
    if t.compile is False or device.type != "cuda":
        return Plan(None, "")
    # torch.compile's graphs are differentiated once: a penalty on D's input gradient needs a second derivative.
    penalties = [name for name, on in (("train.gp_weight", gp_weight(t.loss, t.gp_weight) > 0),
                                       ("train.r1_weight", t.r1_weight > 0)) if on]
    if penalties:
        return Plan(None, f"torch.compile: off, G and D run eagerly ({' and '.join(penalties)}: a gradient penalty "
                          "needs a double backward, which compiled graphs do not have)")
    # CUDA graphs replay into the same output buffers, which the next step overwrites: outputs that live on
    # (reused fakes, accumulated micro-batches) and the gradient all-reduce of several processes rule them out.
    keep = [name for name, on in (("train.reuse_fakes", t.reuse_fakes), ("train.accumulate", t.accumulate > 1),
                                  ("torchrun", processes > 1)) if on]
    if keep:
        return Plan("default", f"torch.compile: G and D, mode default, without CUDA graphs ({', '.join(keep)})")
    return Plan("reduce-overhead", "torch.compile: G and D with CUDA graphs (mode reduce-overhead)")


def compile_networks(nets: list[nn.Module], mode: str) -> None:
    """In place, so parameter names (and checkpoints) stay those of the plain modules; shapes are static (D sees 2n
    images in the D step and n in the G step: two graphs, no dynamic-shape guards)."""
    for net in nets:
        net.compile(dynamic=False, mode=mode)


def run_eagerly(nets: list[nn.Module]) -> None:
    """Undo `compile_networks` (nn.Module.compile keeps the compiled call here and has no public inverse)."""
    for net in nets:
        net._compiled_call_impl = None


def failure(error: BaseException) -> str:
    """One line for a compilation error: its root cause (dynamo wraps the backend's error in its own)."""
    while (inner := error.__cause__ or getattr(error, "inner_exception", None)) is not None:
        error = inner
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__

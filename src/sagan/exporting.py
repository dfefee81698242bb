"""`sagan export`: a run's EMA generator for use without sagan, as ONNX, TorchScript or safetensors, with a JSON
file beside it that says how to call it.

Spectral norm is baked into the weights first (in eval mode it divides each weight by a fixed sigma), so the
exported network (the one `sagan.load_generator` rebuilds from a safetensors export) is plain convolutions, batch
norm with its running statistics and the attention blocks' plain path (the reference math of `sagan.models`, no
`sagan.kernels`)."""

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.utils import parametrize

from . import checkpoints
from .config import from_dict, to_dict
from .errors import ConfigError, MissingExtraError
from .files import atomic_write_bytes, atomic_write_text
from .models import Generator, build_generator
from .viz import card, curves

META = checkpoints.EXPORT_META


def baked(state: dict) -> Generator:
    """The EMA generator of a loaded checkpoint, rebuilt without spectral norm and with each normalised weight
    (what the parametrization computes in eval mode) as its plain weight, in eval mode."""
    G = checkpoints.generator(state)
    plain = {key: value for key, value in G.state_dict().items() if ".parametrizations." not in key}
    for name, module in G.named_modules():
        if parametrize.is_parametrized(module):
            for tensor in module.parametrizations:
                plain[f"{name}.{tensor}"] = getattr(module, tensor).detach()
    cfg = from_dict(state["config"])
    cfg.model.g_spectral_norm = False
    with torch.random.fork_rng(devices=[]):
        B = build_generator(cfg.model, cfg.data.resolution, cfg.data.channels)
    B.load_state_dict(plain)
    return B.eval().requires_grad_(False)


def example_inputs(G: Generator, n: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of the exported graph: latents (n, z_dim) and, when conditional, labels (n,) int64."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0))
    return (z, torch.arange(n) % G.num_classes) if G.num_classes else (z,)


def _onnx(G: Generator) -> bytes:
    try:
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
    except ImportError:
        raise MissingExtraError("ONNX export needs onnx and onnxscript: pip install 'sagan[export]'") from None
    names = ["z", "y"][: len(example_inputs(G))]
    program = torch.onnx.export(G, example_inputs(G), input_names=names, output_names=["images"],
                                dynamic_shapes={name: {0: "batch"} for name in names}, dynamo=True, verbose=False)
    return program.model_proto.SerializeToString()


def _torchscript(G: Generator) -> bytes:
    buffer = io.BytesIO()
    # torch marks TorchScript deprecated in favour of torch.export, but C++ and mobile runtimes still load it.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated")
        torch.jit.save(torch.jit.trace(G, example_inputs(G)), buffer)
    return buffer.getvalue()


def _safetensors(G: Generator) -> bytes:
    try:
        from safetensors.torch import save
    except ImportError:
        raise MissingExtraError("safetensors export needs safetensors: pip install 'sagan[export]'") from None
    return save({name: t.contiguous() for name, t in G.state_dict().items()})


# sagan export --format: name -> (file name, the bytes of the baked generator)
FORMATS: dict[str, tuple[str, Callable[[Generator], bytes]]] = {
    "onnx": ("generator.onnx", _onnx),
    "torchscript": ("generator.torchscript.pt", _torchscript),
    "safetensors": ("generator.safetensors", _safetensors),
}


def export(source: str | Path, fmt: str, out: str | Path) -> list[Path]:
    """Write the EMA generator of the run or checkpoint `source` as `fmt` (FORMATS) into folder `out`, with
    generator.json and MODEL_CARD.md (and the run's latest sample grid, samples.png); returns the three paths."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    state = checkpoints.load(source)
    G = baked(state)
    name, write = FORMATS[fmt]
    data = write(G)
    cfg = from_dict(state["config"])
    inputs = {"z": {"shape": ["batch", G.z_dim], "dtype": "float32", "distribution": "standard normal"}}
    if G.num_classes:
        inputs["y"] = {"shape": ["batch"], "dtype": "int64", "values": f"class labels 0..{G.num_classes - 1}"}
    meta = {
        "format": fmt, "file": name, "step": state["step"], "z_dim": G.z_dim, "num_classes": G.num_classes,
        "resolution": G.resolution, "channels": G.channels, "inputs": inputs,
        "output": {"name": "images", "shape": ["batch", G.channels, G.resolution, G.resolution],
                   "dtype": "float32", "range": [-1, 1], "to_uint8": "round((images + 1) * 127.5), clipped to 0..255"},
        "spectral_norm": "baked into the weights",
        "config": to_dict(cfg),
    }
    atomic_write_bytes(out / name, data)
    atomic_write_text(out / META, json.dumps(meta, indent=1))
    run_dir = checkpoints.run_dir(source)
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    if grids:
        atomic_write_bytes(out / "samples.png", grids[-1].read_bytes())
    card_text = card.model_card(run_dir, state, G, curves.read_metrics(run_dir, missing_ok=True),
                                "samples.png" if grids else None)
    atomic_write_text(out / card.CARD, card_text)
    return [out / name, out / META, out / card.CARD]

"""Faster kernels for the reference networks of `sagan.models`, installed on built networks by `train.kernels=auto`.

`install(net)` gives each layer that has a kernel here a subclass of its own class with that kernel mixed in: the
parameters, buffers and state-dict keys stay as they are, and so does the math, to float tolerance (the tests
compare both paths, gradients and double backward included). `train.kernels=plain` leaves the networks as written.
"""

from dataclasses import dataclass
from functools import cache

from torch import nn

from ..models.attention import SelfAttention
from ..models.layers import SpectralNorm
from . import spectral_norm
from .attention import KernelAttention
from .conv import SmallMapConv2d, SmallMapConvTranspose2d
from .spectral_norm import MultiTensorSpectralNorm

MODES = ("auto", "plain")  # train.kernels: auto = install where they help; plain = the reference networks only


@dataclass(frozen=True)
class Thresholds:
    """When each kernel runs: where it measured faster than PyTorch's own path (benchmarks/RESULTS.md)."""

    # Attention scores per image up to which the CPU runs chunked matmuls (N = 1024, a 32x32 map): faster there
    # than the fused kernel; above it, the fused kernel in linear memory.
    attention_cpu_max_scores: int = 2**20
    # Bytes of scores per chunk on the CPU: several whole images per matmul give each thread whole images.
    attention_cpu_chunk_bytes: int = 2**24
    # On other devices, whole-batch scores up to N = 512 positions ...
    attention_max_scores: int = 2**18
    # ... while the batch's scores fit in 128 MiB; otherwise the fused kernel.
    attention_max_batch_bytes: int = 2**27
    # Small-map convolutions: output (or transposed input) maps of at most 16 positions (4x4), beyond which
    # oneDNN is as fast ...
    conv_max_positions: int = 16
    # ... and kernels of at least 2^20 weights: on smaller ones (the demo preset's) oneDNN is faster.
    conv_min_weights: int = 2**20


THRESHOLDS = Thresholds()

# (layer class, the kernel mixed into it)
KERNELS = ((SelfAttention, KernelAttention), (nn.Conv2d, SmallMapConv2d), (nn.ConvTranspose2d, SmallMapConvTranspose2d),
           (SpectralNorm, MultiTensorSpectralNorm))


def install(net: nn.Module, thresholds: Thresholds = THRESHOLDS) -> nn.Module:
    """Mix the kernels into every layer of `net` that has one, in place; returns `net`."""
    for module in net.modules():
        for layer, kernel in KERNELS:
            if isinstance(module, layer):
                if not isinstance(module, kernel):
                    module.__class__ = _with_kernel(kernel, type(module))
                module.kernel_thresholds = thresholds
                break
    spectral_norm.attach(net)
    return net


def installed(net: nn.Module) -> list[str]:
    """The names of the modules of `net` that run a kernel of this package."""
    return [name for name, m in net.named_modules() if isinstance(m, tuple(kernel for _, kernel in KERNELS))]


@cache
def _with_kernel(kernel: type, layer: type) -> type:
    # One class per pair, so modules of one kind share their type (torch.compile guards on it).
    return type(f"{kernel.__name__}[{layer.__name__}]", (kernel, layer), {})

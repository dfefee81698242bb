"""The FID Inception network: the TF graph TTUR's FID uses, as ported by pytorch-fid and torch-fidelity.

Torchvision's Inception-v3 topology with 1008 classes and the four FID patches (the TF graph's pool branches:
average pools that do not count padding in Mixed_5b-7b, a max pool in Mixed_7c). The parameter names are those of
the published weight files (`WEIGHTS_FILE`), so they load strictly.

`InceptionFeatures` wraps it for feature extraction: uint8 images in, `pool3` / `logits` / `logits_unbiased` out,
with the TTUR / torch-fidelity preprocessing (or clean-fid's). For speed it runs the network prepared for inference:
batch norm folded into the convolutions, the 1x1 convolutions that read the same block input merged into one, ReLU
fused into the convolution, channels_last memory (on the CPU, and in bf16); the same function up to float rounding.
"""

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .preprocess import RESIZE_MODES, preprocess
from .weights import fetch_weights, load_strict, state_digest

NUM_CLASSES = 1008
INPUT_SIZE = 299
WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
WEIGHTS_MIRROR = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_FILE_TORCH_FIDELITY = "weights-inception-2015-12-05-6726825d.pth"  # the same bytes, as torch-fidelity saves it
WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV = "SAGAN_INCEPTION_WEIGHTS"
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics (eps 0.001, the TF graph's): the four tensors of the published files,
    without the `num_batches_tracked` counter that `nn.BatchNorm2d` would add when loading them."""

    def __init__(self, channels: int, eps: float = 0.001):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_args):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_args)
        self.bn = FrozenBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=1, padding=1)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    heads = ("branch1x1", "branch5x5_1", "branch3x3dbl_1")
    pool_branch = staticmethod(_avg_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b5, b3, bp = _heads(self, x)
        b5 = self.branch5x5_2(b5)
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(b3))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    heads = ("branch1x1", "branch7x7_1", "branch7x7dbl_1")
    pool_branch = staticmethod(_avg_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b7, bd, bp = _heads(self, x)
        b7 = self.branch7x7_3(self.branch7x7_2(b7))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(bd))))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    heads = ("branch3x3_1", "branch7x7x3_1")
    pool_branch = None  # its max pool is a separate branch with stride 2, not a head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3, b7 = _heads(self, x)
        b3 = self.branch3x3_2(b3)
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(b7)))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b (average pool branch) and Mixed_7c (max pool branch, one of the FID patches)."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        self.pool_branch = {"avg": _avg_pool, "max": _max_pool}[pool]
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    heads = ("branch1x1", "branch3x3_1", "branch3x3dbl_1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b3, bd, bp = _heads(self, x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(bd)
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([b1, b3, bd, bp], 1)


def _heads(block: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of a block's 1x1 convolutions on its input, in `block.heads` order, then its pool branch."""
    if hasattr(block, "fused_heads"):
        return block.fused_heads(x)
    outputs = [getattr(block, name)(x) for name in block.heads]
    if block.pool_branch is not None:
        outputs.append(block.branch_pool(block.pool_branch(x)))
    return outputs


class FIDInceptionV3(nn.Module):
    """The FID Inception network in the published weight files' parameter layout (472 tensors)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised 299x299 images -> pool3 features (N x 2048)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class ConvReLU(nn.Conv2d):
    """Convolution with bias, then ReLU; on the CPU one oneDNN call with the ReLU fused into it, which saves a
    pass over each activation (large at 147x147) and ~10% of the network's time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and _FUSED_CONV_RELU is not None:
            return _FUSED_CONV_RELU(x, self.weight, self.bias, list(self.padding), list(self.stride), [1, 1], 1,
                                    "relu", [], "")
        return F.relu(super().forward(x))


# The op torch.compile lowers conv + ReLU to on the CPU (private; a plain conv and ReLU where it is missing).
_FUSED_CONV_RELU = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() \
    else None


def fold(layer: BasicConv2d) -> ConvReLU:
    """Conv -> BN -> ReLU as one convolution with bias and a ReLU (inference only)."""
    return _holding(ConvReLU, *_folded(layer), stride=layer.conv.stride, padding=layer.conv.padding)


def _folded(layer: BasicConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    bn = layer.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return layer.conv.weight * scale.view(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


def _holding(cls, weight: torch.Tensor, bias: torch.Tensor, **conv_args) -> nn.Conv2d:
    """A `cls` convolution with the given weight and bias (made on the meta device: no initialisation to waste)."""
    conv = cls(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), device="meta", **conv_args)
    conv.weight, conv.bias = nn.Parameter(weight, requires_grad=False), nn.Parameter(bias, requires_grad=False)
    return conv


class FusedHeads(nn.Module):
    """A block's 1x1 convolutions on its input, batch norm folded in, run as one wider convolution (one pass over
    the input instead of three), then its pool branch."""

    def __init__(self, block: nn.Module):
        super().__init__()
        weights, biases = zip(*(_folded(getattr(block, name)) for name in block.heads))
        self.conv = _holding(ConvReLU, torch.cat(weights), torch.cat(biases))
        self.sizes = [w.shape[0] for w in weights]
        self.pool = block.pool_branch
        self.pool_conv = fold(block.branch_pool) if self.pool is not None else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = list(self.conv(x).split(self.sizes, 1))
        if self.pool_conv is not None:
            outputs.append(self.pool_conv(self.pool(x)))
        return outputs


def prepare_for_inference(net: FIDInceptionV3) -> FIDInceptionV3:
    """Rewrite `net` in place for inference: batch norm folded into every convolution, each block's 1x1
    convolutions merged, ReLU fused. Computes the same function up to float rounding; its state dict is no longer
    the published format.
    """
    with torch.no_grad():
        for block in [net, *net.children()]:
            if hasattr(block, "heads"):
                block.fused_heads = FusedHeads(block)
                for name in (*block.heads, "branch_pool"):
                    if hasattr(block, name):
                        delattr(block, name)
            for name, child in list(block.named_children()):
                if isinstance(child, BasicConv2d):
                    setattr(block, name, fold(child))
    return net.eval()


class InceptionFeatures(nn.Module):
    """FID Inception features of uint8 images.

    `weights`: None (the published file: `SAGAN_INCEPTION_WEIGHTS`, the torch hub cache, or a download), a path, or
    a state dict. `resize`: "tf1" (TTUR / torch-fidelity: TF1 bilinear, the default for comparable FID) or "clean"
    (clean-fid: PIL bicubic). `fast=False` runs the network as published (unfused, NCHW), for comparisons.
    `precision`: "fp32" (IEEE float32 even where TF32 or reduced-precision convolutions are switched on globally,
    as the reference computes) or "bf16" (bfloat16 weights and activations: ~1.6-2x faster on CPUs with
    AVX512-BF16, but pool3 moves by ~0.5% (measured with random weights), so its scores are not comparable with
    published ones; `preprocessing` says so).

    Calling it on an N x C x H x W uint8 tensor (C = 3, or 1 for grey images) returns float32 tensors
    {"pool3": N x 2048, "logits": N x 1008, "logits_unbiased": N x 1008} on the module's device.
    `weights_sha256` and `preprocessing` identify the weights and the pipeline, for keying cached statistics.
    """

    def __init__(self, weights=None, resize: str = "tf1", device=None, fast: bool = True, precision: str = "fp32"):
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ConfigError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if isinstance(weights, dict):
            state, self.weights_sha256 = weights, "provided-state-dict-" + state_digest(weights)
        else:
            state, self.weights_sha256 = fetch_weights(
                [WEIGHTS_URL, WEIGHTS_MIRROR], WEIGHTS_SHA256_PREFIX, [WEIGHTS_FILE, WEIGHTS_FILE_TORCH_FIDELITY],
                path=weights, env_var=WEIGHTS_ENV, what="FID Inception weights", option="--inception-weights")
        with torch.device("meta"):  # parameters come from `state`: skip initialising 24M of them
            net = FIDInceptionV3()
        load_strict(net, state, weights, WEIGHTS_ENV,
                    "FID Inception weights in the pytorch-fid / torch-fidelity format")
        self.resize = resize
        self.preprocessing = {"tf1": "tf1-bilinear-299", "clean": "clean-bicubic-299"}[resize]
        self.preprocessing += "" if precision == "fp32" else f"-{precision}"
        self.fast, self.dtype = fast, PRECISIONS[precision]
        net.float().requires_grad_(False)
        self.net = prepare_for_inference(net) if fast else net
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        # channels_last helps oneDNN, and cuDNN in bf16; cuDNN's IEEE float32 kernels are faster in NCHW (H100:
        # 2,250 vs 1,870 images/s).
        self.memory_format = (torch.channels_last if fast and (self.device.type == "cpu" or precision != "fp32")
                              else torch.contiguous_format)
        self.net.to(self.device, self.dtype, memory_format=self.memory_format)
        self.net.fc.float()  # logits from float32 pool3, in float32
        self.eval()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 images N x 3 x H x W (or N x 1 x H x W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        with torch.inference_mode(), _ieee_float32():
            x = preprocess(images.to(self.device), self.resize, INPUT_SIZE).to(self.dtype)
            x = x.contiguous(memory_format=self.memory_format)
            pool3 = self.net(x).float()
            logits_unbiased = pool3 @ self.net.fc.weight.T
            logits = logits_unbiased + self.net.fc.bias
        return {"pool3": pool3, "logits": logits, "logits_unbiased": logits_unbiased}


@contextlib.contextmanager
def _ieee_float32():
    """Float32 convolutions and matmuls in full precision for the duration (TF32 is on by default for cuDNN
    convolutions; a user may have allowed TF32 or bf16 elsewhere), restoring the global settings after."""
    backends = [getattr(getattr(torch.backends, backend), op, None)
                for backend, op in (("cudnn", "conv"), ("cuda", "matmul"), ("mkldnn", "conv"), ("mkldnn", "matmul"))]
    backends = [b for b in backends if hasattr(b, "fp32_precision")]
    saved = [b.fp32_precision for b in backends]
    try:
        for b in backends:
            b.fp32_precision = "ieee"
        yield
    finally:
        for b, value in zip(backends, saved):
            b.fp32_precision = value


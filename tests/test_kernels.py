"""`train.kernels=auto` computes what `plain` does: the whole training step, and each attention kernel by size."""

import copy

import pytest
import torch
from conftest import needs_cuda, tiny_config
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from sagan import kernels
from sagan.benchmarks.ops import count_ops
from sagan.kernels.attention import ChunkedAttention, images_per_chunk
from sagan.models import SelfAttention, attention_layers, build_discriminator, build_generator
from sagan.models.layers import LayerFactory
from sagan.runtime import seed_everything
from sagan.training.gan import GANTraining

# Every kernel on the tiny networks: small-map convolutions for their small kernels, attention three images at a
# time (16x16 maps in float32: 3 * 256^2 * 4 bytes of scores).
EVERYWHERE = kernels.Thresholds(conv_min_weights=0, attention_cpu_chunk_bytes=3 * 256**2 * 4)


def train_steps(cfg, steps: int, thresholds: kernels.Thresholds | None = None) -> list[dict[str, float]]:
    """The losses of `steps` D+G steps on fixed random images from the config's seed, in float64: Adam turns a
    gradient at float32 rounding level (a WGAN critic's last bias, say) into a step of ±lr, which would make the
    two paths part after a step or two, whereas float64 rounding stays far below Adam's eps."""
    torch.set_default_dtype(torch.float64)
    try:
        seed_everything(cfg.train.seed)
        gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=1)
        for net in (gan.G, gan.D, gan.G_ema):
            if thresholds is not None:
                kernels.install(net, thresholds)
            for block in attention_layers(net).values():
                block.gamma.data.fill_(0.5)  # as trained: a fresh block's gamma = 0 would hide its output
        real = torch.rand(cfg.train.batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
        losses = []
        for step in range(1, steps + 1):
            stats = gan.d_step(real, None) | gan.g_step(cfg.train.batch_size)
            gan.update_ema(step)
            losses.append({k: v.item() for k, v in stats.items()})
        return losses
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("form", ["paper", "official", "popular"])
@pytest.mark.parametrize("penalty", [{"train.loss": "wgan-gp"}, {"train.r1_weight": 1.0}], ids=["gp", "r1"])
def test_auto_and_plain_kernels_give_the_same_losses(arch, form, penalty):
    cfg = {"model.arch": arch, "model.attention": form, "model.g_attention": [16], "model.d_attention": [8],
           "train.channels_last": False} | penalty
    plain = train_steps(tiny_config(**cfg, **{"train.kernels": "plain"}), steps=5)
    auto = train_steps(tiny_config(**cfg, **{"train.kernels": "auto"}), steps=5, thresholds=EVERYWHERE)
    for want, got in zip(plain, auto, strict=True):
        assert want.keys() == got.keys() and {"gp", "r1"} & want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_multi_tensor_spectral_norm_computes_the_reference_weights_vectors_and_gradients(arch):
    # dcgan: transposed convolutions in G (output channels in dim 1); both: D's projection embedding, and a frozen
    # layer (no weight gradient) among the others.
    cfg = tiny_config(**{"model.arch": arch, "model.num_classes": 3}).model
    torch.manual_seed(0)
    nets = [build_generator(cfg, 32, 3).double(), build_discriminator(cfg, 32, 3).double()]
    for net in nets:
        next(net.parameters()).requires_grad_(False)
    inputs = [(torch.randn(4, cfg.z_dim, dtype=torch.float64),), (torch.randn(4, 3, 32, 32, dtype=torch.float64),)]
    y = torch.tensor([0, 1, 2, 1])
    for net, x in zip(nets, inputs):
        plain, fast = copy.deepcopy(net), kernels.install(copy.deepcopy(net))
        for _ in range(3):  # three power iterations
            for model in (plain, fast):
                model.zero_grad()
                model(*x, y).square().mean().backward()
            for (name, want), got in zip(plain.state_dict().items(), fast.state_dict().values()):
                torch.testing.assert_close(got, want, msg=name)
            for (name, want), got in zip(plain.named_parameters(), fast.parameters()):
                assert (want.grad is None) == (got.grad is None), name
                if want.grad is not None:
                    torch.testing.assert_close(got.grad, want.grad, msg=name)
        # In eval mode (no power iteration) and outside a forward of the whole network: the reference path.
        fast.eval(), plain.eval()
        torch.testing.assert_close(fast(*x, y), plain(*x, y))


def test_multi_tensor_spectral_norm_launches_a_few_operators_per_layer():
    x = torch.randn(2, 4, 5, 5)
    per_layer = {}
    for installed in (False, True):
        counts = []
        for layers in (2, 8):
            net = nn.Sequential(*[LayerFactory().conv(4, 4, 3, padding=1) for _ in range(layers)])
            if installed:
                kernels.install(net)
            counts.append(count_ops(lambda net=net: net(x).sum().backward())["kernel_ops"])
        per_layer[installed] = (counts[1] - counts[0]) / 6
    # Each layer's own convolution and its backward, two matrix-vector products, a sum and an addcmul; the
    # normalisations are foreach operators for all layers at once. The reference: some twenty more per layer.
    assert per_layer[True] <= 6 and per_layer[False] >= 3 * per_layer[True]


def test_auto_installs_the_kernels_and_plain_none():
    for mode, expected in (("plain", False), ("auto", True)):
        gan = GANTraining(tiny_config(**{"train.kernels": mode}), torch.device("cpu"), batches_per_epoch=1)
        names = kernels.installed(gan.D)
        assert bool(names) == expected and all(bool(kernels.installed(net)) == expected for net in (gan.G, gan.G_ema))
        # The state-dict keys are the plain network's: checkpoints load either way.
        assert gan.D.state_dict().keys() == GANTraining(tiny_config(), torch.device("cpu"), 1).D.state_dict().keys()


class OpNames(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__)
        return func(*args, **(kwargs or {}))


FLASH = "_scaled_dot_product_flash_attention_for_cpu"


def kernel_attention(thresholds: kernels.Thresholds) -> SelfAttention:
    return kernels.install(SelfAttention(32), thresholds)


@pytest.mark.parametrize("thresholds, kernel_names, absent", [
    # no chunk fits: the fused kernel
    (kernels.Thresholds(attention_cpu_max_scores=0), {FLASH, FLASH + "_backward"}, {"_softmax"}),
    # 2 images at a time, recomputed, softmax written over the scores (`softmax.int_out`)
    (kernels.Thresholds(attention_cpu_chunk_bytes=2 * 64**2 * 4), {"bmm", "softmax"},
     {FLASH, "_softmax_backward_data"}),
    # the whole batch: plain autograd
    (kernels.Thresholds(attention_cpu_chunk_bytes=2**30), {"bmm", "_softmax", "_softmax_backward_data"}, {FLASH}),
])
def test_attention_kernels_by_chunk_size_compute_the_same(thresholds, kernel_names, absent):
    torch.manual_seed(0)
    q, k, v = (torch.randn(5, 64, d, requires_grad=True) for d in (4, 4, 32))
    with OpNames() as ops:
        out = kernel_attention(thresholds).attend(q, k, v)
        out.square().sum().backward()
    names = {name.split(".")[0] for name in ops.names}
    assert kernel_names <= names and not absent & names, names
    q2, k2, v2 = (t.detach().double().requires_grad_() for t in (q, k, v))
    expected = SelfAttention(32).attend(q2, k2, v2)  # the reference block's
    expected.square().sum().backward()
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
    for got, want in zip((q.grad, k.grad, v.grad), (q2.grad, k2.grad, v2.grad)):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


def test_chunked_attention_has_first_and_second_derivatives():
    # Second derivatives: WGAN-GP's penalty differentiates D's input gradient again. Fewer keys than queries: the
    # official form's pooled keys. Three images in chunks of two.
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, n, d, dtype=torch.float64, requires_grad=True) for n, d in ((6, 2), (5, 2), (5, 4)))

    def chunked(*args):
        return ChunkedAttention.apply(*args, 2)

    assert torch.autograd.gradcheck(chunked, (q, k, v))
    assert torch.autograd.gradgradcheck(chunked, (q, k, v))
    assert torch.autograd.gradgradcheck(chunked, (q, k.detach(), v))  # some inputs without gradients


def test_chunked_attention_in_bfloat16_is_as_close_as_plain_autograd():
    torch.manual_seed(0)
    q, k = (torch.randn(4, 256, 8) for _ in range(2))
    v, grad = torch.randn(4, 256, 64), torch.randn(4, 256, 64)

    def run(fn, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        out = fn(*leaves)
        out.backward(grad.to(dtype))
        return [t.double() for t in (out.detach(), *(leaf.grad for leaf in leaves))]

    def plain(a, b, c):
        return torch.softmax(a @ b.transpose(1, 2), dim=-1) @ c

    exact = run(plain, torch.float64)
    autograd = run(plain, torch.bfloat16)
    chunked = run(lambda a, b, c: ChunkedAttention.apply(a, b, c, 1), torch.bfloat16)
    for want, reference, got in zip(exact, autograd, chunked):
        # bf16 rounding of the recomputed scores' gradient: within a quarter more error than autograd's
        assert (got - want).norm() <= 1.25 * (reference - want).norm()


# Chunking rules under stated thresholds (not the tuned defaults): up to 2^20 scores per image in 16 MiB chunks on
# the CPU; elsewhere whole batches up to 2^18 scores per image and 128 MiB per batch.
CHUNKS = kernels.Thresholds(attention_cpu_max_scores=2**20, attention_cpu_chunk_bytes=2**24,
                            attention_max_scores=2**18, attention_max_batch_bytes=2**27)


@pytest.mark.parametrize("batch, positions, dtype, expected", [
    (64, 8 * 8, torch.float32, 64),  # small maps: the whole batch at once
    (128, 16 * 16, torch.float32, 64),  # 16 MiB of scores per chunk
    (64, 32 * 32, torch.float32, 4),  # a 32x32 map: four images' scores at a time in float32
    (64, 32 * 32, torch.bfloat16, 8),  # ... and eight in bfloat16
    (64, 64 * 32, torch.float32, 0),  # above the scores per image: the fused kernel
    (256, 32 * 32, torch.bfloat16, 8),  # memory bounded by the chunk, not the batch
    (1, 64 * 64, torch.bfloat16, 0),  # however few images
])
def test_attention_chunks_by_speed_and_memory(batch, positions, dtype, expected):
    q = torch.empty(batch, positions, 8, dtype=dtype)
    assert images_per_chunk(q, q, CHUNKS) == expected


def test_other_devices_materialise_whole_batches_or_none():
    q = torch.empty(64, 32 * 32, 8, dtype=torch.bfloat16, device="meta")
    assert images_per_chunk(q, q, CHUNKS) == 0  # 2^20 scores per image
    q = torch.empty(64, 32 * 16, 8, device="meta")
    assert images_per_chunk(q, q, CHUNKS) == 64  # 2^18 scores per image, 64 MiB for the batch
    q = torch.empty(256, 32 * 16, 8, device="meta")
    assert images_per_chunk(q, q, CHUNKS) == 0  # 256 MiB


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("value_dim", [64, 512])
def test_large_attention_on_cuda_runs_a_fused_kernel(dtype, value_dim):
    # The flash kernel takes head sizes up to 256 in half precision, the memory-efficient one float32 and larger
    # heads; either keeps memory linear in N. The math fallback would show as `_softmax`.
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 1024, d, device="cuda", dtype=dtype, requires_grad=True) for d in (8, 8, value_dim))
    with OpNames() as ops:
        out = kernel_attention(kernels.Thresholds(attention_max_scores=0)).attend(q, k, v)
        out.float().square().sum().backward()
    names = {name.split(".")[0] for name in ops.names}
    assert "_softmax" not in names and "bmm" not in names, names
    q2, k2, v2 = (t.detach().double().requires_grad_() for t in (q, k, v))
    expected = torch.softmax(q2 @ k2.transpose(1, 2), dim=-1) @ v2
    expected.square().sum().backward()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)
    for got, want in zip((q.grad, k.grad, v.grad), (q2.grad, k2.grad, v2.grad)):
        assert (got.double() - want).norm() <= tol * want.norm()

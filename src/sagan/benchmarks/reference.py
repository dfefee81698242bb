"""The baseline for `sagan bench train --compare-reference`: a SAGAN train step written the way the popular PyTorch
SAGAN repository (heykeetae/Self-Attention-GAN) writes it, from its description, not copied from it.

What makes it "the reference way": fp32, NCHW; its own `SpectralNorm` wrapper module that keeps `weight_u`,
`weight_v` (frozen parameters) and `weight_bar` and runs one power iteration on every forward; self-attention as
`torch.bmm` of the full N x N energy matrix followed by `softmax`; default PyTorch init; and a training step that
calls D on the real and on the fake batch separately, backpropagates the D loss through G as well (the fake batch is
not detached; G's gradients are zeroed before its own update), then draws a new z, regenerates G(z) and updates G
with D's weights still requiring gradients. Hinge loss, Adam(0, 0.9) with lr 1e-4 (G) / 4e-4 (D).

At 64x64 with `conv_dim=64` the networks have exactly the trainable parameters of sagan's `dcgan64` preset
(G 3,832,885, D 3,175,299); other power-of-two resolutions add or remove one block per octave as sagan's `dcgan`
backbone does, so the same comparison runs at 128x128.
"""

from collections.abc import Sequence

import torch
from torch import nn


def l2normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / (v.norm() + eps)


class SpectralNorm(nn.Module):
    """Wraps a layer; before every forward, one power iteration estimates sigma, then weight = weight_bar / sigma."""

    def __init__(self, module: nn.Module, power_iterations: int = 1):
        super().__init__()
        self.module, self.power_iterations = module, power_iterations
        w = module.weight
        height = w.shape[0]
        width = w.view(height, -1).shape[1]
        u = nn.Parameter(l2normalize(w.data.new_empty(height).normal_(0, 1)), requires_grad=False)
        v = nn.Parameter(l2normalize(w.data.new_empty(width).normal_(0, 1)), requires_grad=False)
        del module._parameters["weight"]
        module.register_parameter("weight_u", u)
        module.register_parameter("weight_v", v)
        module.register_parameter("weight_bar", nn.Parameter(w.data))

    def _update_u_v(self) -> None:
        u, v, w = self.module.weight_u, self.module.weight_v, self.module.weight_bar
        height = w.shape[0]
        for _ in range(self.power_iterations):
            v.data = l2normalize(torch.mv(torch.t(w.view(height, -1).data), u.data))
            u.data = l2normalize(torch.mv(w.view(height, -1).data, v.data))
        sigma = u.dot(w.view(height, -1).mv(v))
        self.module.weight = w / sigma.expand_as(w)

    def forward(self, *args):
        self._update_u_v()
        return self.module.forward(*args)


class SelfAttn(nn.Module):
    """query/key 1x1 convs to C/8, value to C; energy = q^T k as one (B, N, N) bmm; out = gamma * v attn^T + x."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, width, height = x.size()
        proj_query = self.query_conv(x).view(b, -1, width * height).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(b, -1, width * height)
        energy = torch.bmm(proj_query, proj_key)
        attention = self.softmax(energy)
        proj_value = self.value_conv(x).view(b, -1, width * height)
        out = torch.bmm(proj_value, attention.permute(0, 2, 1)).view(b, c, width, height)
        return self.gamma * out + x, attention


class Generator(nn.Module):
    def __init__(self, image_size: int = 64, z_dim: int = 128, conv_dim: int = 64,
                 attention: Sequence[int] = (16, 32)):
        super().__init__()
        self.z_dim = z_dim
        ch = conv_dim * image_size // 8
        layers: list[nn.Module] = [SpectralNorm(nn.ConvTranspose2d(z_dim, ch, 4)), nn.BatchNorm2d(ch), nn.ReLU()]
        res = 4
        while res < image_size // 2:
            res *= 2
            layers += [SpectralNorm(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1)), nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
            if res in attention:
                layers.append(SelfAttn(ch))
        self.layers = nn.ModuleList(layers)
        self.last = nn.Sequential(nn.ConvTranspose2d(ch, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out, maps = run_layers(self.layers, z.view(z.size(0), z.size(1), 1, 1))
        return self.last(out), maps


def run_layers(layers: nn.ModuleList, out: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Apply `layers` in order, collecting the attention maps of the SelfAttn layers (the reference returns them)."""
    maps = []
    for layer in layers:
        if isinstance(layer, SelfAttn):
            out, p = layer(out)
            maps.append(p)
        else:
            out = layer(out)
    return out, maps


class Discriminator(nn.Module):
    def __init__(self, image_size: int = 64, conv_dim: int = 64, attention: Sequence[int] = (8, 4)):
        super().__init__()
        layers: list[nn.Module] = []
        ch_in, ch, res = 3, conv_dim, image_size
        while res > 4:
            res //= 2
            layers += [SpectralNorm(nn.Conv2d(ch_in, ch, 4, 2, 1)), nn.LeakyReLU(0.1)]
            if res in attention:
                layers.append(SelfAttn(ch))
            ch_in, ch = ch, ch * 2
        self.layers = nn.ModuleList(layers)
        self.last = nn.Conv2d(ch_in, 1, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out, maps = run_layers(self.layers, x)
        return self.last(out).squeeze(), maps


class ReferenceTraining:
    """G, D and their Adam optimisers; `step(real)` is one D update and one G update, as the reference trains."""

    def __init__(self, device: torch.device | str = "cpu", image_size: int = 64, z_dim: int = 128,
                 conv_dim: int = 64, g_attention: Sequence[int] = (16, 32), d_attention: Sequence[int] = (8, 4),
                 lr_g: float = 1e-4, lr_d: float = 4e-4, betas: tuple[float, float] = (0.0, 0.9)):
        self.device = torch.device(device)
        self.G = Generator(image_size, z_dim, conv_dim, g_attention).to(self.device)
        self.D = Discriminator(image_size, conv_dim, d_attention).to(self.device)
        self.g_optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, self.G.parameters()), lr_g, betas)
        self.d_optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, self.D.parameters()), lr_d, betas)

    def reset_grad(self) -> None:
        self.d_optimizer.zero_grad()
        self.g_optimizer.zero_grad()

    def step(self, real_images: torch.Tensor) -> dict[str, float]:
        self.D.train()
        self.G.train()
        real_images = real_images.to(self.device)
        n = real_images.size(0)

        d_out_real, _ = self.D(real_images)
        d_loss_real = torch.relu(1.0 - d_out_real).mean()
        z = torch.randn(n, self.G.z_dim, device=self.device)
        fake_images, _ = self.G(z)
        d_out_fake, _ = self.D(fake_images)
        d_loss_fake = torch.relu(1.0 + d_out_fake).mean()
        d_loss = d_loss_real + d_loss_fake
        self.reset_grad()
        d_loss.backward()
        self.d_optimizer.step()

        z = torch.randn(n, self.G.z_dim, device=self.device)
        fake_images, _ = self.G(z)
        g_out_fake, _ = self.D(fake_images)
        g_loss = -g_out_fake.mean()
        self.reset_grad()
        g_loss.backward()
        self.g_optimizer.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


def trainable_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)

"""Spectral norm for a whole network in a few multi-tensor operations.

The reference layer (`models.layers.SpectralNorm`) runs its power iteration and division layer by layer: some
twenty small operators per layer in each forward pass and its backward, most of an eager training step's operators.
Here a forward pre-hook on the network does every layer's at once with foreach operators, each layer returns the
weight computed for it, and one autograd function gives all their gradients. The math is the reference's:
u <- normalize(W v), v <- normalize(W^T u), and sigma = u^T W v, which for that v is ||W^T u||; with u and v held,
both have the gradient u v^T.
"""

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.utils import parametrize

GROUP = "_spectral_norm_group"  # the attribute of the network that holds its layers' (SpectralNorm, parametrization)


class MultiTensorSpectralNorm:
    """Mixed into SpectralNorm by `sagan.kernels.install`: returns the weight its network's pre-forward hook
    computed, or (outside such a forward, in eval mode, under torch.compile) the reference's."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        ready = None if torch.compiler.is_compiling() else self.__dict__.pop("_ready", None)
        return super().forward(weight) if ready is None else ready


def attach(net: nn.Module) -> None:
    """Normalise all of `net`'s spectrally normalised layers at once in each of its training forwards (again on the
    same network: refreshes the layer list)."""
    group = [(plist[0], plist) for m in net.modules() if parametrize.is_parametrized(m)
             for plist in m.parametrizations.values() if isinstance(plist[0], MultiTensorSpectralNorm)]
    for m in net.modules():
        if GROUP in m.__dict__:
            m.__dict__[GROUP] = []  # a part installed on its own: the whole network's hook now does its layers
    if GROUP not in net.__dict__:
        net.register_forward_pre_hook(_normalise)
        net.register_forward_hook(_clear)
    net.__dict__[GROUP] = group


def normalise(layers: list[nn.Module], weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """One power iteration of each layer (updating its vectors) and its weight divided by its sigma."""
    eps = [sn.eps for sn in layers]
    with torch.no_grad():
        matrices = [sn._matrix(w) for sn, w in zip(layers, weights)]
        u = _normalised([torch.mv(m, sn._v) for m, sn in zip(matrices, layers)], eps)
        w_t_u = [torch.mv(m.H, u_i) for m, u_i in zip(matrices, u)]
        sigma = torch._foreach_norm(w_t_u)
        v = _normalised(w_t_u, eps, sigma)
        torch._foreach_copy_([sn._u for sn in layers], u)
        torch._foreach_copy_([sn._v for sn in layers], v)
    return list(Divide.apply(layers, sigma, u, v, *weights))


class Divide(torch.autograd.Function):
    """Each weight W divided by its sigma = u^T W v (u, v held): one foreach division; the backward pass,
    G / sigma - <G, W / sigma> / sigma * u v^T, in two operators per layer."""

    @staticmethod
    def forward(ctx, layers, sigma, u, v, *weights):
        ready = torch._foreach_div(weights, sigma)
        ctx.save_for_backward(*ready)
        ctx.layers, ctx.sigma, ctx.u, ctx.v = layers, sigma, u, v
        return tuple(ready)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        ready = ctx.saved_tensors
        inverse = torch._foreach_reciprocal(ctx.sigma)
        dots = [p.sum() for p in torch._foreach_mul(grads, ready)]
        u = torch._foreach_mul(ctx.u, torch._foreach_mul(dots, inverse))
        grads = torch._foreach_mul(grads, inverse)
        weight_grads = [torch.addcmul(g, *_outer_factors(sn, g.shape, u_i, v_i), value=-1)
                        for sn, g, u_i, v_i in zip(ctx.layers, grads, u, ctx.v)]
        return None, None, None, None, *weight_grads


def _outer_factors(sn: nn.Module, shape: torch.Size, u: torch.Tensor, v: torch.Tensor):
    """u and v shaped to broadcast to u v^T in the weight's own shape: u along sn.dim (the output channels), v over
    the other dims, in their order."""
    u_shape, v_shape = [1] * len(shape), list(shape)
    u_shape[sn.dim], v_shape[sn.dim] = shape[sn.dim], 1
    return u.view(u_shape), v.view(v_shape)


def _normalised(vectors: list[torch.Tensor], eps: list[float], norms: list[torch.Tensor] | None = None):
    """F.normalize of each vector: divided by max(its norm, eps)."""
    norms = torch._foreach_norm(vectors) if norms is None else norms
    return torch._foreach_div(vectors, torch._foreach_clamp_min(norms, eps))


def _normalise(net: nn.Module, args) -> None:
    # The reference path under torch.compile (which fuses it anyway) and when any layer is in eval mode (no power
    # iteration).
    if torch.compiler.is_compiling():
        return
    group = net.__dict__[GROUP]
    if not group or not all(sn.training for sn, _ in group):
        return
    weights = [plist.original for _, plist in group]
    with torch.autocast(weights[0].device.type, enabled=False):  # float32 sigma, as the reference's
        ready = normalise([sn for sn, _ in group], weights)
    for (sn, _), weight in zip(group, ready):
        sn._ready = weight


def _clear(net: nn.Module, args, output) -> None:
    # A layer the forward did not use must not hand this forward's weight to a later one.
    if torch.compiler.is_compiling():
        return
    for sn, _ in net.__dict__[GROUP]:
        sn.__dict__.pop("_ready", None)

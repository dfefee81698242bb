"""Where the discriminator's decision comes from: the gradient of its output with respect to the input image
(Simonyan, Vedaldi and Zisserman 2014) and Grad-CAM on one of its blocks (Selvaraju et al. 2017)."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import attention, layout


def default_block(D: nn.Module) -> str:
    """The block Grad-CAM looks at unless told: the last one with at least 8x8 outputs (coarse enough to be
    semantic, fine enough to point somewhere), else the first."""
    names = [name for name in D.blocks if name.startswith("block")]
    sized = [name for name in names if int("".join(filter(str.isdigit, name))) >= 8]
    return sized[-1] if sized else names[0]


def score(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, target: int | None) -> torch.Tensor:
    """D's output per image; with a `target` class, only the projection term of that class."""
    if target is None:
        return D(x, labels)
    if getattr(D, "embed", None) is None:
        raise ConfigError("--class: this discriminator is not class-conditional; leave it out")
    if not 0 <= target < D.embed.num_embeddings:
        raise ConfigError(f"--class: {target} is not a class of this run (0..{D.embed.num_embeddings - 1})")
    return D.terms(x, torch.full((len(x),), target, dtype=torch.long, device=x.device))[1]


def input_gradient(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None,
                   target: int | None = None) -> torch.Tensor:
    """(B, H, W): |d score / d pixel|, the largest over the colour channels."""
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(score(D, x, labels, target).sum(), x)
    return grad.abs().amax(dim=1)


def grad_cam(D: nn.Module, x: torch.Tensor, block: str, labels: torch.Tensor | None = None,
             target: int | None = None) -> torch.Tensor:
    """(B, H, W): ReLU(sum_c alpha_c A_c) of the block's output A, alpha_c the spatial mean of d score / d A_c,
    scaled bilinearly to the image."""
    if block not in D.blocks:
        raise ConfigError(f"--block: no discriminator block '{block}'; choose from {', '.join(D.blocks)}")
    x = x.detach().requires_grad_()  # a graph through D even where its weights need no gradients
    kept = {}
    handle = D.blocks[block].register_forward_hook(lambda module, args, output: kept.setdefault("A", output))
    try:
        s = score(D, x, labels, target).sum()
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(s, kept["A"])
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * kept["A"]).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def figure(D: nn.Module, images: np.ndarray, labels: torch.Tensor | None, block: str | None = None,
           target: int | None = None, title: str = "") -> np.ndarray:
    """One row per image: the image, its input-gradient saliency and its Grad-CAM on `block`, as heat over the
    image (each map scaled to its maximum)."""
    block = block or default_block(D)
    device = next(D.parameters()).device
    was_training = D.training
    D.eval()  # no power-iteration or batch-norm updates from looking at D
    try:
        x = attention.to_tensor(images).to(device)
        y = None if labels is None else labels.to(device)
        maps = [input_gradient(D, x, y, target), grad_cam(D, x, block, y, target)]
    finally:
        D.train(was_training)
    maps = [m.detach().float().cpu().numpy() for m in maps]
    height, width = images.shape[1:3]
    scale = layout.readable_scale(max(height, width))
    size = width * scale
    what = "D's output" if target is None else f"the projection term of class {target}"
    header = layout.stack([layout.label(text, size, size=13) for text in
                           ("image", "input gradient", f"Grad-CAM, {block}")], gap=6)
    rows = [header]
    for b in range(len(images)):
        image = layout.upscale(layout.rgb(images[b]), scale)
        tiles = [image] + [attention.overlay(image, np.kron(m[b], np.ones((scale, scale)))) for m in maps]
        rows.append(layout.stack(tiles, gap=6))
    notes = (f"{title}: where {what} comes from\ninput gradient: |d score / d pixel|; Grad-CAM: the {block} "
             "features weighted by their mean gradient; heat scaled to each map's maximum")
    return layout.margin(layout.stack([layout.label(notes, header.shape[1]), *rows], axis=0))

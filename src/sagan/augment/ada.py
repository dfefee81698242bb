"""Adaptive discriminator augmentation (Karras et al. 2020, arXiv 2006.06676): StyleGAN2-ADA's `bgc` pipeline
(flips, 90-degree rotations, integer translation; isotropic and anisotropic scaling, rotation, fractional
translation; brightness, contrast, luma flip, hue, saturation), each transform applied to each image with one
probability p, which a controller moves towards the D overfitting signal r_t = E[sign(D(real))] = target.

The geometric transforms are one affine map per image, resampled bilinearly with reflection at the border
(`grid_sample`); StyleGAN2-ADA resamples through a wavelet low-pass filter instead. Parameters and their spread are
StyleGAN2-ADA's defaults."""

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

# StyleGAN2-ADA's AugmentPipe defaults.
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0


def _matrix(rows: list[list], b: int, device) -> torch.Tensor:
    """A (b, n, n) batch of matrices from rows of scalars or (b,) tensors."""
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).expand(b)
                                     for v in row], -1) for row in rows], -2)


def translate(tx, ty, b, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], b, device)


def scale(sx, sy, b, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], b, device)


def rotate(theta, b, device):
    return _matrix([[torch.cos(theta), -torch.sin(theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]],
                   b, device)


def _chosen(b: int, p: float, device) -> torch.Tensor:
    """1 for the images that get a transform (each with probability p), else 0: (b,) float."""
    return (torch.rand(b, device=device) < p).float()


def geometric(b: int, p: float, size: int, device) -> torch.Tensor:
    """(b, 3, 3): each image's map from output to input coordinates (normalised to [-1, 1])."""
    def chosen(prob: float = p) -> torch.Tensor:
        return _chosen(b, prob, device)

    G = torch.eye(3, device=device).expand(b, 3, 3)
    flip = torch.floor(torch.rand(b, device=device) * 2) * chosen()
    G = G @ scale(1 - 2 * flip, 1, b, device)
    quarter = torch.floor(torch.rand(b, device=device) * 4) * chosen()
    G = G @ rotate(-math.pi / 2 * quarter, b, device)
    shift = (torch.rand(b, 2, device=device) * 2 - 1) * XINT_MAX * chosen()[:, None]
    shift = torch.round(shift * size) / size * 2  # whole pixels
    G = G @ translate(shift[:, 0], shift[:, 1], b, device)
    s = torch.exp2(torch.randn(b, device=device) * SCALE_STD * chosen())
    G = G @ scale(s, s, b, device)
    p_rotate = 1 - math.sqrt(1 - p)  # two rotations: either happens with probability p
    G = G @ rotate((torch.rand(b, device=device) * 2 - 1) * math.pi * ROTATE_MAX * chosen(p_rotate), b, device)
    s = torch.exp2(torch.randn(b, device=device) * ANISO_STD * chosen())
    G = G @ scale(s, 1 / s, b, device)
    G = G @ rotate((torch.rand(b, device=device) * 2 - 1) * math.pi * ROTATE_MAX * chosen(p_rotate), b, device)
    shift = torch.randn(b, 2, device=device) * XFRAC_STD * chosen()[:, None] * 2
    return G @ translate(shift[:, 0], shift[:, 1], b, device)


def color(b: int, p: float, device) -> torch.Tensor:
    """(b, 4, 4): each image's affine map of RGB values."""
    def chosen() -> torch.Tensor:
        return _chosen(b, p, device)

    eye = torch.eye(4, device=device)
    luma = torch.tensor([1, 1, 1, 0], dtype=torch.float32, device=device) / math.sqrt(3)
    outer = torch.outer(luma, luma)
    C = eye.expand(b, 4, 4)
    brightness = torch.randn(b, device=device) * BRIGHTNESS_STD * chosen()
    C = _matrix([[1, 0, 0, brightness], [0, 1, 0, brightness], [0, 0, 1, brightness], [0, 0, 0, 1]], b, device) @ C
    c = torch.exp2(torch.randn(b, device=device) * CONTRAST_STD * chosen())
    C = _matrix([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], b, device) @ C
    flip = torch.floor(torch.rand(b, device=device) * 2) * chosen()
    C = (eye - 2 * outer * flip[:, None, None]) @ C
    theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * HUE_MAX * chosen()
    C = _rotate_about(luma[:3], theta) @ C
    s = torch.exp2(torch.randn(b, device=device) * SATURATION_STD * chosen())
    return (outer + (eye - outer) * s[:, None, None]) @ C


def _rotate_about(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(b, 4, 4) rotations by `theta` about the unit 3-vector `axis` (Rodrigues)."""
    x, y, z = axis
    cross = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], device=axis.device)
    R = (torch.eye(3, device=axis.device) + torch.sin(theta)[:, None, None] * cross
         + (1 - torch.cos(theta))[:, None, None] * (cross @ cross))
    out = torch.eye(4, device=axis.device).repeat(len(theta), 1, 1)
    out[:, :3, :3] = R
    return out


def ada_augment(x: torch.Tensor, p: float) -> torch.Tensor:
    """The pipeline with probability `p` per transform and image; the identity at p = 0."""
    return x if p <= 0 else recolor(resample(x, p), p)


def resample(x: torch.Tensor, p: float) -> torch.Tensor:
    """The geometric transforms: each image resampled through its affine map, reflected at the border."""
    b, channels, h, w = x.shape
    G = geometric(b, p, max(h, w), x.device)
    grid = F.affine_grid(G[:, :2].to(x.dtype), [b, channels, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def recolor(x: torch.Tensor, p: float) -> torch.Tensor:
    """The colour transforms: each image's RGB values through its affine colour map."""
    C = color(x.shape[0], p, x.device).to(x.dtype)
    if x.shape[1] == 3:
        return torch.einsum("bij,bjhw->bihw", C[:, :3, :3], x) + C[:, :3, 3, None, None]
    # One channel: the colour map's mean gain and offset, as StyleGAN2-ADA does for grayscale.
    return x * C[:, :3, :3].mean(dim=(1, 2))[:, None, None, None] + C[:, :3, 3].mean(dim=1)[:, None, None, None]


class AdaController:
    """p, moved every `interval` D steps by sign(r_t - target) x (images seen) / `images` (StyleGAN2-ADA's
    ada_kimg x 1000: how many images p takes to go from 0 to 1), r_t the mean sign of D's outputs on reals."""

    def __init__(self, target: float, images: int, interval: int, batch_size: int):
        self.target, self.images, self.interval, self.batch_size = target, images, interval, batch_size
        self.p, self.rt = 0.0, 0.0
        self.total, self.count = 0.0, 0  # sign(D(real)) means since the last adjustment, summed on the device

    def observe(self, d_real: torch.Tensor) -> None:
        self.total = self.total + torch.sign(d_real.detach()).mean()
        self.count += 1
        if self.count == self.interval:
            total = torch.as_tensor(self.total, dtype=torch.float32)
            if dist.is_available() and dist.is_initialized():  # one p for all processes: their mean signal
                total = total.to(d_real.device)
                dist.all_reduce(total)
                total /= dist.get_world_size()
            self.rt = float(total) / self.count  # one device sync per interval
            if self.rt != self.target:
                step = math.copysign(self.batch_size * self.interval / self.images, self.rt - self.target)
                self.p = min(max(self.p + step, 0.0), 1.0)
            self.total, self.count = 0.0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "rt": self.rt, "total": float(self.total), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.rt, self.total, self.count = state["p"], state["rt"], state["total"], state["count"]

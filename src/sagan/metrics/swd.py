"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, ProGAN's `sliced_wasserstein.py`): no network needed.

Each image gives 128 random 7x7 patches at every level of its Laplacian pyramid, from full resolution down to 16x16.
Per level, the patches of each set are normalised per channel, projected onto 4 x 128 random unit directions, and
the sorted projections compared; the distance is reported x 10^3 per level and averaged over levels.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError

PATCH = 7
PATCHES_PER_IMAGE = 128
DIRECTION_REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
MIN_RESOLUTION = 16
MAX_IMAGES = 16384  # images per set, as ProGAN; more only costs memory (128 x 147 floats per image and level)

# cv2.pyrDown's 5x5 binomial filter.
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_GAUSSIAN = torch.outer(_BINOMIAL, _BINOMIAL) / 256


def pyramid_levels(resolution: int) -> list[int]:
    """Resolutions of the pyramid levels, halving down to 16x16."""
    levels = []
    while resolution >= MIN_RESOLUTION:
        levels.append(resolution)
        resolution //= 2
    return levels


class SWDDescriptors:
    """Turns uint8 NCHW images into raw patch descriptors per pyramid level (a dict `level{res}` -> M x C*49).
    Patch positions come from one `np.random.RandomState(seed)`, so equal images and seed give equal patches."""

    preprocessing = f"laplacian-pyramid-{PATCHES_PER_IMAGE}-patches-{PATCH}x{PATCH}"
    weights_sha256 = "none"
    max_images = MAX_IMAGES

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Start the patch positions afresh, so every pass over an image set picks the same patches."""
        self.rng = np.random.RandomState(self.seed)

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("SWD descriptors take uint8 N x C x H x W images")
        levels = pyramid_levels(images.shape[-1])
        if not levels:
            raise DataError(f"SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION}")
        pyramid = laplacian_pyramid(images.float(), len(levels))
        return {f"level{res}": self._patches(level) for res, level in zip(levels, pyramid)}

    def _patches(self, level: torch.Tensor) -> np.ndarray:
        n, c, h, w = level.shape
        half = PATCH // 2
        count = n * PATCHES_PER_IMAGE
        image = np.repeat(np.arange(n), PATCHES_PER_IMAGE)
        x = self.rng.randint(half, w - half, size=count)
        y = self.rng.randint(half, h - half, size=count)
        offsets = np.arange(-half, half + 1)
        rows = torch.from_numpy(y[:, None] + offsets)[:, :, None]
        cols = torch.from_numpy(x[:, None] + offsets)[:, None, :]
        patches = level[torch.from_numpy(image)[:, None, None], :, rows, cols]  # M x 7 x 7 x C
        return patches.permute(0, 3, 1, 2).reshape(count, c * PATCH * PATCH).numpy()


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels (each level minus the upsampled next one) and the low-pass last level, as ProGAN."""
    pyramid = [images]
    for _ in range(1, num_levels):
        pyramid.append(_filter(pyramid[-1])[:, :, ::2, ::2])
        up = torch.zeros_like(pyramid[-2])
        up[:, :, ::2, ::2] = pyramid[-1]
        pyramid[-2] = pyramid[-2] - _filter(up, gain=4.0)
    return pyramid


def _filter(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """The binomial filter with mirrored borders (scipy.ndimage's 'mirror' = torch's 'reflect'), per channel."""
    c = x.shape[1]
    kernel = (_GAUSSIAN * gain).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def swd(desc_a: dict[str, np.ndarray], desc_b: dict[str, np.ndarray], seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein distance x 10^3 per level (`swd_{res}`) and their mean (`swd`) between two descriptor
    sets from `SWDDescriptors`, subsampled to the same number of patches."""
    if desc_a.keys() != desc_b.keys():
        raise ConfigError(f"swd: the images' pyramid has levels {sorted(desc_a)}, the reference's {sorted(desc_b)}; "
                          f"swd compares images of one size")
    rng = np.random.RandomState(seed)
    levels = {}
    for key, desc in desc_a.items():
        a, b = _equal_size(desc, desc_b[key], rng)
        levels[f"swd_{key[len('level'):]}"] = 1e3 * sliced_wasserstein(_normalise(a), _normalise(b), rng)
    return {"swd": float(np.mean(list(levels.values())))} | levels


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.RandomState) -> float:
    """Mean absolute difference of the sorted projections onto random unit directions (float32, as ProGAN)."""
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    results = []
    for _ in range(DIRECTION_REPEATS):
        directions = rng.randn(a.shape[1], DIRECTIONS_PER_REPEAT)
        directions /= np.sqrt((directions**2).sum(axis=0, keepdims=True))
        d = torch.from_numpy(directions.astype(np.float32))
        # Sort each direction's projections; transposed so every sorted row is contiguous.
        proj_a = np.sort((ta @ d).T.contiguous().numpy(), axis=1)
        proj_b = np.sort((tb @ d).T.contiguous().numpy(), axis=1)
        results.append(np.abs(proj_a - proj_b).mean(dtype=np.float64))
    return float(np.mean(results))


def _normalise(desc: np.ndarray) -> np.ndarray:
    """Zero mean, unit std per colour channel over all patches and pixels, as float32."""
    m = desc.reshape(len(desc), -1, PATCH * PATCH).astype(np.float64)
    m = (m - m.mean(axis=(0, 2), keepdims=True)) / m.std(axis=(0, 2), keepdims=True)
    return m.reshape(len(desc), -1).astype(np.float32)


def _equal_size(a: np.ndarray, b: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(a), len(b))
    pick = lambda d: d if len(d) == n else d[np.sort(rng.choice(len(d), n, replace=False))]
    return pick(a), pick(b)

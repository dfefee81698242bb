"""Self-attention maps (the paper's Figures 1 and 5): record them from a network, map key positions back to image
pixels, and draw each query's map over the image as a heat map."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..images import make_grid
from ..models import AttentionBlock, attention_layers
from . import layout

# Anchors of the "inferno" colour map (dark purple -> yellow): brightness rises with attention.
_HEAT = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                  [250, 193, 39], [252, 255, 164]], dtype=np.float32)


@dataclass
class AttentionMaps:
    """One layer's attention for a batch: `weights[b, qy, qx, ky, kx]` is how much the query at feature position
    (qy, qx) attends to key cell (ky, kx); each key cell covers `key_stride` x `key_stride` feature positions."""

    name: str
    weights: np.ndarray  # float32, (batch, h, w, key rows, key columns); sums to 1 over the key cells
    key_stride: int

    @property
    def feature_size(self) -> tuple[int, int]:
        return self.weights.shape[1], self.weights.shape[2]

    def image_map(self, index: int, query: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
        """The attention of image `index`'s `query` (qy, qx) over the pixels of an image of `image_size` (H, W):
        every pixel gets the weight of the key cell it lies in."""
        key_map = self.weights[index, query[0], query[1]]
        rows, cols = (key_cells(image, feature, self.key_stride)
                      for image, feature in zip(image_size, self.feature_size))
        # Index -1 (pixels of a feature row or column dropped by pooling) picks the zero padding.
        return np.pad(key_map, ((0, 1), (0, 1)))[rows[:, None], cols[None, :]]

    def query_pixel(self, query: tuple[int, int], image_size: tuple[int, int]) -> tuple[float, float]:
        """The (y, x) image position of the centre of the query's feature cell."""
        return tuple((q + 0.5) * image / feature for q, image, feature in zip(query, image_size, self.feature_size))


def key_cells(image_size: int, feature_size: int, key_stride: int) -> np.ndarray:
    """For each pixel along one image axis, the key cell that covers it, or -1 where 2x2 max pooling dropped the
    last row or column of an odd-sized feature map."""
    cells = (np.arange(image_size) * feature_size // image_size) // key_stride
    return np.where(cells < feature_size // key_stride, cells, -1)


def layers(net: nn.Module, name: str = "all") -> dict[str, AttentionBlock]:
    """The attention layers of `net` by block name (`attn16`, ...): all of them, or the one named."""
    found = {key.removeprefix("blocks."): layer for key, layer in attention_layers(net).items()}
    if name == "all":
        return found
    if name not in found:
        raise ConfigError(f"--layer: no attention layer '{name}'; choose from all, {', '.join(found)}")
    return {name: found[name]}


class Recorder:
    """While active (`with Recorder(net) as rec:`), every forward through the chosen attention layers of `net` keeps
    their attention maps; `rec.maps` then holds them, concatenated over the forwards (batches)."""

    def __init__(self, net: nn.Module, layer: str = "all"):
        self.layers = layers(net, layer)
        self.batches: dict[str, list[np.ndarray]] = {name: [] for name in self.layers}
        self.handles = []

    def __enter__(self) -> "Recorder":  # noqa: PYI034 - typing.Self needs Python 3.11
        for name, layer in self.layers.items():
            self.handles.append(layer.register_forward_pre_hook(_ask_for_attention, with_kwargs=True))
            self.handles.append(layer.register_forward_hook(partial(self._keep, name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def _keep(self, name: str, layer: AttentionBlock, args: tuple, output: tuple) -> torch.Tensor:
        y, attention = output
        b, _, h, w = args[0].shape
        s = layer.key_stride
        self.batches[name].append(attention.detach().reshape(b, h, w, h // s, w // s).float().cpu().numpy())
        return y  # the network continues with the block's usual output

    @property
    def maps(self) -> dict[str, AttentionMaps]:
        return {name: AttentionMaps(name, np.concatenate(batches), self.layers[name].key_stride)
                for name, batches in self.batches.items() if batches}


def _ask_for_attention(layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, kwargs | {"return_attention": True}


def spread_queries(feature_size: tuple[int, int], n: int, seed: int = 0) -> list[tuple[int, int]]:
    """`n` distinct query positions (qy, qx), drawn from `seed` away from the border of the feature map."""
    h, w = feature_size
    if not 1 <= n <= min(len(layout.PALETTE), h * w):
        raise ConfigError(f"--queries: {n} is not between 1 and {min(len(layout.PALETTE), h * w)}")
    my, mx = h // 8, w // 8
    inner = [(y, x) for y in range(my, h - my) for x in range(mx, w - mx)]
    chosen = np.random.default_rng(seed).choice(len(inner), size=n, replace=False)
    return [inner[i] for i in chosen]


def query_grid(feature_size: tuple[int, int], size: int = 8) -> list[tuple[int, int]]:
    """A row-major grid of at most `size` x `size` queries, the feature positions at the centres of equal cells of
    the image: query (i, j) is the one nearest to any pixel of cell (i, j)."""
    rows, cols = (min(size, f) for f in feature_size)
    return [(int((i + 0.5) * feature_size[0] / rows), int((j + 0.5) * feature_size[1] / cols))
            for i in range(rows) for j in range(cols)]


def sprite(maps: AttentionMaps, index: int, queries: Sequence[tuple[int, int]], columns: int) -> np.ndarray:
    """The heat layers of image `index`'s `queries` at feature resolution (one pixel per feature position, exact
    for pooled keys too), tiled without padding, `columns` per row: RGBA to draw over the image scaled up."""
    size = maps.feature_size
    return make_grid(np.stack([heat_layer(maps.image_map(index, q, size)) for q in queries]), columns, padding=0)


def heat(values: np.ndarray) -> np.ndarray:
    """Colours of values in [0, 1] on the inferno map, uint8 (..., 3)."""
    position = np.clip(values, 0, 1) * (len(_HEAT) - 1)
    low = np.minimum(position.astype(int), len(_HEAT) - 2)
    t = (position - low)[..., None]
    return ((1 - t) * _HEAT[low] + t * _HEAT[low + 1]).round().astype(np.uint8)


def heat_layer(attention: np.ndarray) -> np.ndarray:
    """RGBA uint8 heat colours of `attention` scaled to its maximum: the more attended, the brighter and the more
    opaque."""
    m = attention / max(float(attention.max()), 1e-12)
    alpha = (255 * (0.25 + 0.75 * m)).round().astype(np.uint8)
    return np.concatenate([heat(m), alpha[..., None]], axis=-1)


def overlay(image: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """The image, dimmed to gray, under the `heat_layer` of `attention` (H x W)."""
    layer = heat_layer(attention).astype(np.float32)
    alpha = layer[..., 3:] / 255
    gray = layout.rgb(image).astype(np.float32).mean(axis=-1, keepdims=True) * 0.5
    return ((1 - alpha) * gray + alpha * layer[..., :3]).round().astype(np.uint8)


def colorbar(width: int, height: int = 10) -> np.ndarray:
    """A horizontal legend of the heat colours, low on the left."""
    return np.repeat(heat(np.linspace(0, 1, width))[None], height, axis=0)


def figure(images: np.ndarray, maps: AttentionMaps, queries: Sequence[tuple[int, int]], title: str) -> np.ndarray:
    """One row per image: the image with the queries marked in their colours, then per query its attention map
    over the image. Column headers name the queries in their colours (the legend); a colour bar explains the heat."""
    n, height, width = images.shape[:3]
    scale = layout.readable_scale(max(height, width))
    size = (height * scale, width * scale)
    colors = layout.PALETTE[: len(queries)]
    points = [maps.query_pixel(q, size) for q in queries]
    header = [_header("image + queries", None, size[1])]
    header += [_header(f"query {i + 1}", color, size[1]) for i, color in enumerate(colors)]
    rows = [layout.stack(header, gap=6)]
    for b in range(n):
        image = layout.upscale(layout.rgb(images[b]), scale)
        tiles = [layout.mark(image, points, colors)]
        for query, point, color in zip(queries, points, colors):
            tiles.append(layout.mark(overlay(image, maps.image_map(b, query, size)), [point], [color], radius=3))
        rows.append(layout.stack(tiles, gap=6))
    h, w = maps.feature_size
    kh, kw = maps.weights.shape[3:]
    notes = (f"{title}: {h}x{w} queries over {kh}x{kw} keys"
             + (f" (keys max-pooled: each key cell covers {maps.key_stride}x{maps.key_stride} positions)"
                if maps.key_stride > 1 else "")
             + "\nheat: attention weight, scaled to each map's maximum")
    bar = layout.caption(colorbar(min(256, rows[0].shape[1])), "low  <-  attention  ->  high", size=12)
    sheet = layout.stack([layout.label(notes, rows[0].shape[1]), *rows, bar], axis=0)
    return layout.margin(sheet)


def _header(text: str, color, width: int) -> np.ndarray:
    """A label `width` pixels wide; with a colour, a dot of that colour before the text (the legend)."""
    if color is None:
        return layout.label(text, width, size=13)
    pad = "      "
    bar = layout.label(pad + text, width, size=13)
    x = (bar.shape[1] - layout.font(13).getlength(pad + text)) / 2 + 8
    return layout.mark(bar, [(bar.shape[0] / 2, x)], [color], radius=5)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images -> float NCHW in [-1, 1], the networks' input range."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)

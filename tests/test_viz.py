"""Visualisation: attention maps land where the network looks, figures have the promised sizes, CLI commands."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from sagan.cli import main
from sagan.errors import ConfigError
from sagan.models import SelfAttention
from sagan.models.base import Network
from sagan.viz import attention, interpolate, layout, saliency, sheets

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="needs matplotlib (the viz extra)")


def looking_at(form: str, channels: int = 16) -> SelfAttention:
    """An attention layer whose every query attends to the position where input channel 0 is 1: all queries are
    the constant channel 1, and keys copy channel 0 with a large weight."""
    layer = SelfAttention(channels, form)
    with torch.no_grad():
        for conv in (layer.query, layer.key):
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
        layer.query.weight[0, 1] = 1.0
        layer.key.weight[0, 0] = 50.0
    return layer


def marked_input(h: int, w: int, at: tuple[int, int], channels: int = 16) -> torch.Tensor:
    x = torch.zeros(1, channels, h, w)
    x[0, 0, at[0], at[1]] = 1.0
    x[0, 1] = 1.0
    return x


@pytest.mark.parametrize("form", ["paper", "official"])
@pytest.mark.parametrize("feature, key, scale", [((8, 8), (5, 2), 4), ((6, 10), (3, 7), 4), ((4, 6), (0, 5), 8)])
def test_the_overlay_peaks_where_the_query_looks(form, feature, key, scale):
    net = Network()
    net.add_block("attn", looking_at(form))
    h, w = feature
    with attention.Recorder(net) as recorder:
        net.run_blocks(marked_input(h, w, key), None)
    maps = recorder.maps["attn"]
    stride = 2 if form == "official" else 1
    assert maps.feature_size == (h, w) and maps.weights.shape[3:] == (h // stride, w // stride)
    image_size = (h * scale, w * scale)
    # Where the peak must be in image space: the key's feature cell, or for pooled keys the 2x2 block holding it.
    top, left = (key[0] // stride) * stride * scale, (key[1] // stride) * stride * scale
    expected = np.zeros(image_size, bool)
    expected[top : top + stride * scale, left : left + stride * scale] = True
    for query in [(0, 0), (h - 1, w - 1), (h // 2, 1)]:
        heat_map = maps.image_map(0, query, image_size)
        assert heat_map.shape == image_size
        assert heat_map[expected].min() > 0.99 and heat_map[~expected].max() < 0.01
        # Drawn over a black image, the brightest pixels are the attended block.
        drawn = attention.overlay(np.zeros((*image_size, 3), np.uint8), heat_map).astype(int).sum(-1)
        assert np.array_equal(drawn == drawn.max(), expected)


def test_pooled_keys_leave_a_dropped_odd_row_unattended():
    layer = looking_at("official")
    net = Network()
    net.add_block("attn", layer)
    with attention.Recorder(net) as recorder:
        net.run_blocks(marked_input(5, 5, (1, 1)), None)
    maps = recorder.maps["attn"]
    heat_map = maps.image_map(0, (4, 4), (20, 20))
    assert maps.weights.shape[3:] == (2, 2)
    assert heat_map[16:].max() == 0 and heat_map[:, 16:].max() == 0  # row/column 4 has no key after pooling
    assert heat_map[:8, :8].min() > 0.99


def test_query_pixels_are_feature_cell_centres():
    maps = attention.AttentionMaps("a", np.zeros((1, 4, 8, 4, 8), np.float32), 1)
    assert maps.query_pixel((0, 0), (32, 64)) == (4.0, 4.0)
    assert maps.query_pixel((3, 7), (32, 64)) == (28.0, 60.0)


def test_recording_leaves_the_output_unchanged_and_unhooks():
    net = Network()
    net.add_block("attn", SelfAttention(16, "official"))
    with torch.no_grad():
        net.blocks["attn"].gamma.fill_(0.7)
    x = torch.randn(2, 16, 8, 8)
    expected = net.run_blocks(x, None)
    with attention.Recorder(net) as recorder:
        assert torch.allclose(net.run_blocks(x[:1], None), expected[:1], atol=1e-6)
        net.run_blocks(x[1:], None)
    assert recorder.maps["attn"].weights.shape == (2, 8, 8, 4, 4)
    np.testing.assert_allclose(recorder.maps["attn"].weights.sum(axis=(3, 4)), 1, atol=1e-5)
    net.run_blocks(x, None)
    assert len(recorder.batches["attn"]) == 2  # no longer recording


def test_query_choices():
    queries = attention.spread_queries((16, 16), 8, seed=1)
    assert len(set(queries)) == 8 and all(2 <= q < 14 for point in queries for q in point)
    assert queries == attention.spread_queries((16, 16), 8, seed=1)
    grid = attention.query_grid((16, 8), 8)
    assert len(grid) == 64 and grid[0] == (1, 0) and grid[-1] == (15, 7)
    assert attention.query_grid((4, 4), 8) == [(y, x) for y in range(4) for x in range(4)]


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_unit_latents():
    z0, z1 = torch.eye(2)[None, 0], torch.eye(2)[None, 1]
    assert torch.allclose(interpolate.slerp(z0, z1, 0.0), z0, atol=1e-6)
    assert torch.allclose(interpolate.slerp(z0, z1, 1.0), z1, atol=1e-6)
    assert torch.allclose(interpolate.slerp(z0, z1, 0.5).norm(), torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(interpolate.slerp(z0, z0, 0.5), z0)  # parallel: no division by zero


def test_heat_colours_brighten_with_attention():
    colours = attention.heat(np.linspace(0, 1, 11)).astype(int).sum(-1)
    assert (np.diff(colours) > 0).all()


def test_layout_stacks_and_labels():
    a, b = np.zeros((10, 20, 3), np.uint8), np.zeros((30, 5, 1), np.uint8)
    assert layout.stack([a, b], gap=4).shape == (30, 29, 3)
    assert layout.stack([a, b], axis=0, gap=0).shape == (40, 20, 3)
    labelled = layout.caption(a, "a long caption for a small image")
    assert labelled.shape[1] > 20 and labelled.shape[0] > 10


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained class-conditional run with the official attention form (pooled keys)."""
    from sagan.training.trainer import train

    run_dir = tmp_path_factory.mktemp("viz") / "run"
    train(tiny_config(**{"model.num_classes": 10, "model.attention": "official"}), run_dir, progress=False)
    return run_dir


def png_size(path) -> tuple[int, int]:
    """(height, width) of a PNG."""
    with Image.open(path) as image:
        return image.height, image.width


def written(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.endswith(".png")]


def grid_size(rows: int, cols: int, side: int = 32) -> tuple[int, int]:
    return rows * (side + 2) + 2, cols * (side + 2) + 2


def test_a_64_image_grid_is_8_by_8_with_2_pixel_padding():
    from sagan.config import preset
    from sagan.models import build_generator

    G = build_generator(preset("demo").model, 64, 3).eval()
    assert sheets.sample_grid(G, 64).shape == (*grid_size(8, 8, 64), 3)
    assert not np.array_equal(sheets.sample_grid(G, 4, truncation=0.5), sheets.sample_grid(G, 4))


def test_samples_one_row_per_class(run, tmp_path, capsys):
    assert main(["visualize", "samples", "--checkpoint", str(run), "--num", "20", "--out", str(tmp_path)]) == 0
    assert written(capsys) == [str(tmp_path / "samples.png")]
    assert png_size(tmp_path / "samples.png") == grid_size(10, 2)
    assert main(["visualize", "samples", "--checkpoint", str(run), "--num", "10", "--truncation", "0.7"]) == 0
    assert written(capsys) == [str(run / "figures" / "samples.png")]  # default --out: the run's figures/ folder
    assert png_size(run / "figures" / "samples.png") == grid_size(10, 1)


def test_compare_sheet(run, tmp_path, capsys):
    assert main(["visualize", "compare", "--checkpoint", str(run / "checkpoints" / "latest.pt"),
                 "--data", "embedded", "--num", "8", "--out", str(tmp_path)]) == 0
    assert written(capsys) == [str(tmp_path / "compare.png")]
    height, width = png_size(tmp_path / "compare.png")
    grid_h, grid_w = grid_size(3, 3, 64)  # 32x32 images are enlarged 2x
    assert height > grid_h + 20 and width > 2 * grid_w


@pytest.mark.parametrize("args, name", [([], "attention-G-attn16.png"),
                                        (["--net", "d", "--data", "embedded"], "attention-D-attn8.png")])
def test_attention_figure(run, tmp_path, capsys, args, name):
    assert main(["visualize", "attention", "--checkpoint", str(run), "--num", "3", "--queries", "2",
                 "--out", str(tmp_path), *args]) == 0
    assert written(capsys) == [str(tmp_path / name)]
    height, width = png_size(tmp_path / name)
    # 3 rows of 128-pixel tiles (32x32 images enlarged 4x): the image with its queries, then one map per query.
    assert height > 3 * 128 + 40 and width >= 3 * 128 + 2 * 6


def test_attention_names_unknown_layers(run, capsys):
    assert main(["visualize", "attention", "--checkpoint", str(run), "--layer", "attn99"]) == 2
    assert "--layer: no attention layer 'attn99'; choose from all, attn16" in capsys.readouterr().err


def test_interpolation_grids(run, tmp_path, capsys):
    assert main(["visualize", "interpolate", "--checkpoint", str(run), "--steps", "5", "--pairs", "3",
                 "--out", str(tmp_path)]) == 0
    assert written(capsys) == [str(tmp_path / "interpolate-latent.png"), str(tmp_path / "interpolate-class.png")]
    assert png_size(tmp_path / "interpolate-latent.png") == grid_size(3, 5)
    class_grid = np.asarray(Image.open(tmp_path / "interpolate-class.png"))
    assert class_grid.shape[:2] == grid_size(3, 5)
    first, last = class_grid[2:34, 2:34], class_grid[2:34, -34:-2]
    assert not np.array_equal(first, last)  # the class changes along the row, the latent does not


def test_class_blend_ends_are_the_classes_themselves(run):
    from sagan.checkpoints import load_generator

    G = load_generator(run)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    start, end = torch.tensor([1, 4]), torch.tensor([7, 2])
    with interpolate.blended_classes(G, end, torch.tensor([0.0, 1.0])):
        blended = G.generate(z, start)
    np.testing.assert_array_equal(blended[0], G.generate(z[:1], start[:1])[0])
    np.testing.assert_array_equal(blended[1], G.generate(z[1:], end[1:])[0])


def write_metrics(run_dir, records):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 3, "d_lo')


RECORDS = [{"step": s, "d_loss": 2.0 - s / 10, "g_loss": 0.5, "d_real": 1.0, "d_fake": -1.0, "lr_g": 1e-4,
            "lr_d": 4e-4, "steps_per_s": 9.0, "gamma/G.attn16": 0.01 * s, "gamma/D.attn8": -0.02 * s, "epoch": 0.1}
           for s in (1, 2)] + [{"step": 2, "eval/fid": 80.5, "eval/kid": 0.02}]


@needs_matplotlib
def test_curves_from_metrics(tmp_path, capsys):
    run = tmp_path / "run"
    write_metrics(run, RECORDS)
    assert main(["visualize", "curves", str(run)]) == 0
    names = sorted(p.rsplit("/", 1)[1] for p in written(capsys))
    assert names == ["curves-discriminator.png", "curves-gamma.png", "curves-learning-rate.png",
                     "curves-losses.png", "curves-metric-eval-fid.png", "curves-metric-eval-kid.png",
                     "curves-speed.png"]
    height, width = png_size(run / "figures" / "curves-gamma.png")
    assert (height, width) == (400, 700)


def test_curves_name_the_extra_when_matplotlib_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    write_metrics(tmp_path, RECORDS)
    assert main(["visualize", "curves", str(tmp_path)]) == 2
    assert "pip install 'sagan[viz]'" in capsys.readouterr().err


def test_viz_does_not_load_the_training_package():
    code = ("import sys, sagan.viz.figures, sagan.viz.report; "
            "print([m for m in sys.modules if m.startswith('sagan.training')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class LeftHalf(Network):
    """A toy discriminator whose output reads only the left half of the image."""

    def __init__(self):
        super().__init__()
        self.add_block("block16", torch.nn.Conv2d(3, 4, 1))
        self.embed = None

    def forward(self, x, y=None):
        return self.blocks["block16"](x)[..., : x.shape[-1] // 2].square().sum(dim=(1, 2, 3))


def test_saliency_points_where_the_decision_comes_from():
    torch.manual_seed(0)
    D, x = LeftHalf(), torch.randn(2, 3, 16, 16)
    grad, cam = saliency.input_gradient(D, x), saliency.grad_cam(D, x, "block16")
    assert grad.shape == cam.shape == (2, 16, 16)
    assert torch.all(grad[..., 8:] == 0) and torch.all(grad[..., :8] > 0)
    A = D.blocks["block16"](x).detach().requires_grad_()
    (dA,) = torch.autograd.grad(A[..., :8].square().sum(), A)  # D's output as a function of the block's
    torch.testing.assert_close(cam, torch.relu((dA.mean(dim=(2, 3), keepdim=True) * A).sum(1)))


def test_saliency_of_a_class_is_its_projection_term(run):
    from sagan import checkpoints

    _, D = checkpoints.networks(checkpoints.load(run))
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([1, 2, 3])
    out, projection = D.terms(x, y)
    assert torch.equal(D(x, y), out + projection)
    torch.testing.assert_close(saliency.score(D, x, y, 4), D.terms(x, torch.full((3,), 4))[1])
    with pytest.raises(ConfigError, match="--class: 10 is not a class of this run"):
        saliency.score(D, x, y, 10)
    with pytest.raises(ConfigError, match="--class: this discriminator is not class-conditional"):
        saliency.score(LeftHalf(), x, None, 0)


@pytest.mark.parametrize("args", [["--images", "generated", "--class", "3"], ["--data", "embedded", "--block",
                                                                            "block4"]])
def test_saliency_figure(run, tmp_path, capsys, args):
    assert main(["visualize", "saliency", "--checkpoint", str(run), "--num", "3", "--out", str(tmp_path),
                 *args]) == 0
    assert written(capsys) == [str(tmp_path / "saliency.png")]
    height, width = png_size(tmp_path / "saliency.png")
    assert height > 3 * 128 + 40 and width >= 3 * 128 + 2 * 6  # image, input gradient, Grad-CAM, 4x enlarged


def test_saliency_names_unknown_blocks(run, capsys):
    assert main(["visualize", "saliency", "--checkpoint", str(run), "--images", "generated", "--block", "blk"]) == 2
    err = capsys.readouterr().err
    assert "--block: no discriminator block 'blk'; choose from block16, block8, attn8, block4" in err

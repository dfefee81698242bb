"""Using a trained generator elsewhere: `sagan export` (ONNX, TorchScript, safetensors) against the PyTorch
generator, and `sagan generate`'s truncation, grid and interpolation."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import error_line, tiny_config
from PIL import Image

from sagan import checkpoints, generate, load_generator
from sagan.cli import main
from sagan.exporting import FORMATS, baked, example_inputs


@pytest.fixture(scope="module", params=[0, 10], ids=["unconditional", "conditional"])
def run(request, tmp_path_factory):
    from sagan.training.trainer import train

    run_dir = tmp_path_factory.mktemp("export") / "run"
    train(tiny_config(**{"model.num_classes": request.param, "train.report": False}), run_dir, progress=False)
    return run_dir


def reference(run, inputs):
    with torch.no_grad():
        return checkpoints.load_generator(run)(*inputs).numpy()


def needs(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"needs {module} (the test extra)")


def test_baking_spectral_norm_keeps_the_outputs(run):
    G = checkpoints.load_generator(run)
    inputs = example_inputs(G, 3)
    B = baked(checkpoints.load(run))
    assert not any("parametrizations" in name for name in B.state_dict())
    with torch.no_grad():
        assert torch.equal(B(*inputs), G(*inputs))


@needs("onnxruntime")
@needs("onnxscript")
def test_onnx_export_matches_the_generator(run, tmp_path, capsys):
    import onnxruntime

    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "generator.json").read_text())
    G = checkpoints.load_generator(run)
    inputs = example_inputs(G, 5)  # another batch size than the export's example
    session = onnxruntime.InferenceSession(str(tmp_path / meta["file"]))
    feed = dict(zip(meta["inputs"], (t.numpy() for t in inputs)))
    np.testing.assert_allclose(session.run(None, feed)[0], reference(run, inputs), atol=1e-4, rtol=1e-4)


def test_torchscript_export_matches_the_generator(run, tmp_path):
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path)]) == 0
    scripted = torch.jit.load(tmp_path / FORMATS["torchscript"][0])
    inputs = example_inputs(checkpoints.load_generator(run), 4)
    with torch.no_grad():
        np.testing.assert_allclose(scripted(*inputs).numpy(), reference(run, inputs), atol=1e-5, rtol=1e-5)


@needs("safetensors")
def test_safetensors_export_loads_and_says_how_to_call_it(run, tmp_path):
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "generator.json").read_text())
    G = checkpoints.load_generator(run)
    assert (meta["z_dim"], meta["num_classes"], meta["resolution"], meta["channels"]) == (16, G.num_classes, 32, 3)
    assert meta["output"]["range"] == [-1, 1] and meta["step"] == 4
    assert list(meta["inputs"]) == (["z", "y"] if G.num_classes else ["z"])
    exported = load_generator(tmp_path / "generator.safetensors")
    inputs = example_inputs(G, 3)
    with torch.no_grad():
        np.testing.assert_allclose(exported(*inputs).numpy(), reference(run, inputs), atol=1e-6, rtol=1e-6)
    images, labels = generate(tmp_path / "generator.safetensors", 4, seed=3)
    expected, expected_labels = generate(run, 4, seed=3)
    assert np.abs(images.astype(int) - expected).max() <= 1 and np.array_equal(labels, expected_labels)


def test_export_mistakes_are_one_line_errors(run, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "file")]) == 2
    assert error_line(capsys) == f"sagan: error: --out {tmp_path / 'file'} exists and is not a folder"


def test_generate_truncation_grid_and_interpolation(run, tmp_path, capsys):
    G = checkpoints.load_generator(run)
    assert main(["generate", "--checkpoint", str(run), "--num", "6", "--truncation", "0.5", "--grid",
                 "--out", str(tmp_path / "grid")]) == 0
    with Image.open(tmp_path / "grid" / "grid.png") as sheet:
        assert sheet.size == (3 * 34 + 2, 2 * 34 + 2)  # 6 images of 32x32 as a 3-wide grid
    truncated, labels = generate(run, 6, truncation=0.5)
    labels = None if labels is None else torch.from_numpy(labels)
    assert np.array_equal(truncated, G.sample(6, seed=0, labels=labels, truncation=0.5))
    assert main(["generate", "--checkpoint", str(run), "--interpolate", "3", "7", "--frames", "5",
                 "--out", str(tmp_path / "walk")]) == 0
    frames = sorted(p.name for p in (tmp_path / "walk").glob("*.png"))
    assert frames == [f"{i:06d}.png" for i in range(5)]
    with Image.open(tmp_path / "walk" / "interpolation.gif") as gif:
        assert gif.n_frames == 5 + 3  # forth and back
    walk, labels = generate(run, interpolate=(3, 7), frames=5)
    ends = np.concatenate([G.sample(1, seed=3, labels=None if labels is None else labels[0]),
                           G.sample(1, seed=7, labels=None if labels is None else labels[0])])
    assert np.array_equal(walk[[0, -1]], ends)  # the path runs from seed 3's image to seed 7's
    assert labels is None or len(set(labels.tolist())) == 1


def test_generate_mistakes(run, tmp_path, capsys):
    assert main(["generate", "--checkpoint", str(run), "--frames", "4", "--out", str(tmp_path)]) == 2
    assert error_line(capsys) == "sagan: error: --frames: applies only with --interpolate"
    assert main(["generate", "--checkpoint", str(run), "--grid", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--grid: writes one PNG sheet into a folder" in error_line(capsys)


@needs("onnxruntime")
@needs("onnxscript")
def test_the_readme_onnxruntime_lines_draw_an_image(run, tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Using a trained generator.*?```python\n(.*?)```", readme, re.DOTALL)[1]
    assert len(code.strip().splitlines()) == 6  # an import and five lines
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "exported")]) == 0
    monkeypatch.chdir(tmp_path)
    if checkpoints.load_generator(run).num_classes:
        code = code.replace('{"z": z}', '{"z": z, "y": np.zeros(8, dtype=np.int64)}')
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own lines, run as a reader would
    with Image.open(tmp_path / "0.png") as image:
        assert image.size == (32, 32)


def test_the_model_card_says_what_was_trained_how_and_how_it_scored(tmp_path):
    from sagan.training.trainer import train
    from sagan.viz import curves
    from sagan.viz.card import model_card

    cfg = tiny_config(**{"eval.at_end": True, "eval.metrics": ["swd"], "eval.num_samples": 64,
                         "data.test_fraction": 0.2, "train.report": False})
    train(cfg, tmp_path / "run", progress=False)
    state = checkpoints.load(tmp_path / "run")
    card = model_card(tmp_path / "run", state, checkpoints.generator(state), curves.read_metrics(tmp_path / "run"),
                      "samples.png")
    for text in ("# run: a SAGAN generator", "`popular` self-attention after G's 16x16 and D's 8x8",
                 "Dataset `embedded`, the train part of a 80% / 20% split (seed 0)",
                 "Preset `demo`; loss `hinge`", "4 of 4 G steps", "- At step 4: swd ",
                 "64 samples of the EMA generator against `embedded`, its `test` part.",
                 "![samples of the EMA generator](samples.png)", "## Intended use and limits"):
        assert text in card, text
    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "MODEL_CARD.md").read_text() == card and (tmp_path / "out" / "samples.png").is_file()
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "](samples/step-0000004.png)" in (tmp_path / "run" / "MODEL_CARD.md").read_text()

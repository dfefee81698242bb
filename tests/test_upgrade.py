"""Checkpoints and configs of config version 1 (before the attention forms were renamed) read as they were meant."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from sagan import api, checkpoints, config
from sagan.models import attention_layers

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_version_1_checkpoint_loads_as_popular_and_samples_the_same_images():
    state = checkpoints.load(FIXTURES / "demo-v1.pt")
    assert state["config"]["model"]["attention"] == "paper" and "version" not in state["config"]
    G = checkpoints.generator(state)
    assert {layer.form for layer in attention_layers(G).values()} == {"popular"}
    images, _ = api.generate(FIXTURES / "demo-v1.pt", 4, seed=3, device="cpu")
    with np.load(FIXTURES / "demo-v1-samples.npz") as expected:
        assert np.array_equal(images, expected["images"])


def test_a_version_1_run_resumes_without_its_ignored_gradient_penalty(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "demo-v1.pt", run / "checkpoints" / "latest.pt")
    recorded = checkpoints.load(run)["config"]
    cfg = config.resolve(resume=recorded, flags={"train.steps": 3})
    assert (cfg.model.attention, cfg.train.gp_weight, cfg.version) == ("popular", 0.0, config.fields.VERSION)
    result = api.train(cfg, run, resume=True, progress=False)
    assert result.step == 3 and "gp" not in result.record


def test_a_version_1_config_file_warns_and_reads_as_meant():
    with pytest.warns(UserWarning, match="from before config version 2"):
        cfg = config.resolve(file=FIXTURES / "demo-v1-config.yaml")
    assert (cfg.model.attention, cfg.train.gp_weight) == ("popular", 0.0)
    # A file of today's layout has its version and no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config.from_dict(config.to_dict(cfg)) == cfg

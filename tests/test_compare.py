"""`sagan compare`: variants x seeds trained and evaluated under one protocol, resumable, with a table that is the
runs' own records and a page whose images all load."""

import csv
import json
import os
import re
import shutil
import signal

import numpy as np
import pytest
from conftest import browser_page, error_line, make_mnist, needs_browser
from PIL import Image

import sagan
from sagan import api, checkpoints
from sagan.cli import main
from sagan.errors import ConfigError, Interrupted
from sagan.experiments import load, packaged
from sagan.experiments import runner as compare_module
from sagan.experiments.results import cell
from sagan.models import ATTENTION
from sagan.viz.curves import read_metrics

SPEC = {
    "description": "three attention placements on the embedded data",
    "base": {"preset": "demo", "model": {"g_channels": 16, "d_channels": 16, "z_dim": 16},
             "train": {"batch_size": 8, "log_every": 5, "sample_every": 10, "checkpoint_every": 10,
                       "num_samples": 9, "device": "cpu", "report": False}},
    "variants": {"none": {"model.g_attention": [], "model.d_attention": []},
                 "g16": {"model.g_attention": [16], "model.d_attention": []},
                 "both": {"model.g_attention": [16], "model.d_attention": [8]}},
    "seeds": [0, 1],
    "budget": {"steps": 20},
    "eval": {"metrics": ["swd"], "num_samples": 64},
}
NAMES = [f"{v}-seed{s}" for v in ("none", "g16", "both") for s in (0, 1)]


def rows(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    page = api.compare(SPEC, out, progress=False, log=lambda line: None)
    return out, page


def test_compare_writes_every_run_the_table_and_the_page(compared):
    out, page = compared
    assert page == out / "index.html"
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(NAMES)
    for name in ("results.csv", "results.md", "spec.yaml", "figures/none-samples.png", "figures/both-samples.png",
                 "figures/g16-attention.png", "figures/both-attention.png"):
        assert (out / name).is_file(), name
    assert not (out / "figures" / "none-attention.png").exists()  # no attention, no maps
    # The table is the runs' own records: the step reached, the final evaluation, the networks' sizes.
    for row in rows(out):
        run_dir = out / "runs" / f"{row['variant']}-seed{row['seed']}"
        state = checkpoints.load(run_dir)
        final = [r for r in read_metrics(run_dir) if "eval/swd" in r][-1]
        assert int(row["steps"]) == state["step"] == final["step"] == 20
        assert float(row["swd"]) == final["eval/swd"]
        assert state["config"]["train"]["seed"] == int(row["seed"])
        G, D = checkpoints.networks(state)
        assert int(row["g_params"]) == sum(p.numel() for p in G.parameters())
        assert int(row["d_params"]) == sum(p.numel() for p in D.parameters())
        assert float(row["train_seconds"]) > 0 and float(row["images_per_s"]) > 0
    table = (out / "results.md").read_text()
    assert table.count("\n| ") == 5 and "| variant | G steps |" in table  # header, rule, a row per variant
    assert len(re.findall(r"\*\*[\d.]+ ± [\d.]+\*\*", table)) >= 2  # the best swd and images/s marked


def test_a_second_call_trains_nothing(compared, monkeypatch):
    out, _ = compared
    before = (out / "results.csv").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare_module, "train", no_training)
    monkeypatch.setattr(compare_module, "evaluate", no_training)
    # A run finished before a config field existed is finished with the field's default.
    marker = next((out / "runs").iterdir()) / "compare.json"
    done = json.loads(marker.read_text())
    del done["config"]["model"]["attention_pos"]
    marker.write_text(json.dumps(done))
    logged = []
    api.compare(SPEC, out, progress=False, log=logged.append)
    assert all(line.endswith("done, skipped") for line in logged) and len(logged) == 6
    assert (out / "results.csv").read_text() == before


def test_an_interrupted_comparison_resumes_where_it_stopped(compared, tmp_path, monkeypatch):
    out, _ = compared
    real_train = compare_module.train

    def killed_in_the_third_run(cfg, run_dir, **kwargs):
        if run_dir.name == NAMES[2]:  # trains 10 of its 20 steps, then the signal
            sagan.config.set_value(cfg, "train.steps", 10)
            real_train(cfg, run_dir, **kwargs)
            raise Interrupted("interrupted at step 10 by SIGTERM", signal.SIGTERM)
        return real_train(cfg, run_dir, **kwargs)

    monkeypatch.setattr(compare_module, "train", killed_in_the_third_run)
    with pytest.raises(Interrupted):
        api.compare(SPEC, tmp_path, progress=False, log=lambda line: None)
    assert [p.name for p in sorted((tmp_path / "runs").iterdir())] == sorted(NAMES[:3])
    assert checkpoints.load(tmp_path / "runs" / NAMES[2])["step"] == 10
    monkeypatch.setattr(compare_module, "train", real_train)
    logged = []
    api.compare(SPEC, tmp_path, progress=False, log=logged.append)
    assert [line.split(": ")[1] for line in logged] == ["done, skipped"] * 2 + ["resuming"] + ["training"] * 3
    assert "resumed at step 10" in (tmp_path / "runs" / NAMES[2] / "train.log").read_text()
    # Resumes are exact, so the interrupted comparison ends with the uninterrupted one's numbers.
    columns = ["variant", "seed", "steps", "g_params", "d_params", "swd"]
    assert [[r[c] for c in columns] for r in rows(tmp_path)] == [[r[c] for c in columns] for r in rows(out)]


def test_a_grid_names_its_variants_by_their_values():
    spec = {k: v for k, v in SPEC.items() if k != "variants"} | {
        "grid": {"model.g_attention": [[], [16]], "train.lr_g": [1e-4, 2e-4]}}
    loaded = load(spec, seeds=[3])
    assert loaded.variants == ["g_attention-none_lr_g-0.0001", "g_attention-none_lr_g-0.0002",
                               "g_attention-16_lr_g-0.0001", "g_attention-16_lr_g-0.0002"]
    assert [r.config.train.lr_g for r in loaded.runs] == [1e-4, 2e-4, 1e-4, 2e-4]
    assert {r.config.train.seed for r in loaded.runs} == {3}
    assert all(r.config.eval.at_end and r.config.eval.metrics == ["swd"] for r in loaded.runs)


def test_base_and_variant_overrides_merge_key_by_key():
    spec = SPEC | {"variants": {"v": {"model": {"g_attention": []}, "model.d_attention": []}},
                   "overrides": {"train": {"lr_d": 3e-4}}}
    cfg = load(spec, overrides={"train.lr_g": 5e-5}).runs[0].config
    assert (cfg.model.g_channels, cfg.model.g_attention, cfg.model.d_attention) == (16, [], [])
    assert (cfg.train.lr_g, cfg.train.lr_d, cfg.train.batch_size, cfg.train.steps) == (5e-5, 3e-4, 8, 20)


@pytest.mark.parametrize("change,message", [
    ({"colour": 1}, "spec compare: unknown key(s) colour; a spec has"),
    ({"variants": {"a b": {}}}, "variant name 'a b' must be letters"),
    ({"variants": {"x": {"model.g_attention": [64]}}},
     "spec compare: variant x: model.g_attention: [64] not a feature resolution"),
    ({"budget": {"hours": 1}}, "budget must be a mapping of steps, epochs, minutes"),
    ({"grid": {"train.lr_g": [1e-4]}}, "give variants (named overrides) or grid"),
    ({"seeds": "0"}, "seeds must be a list of integers"),
])
def test_spec_mistakes_are_one_line_errors(change, message):
    with pytest.raises(ConfigError) as e:
        load(SPEC | change)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_packaged_specs_are_valid_and_the_cli_lists_their_runs(tmp_path, capsys):
    assert set(packaged()) == {"attention-ablation", "attention-forms", "baselines", "small-data"}
    forms = load("attention-forms", overrides={"data.root": str(tmp_path)})
    assert {r.config.model.attention for r in forms.runs} == set(ATTENTION)  # every form
    assert forms.runs[-1].config.model.arch == "mobilenet" and len(forms.runs) == 20
    baselines = load("baselines", overrides={"data.root": str(tmp_path)})
    assert baselines.variants == ["dcgan", "wgan-gp", "sngan", "sagan"]
    assert [r.config.preset for r in baselines.runs[::2]] == ["dcgan", "wgan-gp", "sngan", "paper"]
    ablation = load("attention-ablation", overrides={"data.root": str(tmp_path)}, budget={"minutes": 2})
    assert {r.config.train.max_minutes for r in ablation.runs} == {2}
    assert [(r.config.model.g_attention, r.config.model.d_attention) for r in ablation.runs[::2]][:3] == [
        ([], []), ([16], []), ([], [16])]
    root = make_mnist(tmp_path / "fashion-mnist", train=128)  # a batch of each baseline
    assert main(["compare", "baselines", "--out", str(tmp_path / "c"), "--data-root", str(root), "--seeds", "4",
                 "--max-minutes", "3", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("baselines: 4 variants x 1 seeds = 4 runs, budget {'minutes': 3.0}")
    assert f"{tmp_path / 'c'}/runs/wgan-gp-seed4: preset wgan-gp, resnet-wgan-gp" in printed
    assert not (tmp_path / "c").exists()


def test_cli_mistakes_exit_2_with_one_line(tmp_path, capsys):
    assert main(["compare", "nonesuch", "--out", str(tmp_path)]) == 2
    assert "spec 'nonesuch' is neither a YAML file nor a packaged spec" in error_line(capsys)
    (tmp_path / "list.yaml").write_text("[1, 2]\n")
    assert main(["compare", str(tmp_path / "list.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert error_line(capsys).startswith(f"sagan: error: spec file {tmp_path / 'list.yaml'} must hold a mapping of ")
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps(SPEC | {"budget": {"steps": 20, "epochs": 1}}))
    assert main(["compare", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert error_line(capsys) == "sagan: error: spec s: budget: give steps or epochs, not both"
    # Found before anything is written, by --dry-run too: an OUT holding a training run, a run's empty dataset.
    spec.write_text(json.dumps(SPEC))
    trained = tmp_path / "trained" / "checkpoints" / "latest.pt"
    trained.parent.mkdir(parents=True)
    trained.write_bytes(b"")
    for dry_run in ([], ["--dry-run"]):
        assert main(["compare", str(spec), "--out", str(trained.parents[1]), *dry_run]) == 2
        assert error_line(capsys).endswith("trained holds a training run; a comparison needs a folder of its own")
        assert main(["compare", str(spec), "--out", str(tmp_path / "o"), "--data", "mnist", "--data-root",
                     str(make_mnist(tmp_path / "mnist", train=4)), *dry_run]) == 2
        assert "has fewer images than one batch (train.batch_size=8)" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.yaml", "mnist", "s.yaml", "trained"]


def test_a_run_directory_of_another_config_is_refused(compared, tmp_path):
    out, _ = compared
    shutil.copytree(out / "runs" / NAMES[0], tmp_path / "runs" / NAMES[0])
    (tmp_path / "runs" / NAMES[0] / "compare.json").unlink()
    changed = SPEC | {"base": SPEC["base"] | {"model": {"g_channels": 32, "d_channels": 16, "z_dim": 16}}}
    with pytest.raises(ConfigError, match=rf"{NAMES[0]} holds another run: model.g_channels may not change"):
        api.compare(changed, tmp_path, progress=False, log=lambda line: None)


@needs_browser
def test_the_page_in_a_browser(compared, tmp_path):
    _, page_path = compared
    with browser_page(page_path, 1400, 900) as page:
        assert page.broken_images() == []
        images = page.evaluate("() => [...document.images].map(img => img.getAttribute('src'))")
        assert sorted(images) == sorted(["figures/none-samples.png", "figures/g16-samples.png",
                                         "figures/both-samples.png", "figures/g16-attention.png",
                                         "figures/both-attention.png"])
        assert all(url.startswith("file:") for url in page.requests)  # offline: nothing but its own files
        charts = page.evaluate("() => [...document.querySelectorAll('.charts svg')].map(s => [s.getAttribute("
                               "'aria-label'), s.querySelectorAll('polyline, circle').length])")
        assert [title for title, _ in charts] == ["swd", "D loss", "G loss"]
        assert all(marks >= 6 for _, marks in charts)  # a series for each of the 6 runs
        cells = page.evaluate("() => [...document.querySelectorAll('table tr')].map(r => r.innerText)")
        assert len(cells) == 4 and cells[1].startswith("none")
        assert page.errors == []
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    if os.environ.get("SAGAN_SCREENSHOT"):  # to look at the page: SAGAN_SCREENSHOT=page.png pytest -m browser
        shutil.copy(tmp_path / "compare.png", os.environ["SAGAN_SCREENSHOT"])


def test_table_cells_give_the_std_to_the_means_decimal_place():
    assert cell("fd_inception", 288.4123, 9.808, 2) == "288.4 ± 9.8"
    assert cell("kid_inception", 0.505, 0.03117, 2) == "0.5050 ± 0.0312"
    assert cell("steps", 63, 0, 2) == "63 ± 0"
    assert cell("kid_inception", 0.505, 0.0, 1) == "0.5050"
    assert cell("g_params", 3.564e6, 0, 2) == "3.56M"
    assert cell("fd_inception", float("nan"), 0, 2) == "n/a"


def test_a_run_killed_in_its_final_evaluation_is_scored_as_training_would(tmp_path):
    # Real images cropped from a folder: the evaluation after a kill must read them as training's own did.
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    spec = SPEC | {"base": SPEC["base"] | {"data": {"name": "imagefolder", "root": str(folder), "crop": 36}},
                   "variants": {"none": SPEC["variants"]["none"]}, "seeds": [0],
                   "eval": SPEC["eval"] | {"reference": str(folder)}}
    api.compare(spec, tmp_path / "out", progress=False, log=lambda line: None)
    run_dir = tmp_path / "out" / "runs" / "none-seed0"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    scored = [json.loads(line)["eval/swd"] for line in lines if "eval/swd" in line]
    # Killed after the last checkpoint, before the final evaluation was written.
    (run_dir / "metrics.jsonl").write_text("".join(f"{line}\n" for line in lines if "eval/swd" not in line))
    (run_dir / "compare.json").unlink()
    logged = []
    api.compare(spec, tmp_path / "out", progress=False, log=logged.append)
    assert [line.split(": ")[1] for line in logged] == ["resuming"]
    # The same real images and generator, to float rounding (training scored its G in memory, this the saved one).
    assert [r["eval/swd"] for r in read_metrics(run_dir) if "eval/swd" in r] == pytest.approx(scored, rel=1e-5)

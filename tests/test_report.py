"""The run report: a page with no network references whose pictures all load, refreshed by `sagan train`, and
an attention explorer that responds to clicks in a real browser."""

import json
import os
import re
import shutil
import sys

import pytest
from conftest import browser_page, needs_browser, tiny_config

from sagan.cli import main
from sagan.viz.report import write_report


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from sagan.training.trainer import train

    run_dir = tmp_path_factory.mktemp("report") / "run"
    train(tiny_config(**{"model.attention": "official"}), run_dir, progress=False)
    return run_dir


def sources(page: str) -> list[str]:
    return re.findall(r'src="([^"]*)"', page)


def test_report_is_offline_and_its_files_exist(run):
    path = write_report(run)
    page = path.read_text()
    assert path == run / "report.html"
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(link|iframe)\b", page)  # no external stylesheets or frames
    srcs = sources(page)
    local = [s for s in srcs if not s.startswith("data:image/png;base64,")]
    assert local == ["samples/step-0000004.png"]  # the slider starts at the last grid
    data = json.loads(re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.DOTALL)[1])
    assert [s["step"] for s in data["samples"]] == [2, 4]
    assert all((run / s["src"]).is_file() for s in data["samples"])
    layers = data["explorer"]["layers"]
    assert [layer["name"] for layer in layers] == ["G attn16", "D attn8"]
    assert layers[0]["keys"] == [8, 8] and layers[0]["grid"] == [16, 16]  # official form: pooled keys
    assert len(srcs) >= 4 + 2 * 4 + 1  # thumbnails, a sprite per layer and image, colour bar
    for heading in ("Attention explorer", "Where the discriminator looks", "Samples during training", "Curves",
                    "Latest metrics", "Config"):
        assert f"<h2>{heading}</h2>" in page
    assert "<th>d_loss</th>" in page and "attention: official" in page
    assert re.search(r'alt="discriminator saliency" src="data:image/png;base64,', page)


def test_report_draws_its_curves_without_matplotlib(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    page = write_report(run).read_text()
    charts = re.findall(r'<figure class="curve"><svg .*?</svg></figure>', page, re.DOTALL)
    titles = [re.search(r'aria-label="([^"]*)"', c)[1] for c in charts]
    assert [t.split(" · ")[0] for t in titles][:3] == ["Losses", "Discriminator outputs (batch mean logits)",
                                                        "Attention gamma (weight of each attention branch)"]
    losses = charts[0]
    assert "<polyline" in losses and ">D loss</text>" in losses and ">G loss</text>" in losses
    assert ">generator step</text>" in losses


TINY = ["--steps", "2", "--batch-size", "8", "--device", "cpu", "--no-progress", "--set", "model.g_channels=16",
        "--set", "model.d_channels=16", "--set", "model.z_dim=16", "--set", "train.num_samples=4"]


def test_training_refreshes_the_report_unless_told_not_to(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "a"), *TINY]) == 0
    assert "step 2" in (tmp_path / "a" / "report.html").read_text()
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "b"), "--no-report", "--dry-run", *TINY]) == 0
    assert "report: false" in capsys.readouterr().out


def test_refreshing_the_report_keeps_resume_exact(tmp_path):
    # The report rebuilds the networks from the checkpoint; that must not draw from the training's random stream.
    import torch

    from sagan.checkpoints import load

    every = ["--set", "train.checkpoint_every=2", "--set", "train.sample_every=2"]
    assert main(["train", "--out", str(tmp_path / "straight"), *TINY, *every, "--steps", "4"]) == 0
    assert main(["train", "--out", str(tmp_path / "halves"), *TINY, *every]) == 0
    assert main(["train", "--resume", str(tmp_path / "halves"), "--steps", "4", "--no-progress"]) == 0
    a, b = load(tmp_path / "straight"), load(tmp_path / "halves")
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])



def test_a_failing_report_refresh_is_a_warning(run, capsys, monkeypatch):
    from sagan.viz import report

    def broken(run_dir):
        raise RuntimeError("no room")

    monkeypatch.setattr(report, "write_report", broken)
    report.refresher(run)(run / "checkpoints" / "latest.pt")
    assert capsys.readouterr().err == "sagan: warning: report not refreshed: RuntimeError: no room\n"


def test_report_command_prints_the_page(run, capsys):
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert main(["report", str(run.parent / "missing")]) == 2


@needs_browser
def test_report_in_a_browser(run, tmp_path):
    with browser_page(write_report(run)) as page:
        assert page.broken_images() == []
        assert page.evaluate("document.images.length") >= 13
        # The SVG curves are laid out: each has a size on the page.
        sizes = page.evaluate("() => [...document.querySelectorAll('.curve svg')].map(s => s.getBBox().width)")
        assert len(sizes) >= 3 and min(sizes) > 100
        assert all(url.startswith(("file:", "data:")) for url in page.requests)

        canvas = page.locator("#map-canvas")
        before = canvas.evaluate("c => c.toDataURL()")
        caption = page.inner_text("#map-caption")
        box = page.locator("#query-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] - 3)  # hover: the bottom-right query
        assert "feature position (15, 15) of 16x16" in page.inner_text("#map-caption")
        page.mouse.click(box["x"] + 3, box["y"] + 3)  # click: the top-left query, pinned
        assert canvas.evaluate("c => c.toDataURL()") != before
        assert page.inner_text("#map-caption") != caption and "(pinned" in page.inner_text("#map-caption")
        assert "feature position (0, 0) of 16x16" in page.inner_text("#map-caption")

        page.select_option("#layer", "1")  # the discriminator's layer
        assert page.inner_text("#map-caption").startswith("D attn8")

        page.locator("#step-slider").fill("0")
        assert page.get_attribute("#progress-image", "src") == "samples/step-0000002.png"
        # The new grid loads after the slider moves: wait for it, and fail on a broken image or a timeout.
        page.wait_for_function("() => { const image = document.getElementById('progress-image'); "
                               "return image.complete && image.naturalWidth > 0 }", timeout=10_000)
        assert page.errors == []
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    if os.environ.get("SAGAN_SCREENSHOT"):  # to look at the page: SAGAN_SCREENSHOT=report.png pytest -m browser
        shutil.copy(tmp_path / "report.png", os.environ["SAGAN_SCREENSHOT"])

"""`sagan app`: the local page's answers, and the page itself in headless Chromium."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from conftest import browser_page, needs_browser, tiny_config

from sagan import api
from sagan.webapp import Studio
from sagan.errors import ConfigError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from sagan.training.trainer import train

    run_dir = tmp_path_factory.mktemp("app") / "run"
    train(tiny_config(**{"model.num_classes": 10, "train.report": False}), run_dir, progress=False)
    return run_dir


@pytest.fixture
def server(run):
    server = api.app(run, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_studio_samples_walks_and_shows_attention(run):
    studio = Studio(run)
    assert studio.info() | {"run": "run"} == {"run": "run", "z_dim": 16, "num_classes": 10, "resolution": 32,
                                              "layers": ["attn16"], "scale": 8}
    with pytest.raises(ConfigError, match="no sample yet"):
        studio.attention(0.5, 0.5)
    first = studio.sample(3, 0.7, 1)["image"]
    assert first.startswith("data:image/png;base64,") and studio.sample(3, 0.7, 1)["image"] == first
    assert studio.sample(4, None, None)["image"] != first
    maps = studio.attention(0.2, 0.9)["maps"]
    assert list(maps) == ["attn16"] and maps["attn16"] != studio.attention(0.8, 0.1)["maps"]["attn16"]
    assert len(studio.walk(1, 2, 5, None, 0)["frames"]) == 5
    with pytest.raises(ConfigError, match="frames: 40 is not between 2 and 32"):
        studio.walk(1, 2, 40, None, None)


def test_the_server_listens_on_this_machine_only_and_answers_mistakes_with_400(server):
    assert server.server_address[0] == "127.0.0.1"
    with urllib.request.urlopen(server.address + "api/info") as response:
        assert json.load(response)["layers"] == ["attn16"]
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(server.address + "api/sample?seed=x")
    assert error.value.code == 400 and json.load(error.value) == {"error": "seed: expected a number, got 'x'"}
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(server.address + "api/sample?class=17")
    assert error.value.code == 400 and "class labels must be 1 values in 0..9" in json.load(error.value)["error"]


@needs_browser
def test_the_app_in_a_browser(server):
    with browser_page(server.address) as page:
        page.wait_for_function("document.getElementById('sample').naturalWidth > 0")
        assert page.evaluate("document.getElementById('sample').naturalWidth") == 32 * 8
        assert "10 classes; attention layers: attn16" in page.inner_text("#about")
        page.fill("#seed", "5")
        before = page.get_attribute("#sample", "src")
        page.click("#generate")
        page.wait_for_function(f"document.getElementById('sample').src !== {json.dumps(before)}")
        page.click("#sample", position={"x": 60, "y": 200})
        page.wait_for_selector("#attention img")
        assert page.eval_on_selector_all("#attention figcaption", "els => els.map(e => e.textContent)") == ["attn16"]
        page.fill("#frames", "4")
        page.click("#walk")
        page.wait_for_function("document.querySelectorAll('#walk-frames img').length === 4")
        page.fill("#class", "19")
        page.click("#generate")
        page.wait_for_function("document.getElementById('error').textContent.includes('class labels')")
        assert page.errors == [] and page.broken_images() == []

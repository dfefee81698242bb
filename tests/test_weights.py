"""Weight files: explicit path, environment variable, torch hub cache, a verified download, the offline error."""

import functools
import hashlib
import http.server
import io
import socket
import threading

import pytest
import torch

from sagan.errors import MissingPathError, UserError
from sagan.metrics.weights import fetch_weights

STATE = {"layer.weight": torch.arange(6.0).view(2, 3), "layer.bias": torch.ones(2)}


def weight_bytes() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    torch.save(STATE, buffer)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def fetch(url="http://127.0.0.1:9/w.pth", prefix=None, **kwargs):
    digest = weight_bytes()[1]
    return fetch_weights(url, prefix or digest[:8], "net-weights.pth", what="test weights",
                         option="--test-weights", env_var="SAGAN_TEST_WEIGHTS", **kwargs)


def assert_state(state):
    assert state.keys() == STATE.keys() and all(torch.equal(state[k], STATE[k]) for k in STATE)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/w.pth"


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for the folder `tmp_path / "www"`; yields its base URL and a request counter."""
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    httpd.shutdown()
    httpd.server_close()


def test_cached_file_with_the_right_hash_loads(tmp_path, monkeypatch):
    monkeypatch.delenv("SAGAN_TEST_WEIGHTS", raising=False)
    data, digest = weight_bytes()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "net-weights.pth").write_bytes(data)
    state, sha = fetch(hub_dir=tmp_path)
    assert_state(state)
    assert sha == digest


def test_cached_file_with_a_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("SAGAN_TEST_WEIGHTS", raising=False)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "net-weights.pth").write_bytes(weight_bytes()[0])
    with pytest.raises(UserError, match="does not start with 00000000.*delete the file") as error:
        fetch(prefix="00000000", hub_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_download_is_verified_cached_and_done_once(tmp_path, server, monkeypatch):
    monkeypatch.delenv("SAGAN_TEST_WEIGHTS", raising=False)
    base, root, requests = server
    data, digest = weight_bytes()
    (root / "w.pth").write_bytes(data)
    hub = tmp_path / "hub"
    # the first mirror is down, the second serves the file
    state, sha = fetch(url=[closed_port_url(), f"{base}/w.pth"], hub_dir=hub)
    assert_state(state)
    assert sha == digest and (hub / "checkpoints" / "net-weights.pth").read_bytes() == data
    assert [p for p in (hub / "checkpoints").iterdir()] == [hub / "checkpoints" / "net-weights.pth"]
    fetch(url=f"{base}/w.pth", hub_dir=hub)
    assert len(requests) == 1


def test_download_with_a_wrong_hash_leaves_nothing(tmp_path, server, monkeypatch):
    monkeypatch.delenv("SAGAN_TEST_WEIGHTS", raising=False)
    base, root, _ = server
    (root / "w.pth").write_bytes(weight_bytes()[0])
    hub = tmp_path / "hub"
    with pytest.raises(UserError, match="expected 00000000"):
        fetch(url=f"{base}/w.pth", prefix="00000000", hub_dir=hub)
    assert list((hub / "checkpoints").iterdir()) == []


def test_offline_without_a_file_says_where_to_get_it_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SAGAN_TEST_WEIGHTS", raising=False)
    url = closed_port_url()
    with pytest.raises(MissingPathError) as error:
        fetch(url=url, hub_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    for part in ("test weights not found", f"get {url}", "--test-weights PATH", "SAGAN_TEST_WEIGHTS=PATH",
                 str(tmp_path / "checkpoints" / "net-weights.pth")):
        assert part in message


def test_explicit_path_and_environment_variable_win(tmp_path, monkeypatch):
    data, _ = weight_bytes()
    mine = tmp_path / "mine.pth"
    mine.write_bytes(data)
    other = {"x": torch.zeros(1)}
    torch.save(other, tmp_path / "env.pth")
    monkeypatch.setenv("SAGAN_TEST_WEIGHTS", str(tmp_path / "env.pth"))
    # a local file needs no published hash: it may hold other weights, and its own sha256 is returned
    assert fetch(url=closed_port_url(), hub_dir=tmp_path / "hub")[0].keys() == {"x"}
    assert_state(fetch(url=closed_port_url(), path=mine, hub_dir=tmp_path / "hub")[0])
    with pytest.raises(MissingPathError, match=r"--test-weights: no such file: .*missing\.pth"):
        fetch(path=tmp_path / "missing.pth", hub_dir=tmp_path / "hub")
    monkeypatch.setenv("SAGAN_TEST_WEIGHTS", str(tmp_path / "gone.pth"))
    with pytest.raises(MissingPathError, match=r"\$SAGAN_TEST_WEIGHTS: no such file"):
        fetch(hub_dir=tmp_path / "hub")


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth: cannot read test weights"):
        fetch(path=tmp_path / "junk.pth")


def test_a_file_cached_under_another_tools_name_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv("SAGAN_TEST_WEIGHTS", raising=False)
    data, digest = weight_bytes()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "other-tool-name.pth").write_bytes(data)
    state, sha = fetch_weights(closed_port_url(), digest[:8], ["net-weights.pth", "other-tool-name.pth"],
                               hub_dir=tmp_path)
    assert_state(state)
    assert sha == digest

"""`sagan app RUN`: a local web page to play with a trained generator: sample with a seed, truncation and class,
walk between two seeds, and click a point of a sample to see where each of G's attention layers looks from there.

Python's own HTTP server and one page (viz/templates/app.html); no web framework to install. It binds to 127.0.0.1
unless told otherwise, and runs the generator for one request at a time."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from . import checkpoints
from .errors import ConfigError, UserError
from .viz import attention, interpolate, layout
from .viz.report import data_uri


class Studio:
    """The requests the page makes, answered with the run's EMA generator."""

    def __init__(self, run: str | Path):
        self.run = Path(run)
        self.G = checkpoints.load_generator(run)
        self.lock = threading.Lock()  # one generator, one request at a time
        self.scale = layout.readable_scale(self.G.resolution, 256)
        self.last = None  # the last sample and its attention maps: what a click on it asks about

    def info(self) -> dict:
        return {"run": self.run.resolve().name, "z_dim": self.G.z_dim, "num_classes": self.G.num_classes,
                "resolution": self.G.resolution, "layers": list(attention.layers(self.G)), "scale": self.scale}

    def sample(self, seed: int, truncation: float | None, label: int | None) -> dict:
        with self.lock, attention.Recorder(self.G) as recorder:
            images = self.G.sample(1, seed, self._labels(label), truncation=truncation)
        self.last = (images, recorder.maps)
        return {"image": data_uri(layout.upscale(layout.rgb(images[0]), self.scale))}

    def attention(self, y: float, x: float) -> dict:
        """Each attention layer's map for the query nearest to the image point (y, x), in [0, 1] coordinates, of
        the last sample."""
        if self.last is None:
            raise ConfigError("no sample yet: generate one first")
        images, maps = self.last
        image = layout.upscale(layout.rgb(images[0]), self.scale)
        size = image.shape[:2]
        out = {}
        for name, m in maps.items():
            h, w = m.feature_size
            query = (min(int(y * h), h - 1), min(int(x * w), w - 1))
            overlay = attention.overlay(image, m.image_map(0, query, size))
            out[name] = data_uri(layout.mark(overlay, [m.query_pixel(query, size)], [layout.PALETTE[0]], radius=4))
        return {"maps": out}

    def walk(self, a: int, b: int, frames: int, truncation: float | None, label: int | None) -> dict:
        if not 2 <= frames <= 32:
            raise ConfigError(f"frames: {frames} is not between 2 and 32")
        with self.lock:
            images, _ = interpolate.seed_path(self.G, (a, b), frames, truncation, label)
        return {"frames": [data_uri(layout.upscale(layout.rgb(image), 2)) for image in images]}

    def _labels(self, label: int | None):
        return None if label is None else self.G.make_labels(1, label)


def _number(query: dict, name: str, kind=int, default=None):
    value = query.get(name, [""])[0]
    if value == "":
        return default
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None


def handler(studio: Studio) -> type[BaseHTTPRequestHandler]:
    page = resources.files("sagan.viz").joinpath("templates", "app.html").read_text()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            try:
                if url.path == "/":
                    return self._send(200, "text/html; charset=utf-8", page.encode())
                truncation, label = _number(q, "truncation", float), _number(q, "class")
                answers = {
                    "/api/info": lambda: studio.info(),
                    "/api/sample": lambda: studio.sample(_number(q, "seed", default=0), truncation, label),
                    "/api/attention": lambda: studio.attention(_number(q, "y", float, 0.5),
                                                               _number(q, "x", float, 0.5)),
                    "/api/walk": lambda: studio.walk(_number(q, "a", default=0), _number(q, "b", default=1),
                                                     _number(q, "frames", default=8), truncation, label),
                }
                if url.path not in answers:
                    return self._send(404, "application/json", json.dumps({"error": "not found"}).encode())
                return self._send(200, "application/json", json.dumps(answers[url.path]()).encode())
            except UserError as e:  # a bad value in the page's fields: say which, keep serving
                return self._send(400, "application/json", json.dumps({"error": str(e)}).encode())

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet: the console shows the address, not every request
            pass

    return Handler


def make_server(run: str | Path, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """The app's server for `run` (port 0: any free port); `serve_forever()` runs it."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 0-65535 (0: any free port)")
    studio = Studio(run)
    try:
        server = ThreadingHTTPServer((host, port), handler(studio))
    except OSError as e:
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror})") from None
    server.address = f"http://{server.server_address[0]}:{server.server_address[1]}/"
    return server

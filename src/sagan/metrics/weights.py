"""Finding, downloading and loading published network weights (FID Inception, VGG16).

Where a file comes from, first match wins: an explicit path (a CLI option), an environment variable, the torch hub
cache (`torch.hub.get_dir()/checkpoints/<file name>`, where torch.hub itself would put it), else one download from
the published URL(s) into that cache. Downloads are checked against the sha256 prefix in the file name (the torch
hub convention) before they are renamed into place, so the cache never holds a partial or wrong file.
"""

import hashlib
import http.client
import os
from pathlib import Path

import torch

from ..errors import ConfigError, MissingPathError, UserError
from ..fetch import fetch_file, file_digest


def fetch_weights(url: str | list[str], sha256_prefix: str, filename: str | list[str], path=None,
                  env_var: str | None = None, hub_dir=None, what: str = "network weights",
                  option: str | None = None) -> tuple[dict, str]:
    """The state dict of a published weight file and the file's full sha256 (hex).

    `url`: the published URL, or a list of mirrors tried in order. `filename`: its name in the torch hub cache, or
    a list of names other tools save the same file under (a download is saved under the first). `path` (from
    `option`, e.g. "--inception-weights") or `$env_var` names a local file and wins; such a file may hold other
    weights than the published ones (its own sha256 is returned, so statistics made with it are told apart). Raises
    `MissingPathError` with one line saying where to get the file and where to put it when there is no file and
    no download is possible.
    """
    file = weights_file(url, sha256_prefix, filename, path, env_var, hub_dir, what, option)
    digest = file_digest(file, "sha256")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: say which file, in one line
        raise UserError(f"{file}: cannot read {what} ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise UserError(f"{file}: expected a state dict of {what}, found {type(state).__name__}")
    return state, digest


def weights_file(url: str | list[str], sha256_prefix: str, filename: str | list[str], path=None,
                 env_var: str | None = None, hub_dir=None, what: str = "network weights",
                 option: str | None = None) -> Path:
    """The local path of a weight file, downloading it into the torch hub cache if needed (see `fetch_weights`)."""
    urls = [url] if isinstance(url, str) else list(url)
    if path is not None:
        return _existing(path, option or "weights path")
    if env_var and os.environ.get(env_var):
        return _existing(os.environ[env_var], f"${env_var}")
    checkpoints = Path(hub_dir if hub_dir is not None else torch.hub.get_dir()) / "checkpoints"
    names = [filename] if isinstance(filename, str) else list(filename)
    for cached in (checkpoints / name for name in names):
        if cached.is_file():
            digest = file_digest(cached, "sha256")
            if not digest.startswith(sha256_prefix):
                raise UserError(f"{cached}: sha256 {digest[:8]}... does not start with {sha256_prefix}; the cached "
                                f"{what} are damaged, delete the file to download it again")
            return cached
    cached = checkpoints / names[0]
    reasons = []
    for u in urls:
        try:
            _download(u, cached, sha256_prefix)
            return cached
        except (OSError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
            reasons.append(str(getattr(e, "reason", e)))
    where = f"pass {option} PATH, " if option else ""
    env = f"set {env_var}=PATH, " if env_var else ""
    raise MissingPathError(f"{what} not found and could not be downloaded ({reasons[0] if reasons else 'no URL'}); "
                           f"get {urls[0]} and {where}{env}or put it at {cached}")


def load_strict(net: torch.nn.Module, state: dict, weights, env_var: str, expected: str) -> None:
    """Load `state` into `net` strictly, taking its tensors; wrong keys or shapes are one line naming where the
    weights came from (`weights`: the state dict or path given, else `env_var`, else the cache)."""
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        source = "the given state dict" if isinstance(weights, dict) else weights or os.environ.get(env_var) \
            or "the cached weight file"
        problem = " ".join(str(e).split("\n", 1)[-1].split())[:200]
        raise ConfigError(f"{source}: not {expected} ({problem})") from None


def _existing(path, source: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingPathError(f"{source}: no such file: {path}")
    return path


def _download(url: str, dest: Path, sha256_prefix: str) -> None:
    """Download `url` to `dest` if its sha256 starts with `sha256_prefix`; otherwise nothing is saved."""
    digest = fetch_file(url, dest, "sha256", lambda found: found.startswith(sha256_prefix))
    if not digest.startswith(sha256_prefix):
        raise UserError(f"{url}: downloaded file has sha256 {digest[:8]}..., expected {sha256_prefix}...; "
                        f"not saved")


def state_digest(state: dict) -> str:
    """A short content hash of a state dict's names and values, so statistics made with different provided weights
    never mix."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]

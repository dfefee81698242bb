"""Downloading one file and checking its digest: shared by dataset downloads and network weights. Nothing here runs
unless a download is asked for."""

import hashlib
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

TIMEOUT_S = 60  # per network operation, not the whole download
CHUNK = 1 << 20


def fetch_file(url: str, path: Path, algorithm: str, accept: Callable[[str], bool], progress: bool = True) -> str:
    """Stream `url` into a temporary file beside `path` with a progress bar; rename it to `path` only if `accept`
    takes its hex digest (`algorithm`: md5, sha256). Returns the digest of the bytes received. Network failures and
    truncated bodies are OSErrors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, received = _hasher(algorithm), 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=path.name,
                      disable=not progress, file=sys.stderr) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise OSError(f"connection closed after {received} of {total} bytes")
        found = digest.hexdigest()
        if accept(found):
            os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
            os.replace(tmp, path)
        return found
    finally:
        Path(tmp).unlink(missing_ok=True)


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """The hex digest (md5, sha256) of the file at `path`."""
    digest = _hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hasher(algorithm: str):
    # The digests check files against published sums, not security: usedforsecurity=False lets FIPS builds run MD5.
    return hashlib.new(algorithm, usedforsecurity=False)

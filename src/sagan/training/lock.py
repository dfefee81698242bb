"""One writer per run directory: `RUN/.lock` holds the owner's PID and host while `sagan train` writes RUN."""

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError

LOCK = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Create `run_dir` if needed and hold RUN/.lock for the block; a folder it created and left empty is removed
    after. A lock of a live process refuses with one line; one left by a process that is gone (same host, dead
    PID) is taken over with a warning."""
    created = not run_dir.exists()
    with writable(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = _create(run_dir / LOCK)
        with os.fdopen(fd, "w") as f:
            json.dump(_owner(), f)
    try:
        yield
    finally:
        (run_dir / LOCK).unlink(missing_ok=True)
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()


@contextlib.contextmanager
def writable(run_dir: Path) -> Iterator[None]:
    """Starting a run: an OSError writing `run_dir` (read-only, a file in the way, a full disk) is for the user to
    fix, and said in one line."""
    try:
        yield
    except OSError as e:
        raise UserError(f"cannot write the run directory {run_dir}: {e.strerror or e} "
                        f"({e.filename or run_dir})") from None


def _create(path: Path) -> int:
    """Open a new lock file at `path` (O_EXCL: of two processes, one wins), taking over a stale one."""
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None and _age(path) > 10:  # its writer was killed between creating and filling it
                holder = {"pid": "unknown", "host": socket.gethostname()}
            if holder is None or holder["host"] != socket.gethostname() or _alive(holder["pid"]):
                who = (f"pid {holder['pid']} on {holder['host']}, since {holder['since']}" if holder
                       else "a process whose lock file is being written")
                raise UserError(f"{path.parent} is being written by another sagan train ({who}); wait for it to end "
                                f"or pick another --out (a lock left by a crashed run on another host: delete {path})")
            warnings.warn(f"{path.parent}: taking over the lock of pid {holder['pid']}, which is no longer running",
                          stacklevel=4)
            path.unlink(missing_ok=True)


def _owner() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _read(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
        return holder if {"pid", "host", "since"} <= set(holder) else None
    except (OSError, ValueError):
        return None  # gone since, or being written this instant


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(pid: int | str) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True

"""What a run reports: `metrics.jsonl` (one JSON object per log interval and one per epoch), `train.log`, and the
experiment trackers of `train.loggers` (`trackers.py`). In a multi-process run the statistics are averaged over
the processes and only rank 0 writes."""

import json
import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..files import atomic_write_text
from ..trackers import Tracker
from . import distributed


class RunLog:
    def __init__(self, run_dir: Path, drop_after: int = 0, trackers: list[Tracker] = ()):
        """`drop_after`: the step a run starts from (a resumed run's checkpoint, else 0); the records past it,
        written after that checkpoint by a process that was killed, are dropped, so no step is recorded twice.
        `trackers` receive every record and sample grid."""
        self.metrics_path = run_dir / "metrics.jsonl"
        self.logger = logging.getLogger(f"sagan.run.{run_dir.resolve()}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.writes = distributed.is_main()
        self.rewind(drop_after)
        self.handler = logging.FileHandler(run_dir / "train.log") if self.writes else logging.NullHandler()
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        self.logger.addHandler(self.handler)
        self.trackers = list(trackers)

    def rewind(self, step: int, epoch: "Sums | None" = None) -> None:
        """Go back to `step`: drop metrics.jsonl's records past it (the trackers keep what they were sent) and start
        the statistics afresh, those of this epoch from `epoch`."""
        if self.writes and self.metrics_path.is_file():
            lines = self.metrics_path.read_text().splitlines()
            kept = [line for line in lines if _step(line) <= step]
            if len(kept) < len(lines):  # rewritten only when there is something to drop
                atomic_write_text(self.metrics_path, "".join(line + "\n" for line in kept))
        self.interval, self.epoch = Sums(), epoch or Sums()  # of the statistics since the last flush, and this epoch
        self.interval_start = time.perf_counter()

    def info(self, message: str) -> None:
        self.logger.info(message)

    def accumulate(self, stats: dict[str, torch.Tensor]) -> None:
        """Add one step's statistics; they stay on the device until `flush`, so logging costs no sync per step."""
        self.interval.add(stats)
        self.epoch.add(stats)

    def flush(self, step: int, extra: dict[str, float]) -> dict[str, float]:
        """Average the statistics since the last flush, write them with `extra` and the step rate; returns the
        record."""
        now = time.perf_counter()
        record = {"step": step} | self.interval.means()
        record["steps_per_s"] = self.interval.count / max(now - self.interval_start, 1e-9)
        record.update(extra)
        self.write(record)
        self.interval, self.interval_start = Sums(), now
        return record

    def end_epoch(self, step: int, epoch: int, epochs: int, console: bool = True) -> dict[str, float]:
        """Write the means of every step of the epoch that just ended: a metrics.jsonl record (`<stat>_epoch`)
        and the line `Epoch: e/E, Generator Loss: x, Discriminator Loss: y` in train.log and, with `console`, on
        the console."""
        means = self.epoch.means()
        record = {"step": step, "epoch": epoch} | {f"{key}_epoch": value for key, value in means.items()}
        self.write(record)
        line = (f"Epoch: {epoch}/{epochs}, Generator Loss: {means.get('g_loss', math.nan):.4f}, "
                f"Discriminator Loss: {means.get('d_loss', math.nan):.4f}")
        self.info(line)
        if self.writes and console:
            tqdm.write(line)
        self.epoch = Sums()
        return record

    def write(self, record: dict[str, float]) -> None:
        """Append one record (with its "step") to metrics.jsonl, train.log and TensorBoard (rank 0 only)."""
        if self.writes:  # one line per write, flushed: a killed run leaves whole lines, at most one cut short
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        self.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        for tracker in self.trackers:
            tracker.scalars({k: v for k, v in record.items() if k != "step"}, record["step"])

    def image(self, name: str, image, step: int) -> None:
        """A picture for the trackers (uint8 HWC), e.g. the sample grid."""
        for tracker in self.trackers:
            tracker.image(name, image, step)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        for tracker in self.trackers:
            tracker.close()


def _step(line: str) -> float:
    """The step of a metrics.jsonl line; infinity for a line cut short by a killed process, so it is dropped."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


class Sums:
    """Running sums of per-step statistics (device tensors) and the number of steps added."""

    def __init__(self, sums: dict[str, torch.Tensor] | None = None, count: int = 0):
        self.sums, self.count = dict(sums or {}), count

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1

    def means(self) -> dict[str, float]:
        """The means over the steps added, averaged over the processes of a multi-process run."""
        if not self.count:  # every step of it left out by a rollback
            return {}
        means = distributed.average(torch.stack([value.float() for value in self.sums.values()]) / self.count)
        return dict(zip(self.sums, means.tolist()))

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}

"""Periodic evaluation during training: scores the EMA generator every `eval.every` steps and keeps
`checkpoints/best.pt`."""

import math
from pathlib import Path

import torch

from .. import checkpoints, data
from ..config import Config
from ..errors import ConfigError
from ..evaluation import held_out, reference_stats
from ..files import atomic_write_bytes
from ..metrics.evaluate import HIGHER_IS_BETTER, Evaluator, generator_batches
from .runlog import RunLog

BEST = "best.pt"


class PeriodicEvaluation:
    """`cfg.eval` during training: scores the EMA generator, logs the results to metrics.jsonl / TensorBoard and
    keeps `checkpoints/best.pt` (generator and config) for the best value of `eval.best_metric`."""

    def __init__(self, cfg: Config, run_dir: Path, device: torch.device, dataset, load_dataset):
        """`dataset`: the loaded training set; `load_dataset(DataConfig)` loads another part of its data. Without
        `eval.reference`, the reference is the part `evaluation.held_out` picks by `eval.split`."""
        e = cfg.eval
        self.cfg = cfg
        self.evaluator = Evaluator(e.metrics, e.backbone, device, e.inception_weights, e.vgg16_weights,
                                   batch_size=e.batch_size, progress=False, option="eval.metrics")
        self.best_metric = e.best_metric or self.evaluator.headlines()[0]
        if self.best_metric not in self.evaluator.headlines():
            raise ConfigError(f"eval.best_metric: '{e.best_metric}' is not a result of eval.metrics "
                              f"(choose from {', '.join(self.evaluator.headlines())})")
        own = None
        if not e.reference:
            part = held_out(cfg.data, e.split)
            own = (dataset if part == cfg.data else load_dataset(part), part)
        self.reference, self.against = reference_stats(
            self.evaluator, e.reference or cfg.data.name, data_root=cfg.data.root, split=e.split,
            resolution=cfg.data.resolution, channels=cfg.data.channels, crop=cfg.data.crop,
            max_images=e.reference_samples, batch_size=e.batch_size,
            workers=0 if isinstance(dataset, data.ArrayDataset) else cfg.data.workers, dataset=own)
        self.best_path = checkpoints.checkpoint_dir(run_dir) / BEST
        self.best = self._recorded_best()

    def __call__(self, step: int, G: torch.nn.Module, log: RunLog, state: dict) -> dict[str, float]:
        """Evaluate `G` at `step`; `state` is the checkpoint content saved as best.pt when the result improves."""
        e = self.cfg.eval
        results = self.evaluator(generator_batches(G, e.num_samples, self.cfg.train.seed, e.batch_size),
                                 e.num_samples, self.reference)
        name = self.best_metric
        log.write({"step": step} | {f"eval/{k}": v for k, v in results.items()})
        value = results[name]
        sign = 1 if name in HIGHER_IS_BETTER else -1
        if math.isfinite(value) and (self.best is None or sign * value > sign * self.best):
            self.best = value
            best = state | {"eval": {"metric": name, "value": value}}
            atomic_write_bytes(self.best_path, checkpoints.serialize(best))
            log.info(f"eval step {step}: best {name} {value:.4g}, saved {self.best_path}")
        return results

    def _recorded_best(self) -> float | None:
        """The value stored in an existing best.pt, so a resumed run keeps its best checkpoint."""
        if not self.best_path.is_file():
            return None
        return checkpoints.load(self.best_path).get("eval", {}).get("value")

"""Experiment trackers that receive what `metrics.jsonl` and `samples/` receive (`train.loggers`): TensorBoard,
Weights & Biases and MLflow, each an optional extra, one registry (TRACKERS). A resumed run continues the same
tracker run: its id is kept in the run directory."""

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import MissingExtraError


class Tracker:
    def scalars(self, record: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TensorBoard(Tracker):
    """Event files in RUN/tensorboard."""

    def __init__(self, run_dir: Path, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def scalars(self, record, step):
        for key, value in record.items():
            self.writer.add_scalar(key, value, step)

    def image(self, name, image, step):
        self.writer.add_image(name, image, step, dataformats="HWC")

    def close(self):
        self.writer.close()


class WandB(Tracker):
    """A W&B run named after the run directory, files in RUN/wandb; WANDB_PROJECT (default sagan), WANDB_MODE
    (offline: no network) and the other W&B variables apply."""

    def __init__(self, run_dir: Path, config: dict):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "sagan"), name=run_dir.resolve().name,
                              id=_run_id(run_dir, "wandb", lambda: secrets.token_hex(4)), resume="allow",
                              dir=str(run_dir), config=config)

    # Not committed at once: a step's scalars and its sample grid arrive apart and make one history row, which
    # W&B writes when a later step (or the end) comes.
    def scalars(self, record, step):
        self.run.log(record, step=step, commit=False)

    def image(self, name, image, step):
        self.run.log({name: self.wandb.Image(image)}, step=step, commit=False)

    def close(self):
        self.run.finish()


class MLflow(Tracker):
    """An MLflow run named after the run directory, in MLFLOW_TRACKING_URI's store, else a file store in
    RUN/mlruns; MLFLOW_EXPERIMENT_NAME (default sagan) names the experiment."""

    def __init__(self, run_dir: Path, config: dict):
        import mlflow

        self.mlflow = mlflow
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # a file store needs no server or database; MLflow 3 keeps it behind this switch
            uri = (run_dir / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "sagan"))
        known = (run_dir / "mlflow-run-id").read_text().strip() if (run_dir / "mlflow-run-id").is_file() else None
        self.run = mlflow.start_run(run_id=known, run_name=None if known else run_dir.resolve().name)
        if known is None:
            (run_dir / "mlflow-run-id").write_text(self.run.info.run_id)
            mlflow.log_params(_flat(config))

    def scalars(self, record, step):
        self.mlflow.log_metrics({key.replace("/", "."): value for key, value in record.items()}, step=step)

    def image(self, name, image, step):
        self.mlflow.log_image(image, key=name, step=step)

    def close(self):
        self.mlflow.end_run()


# train.loggers: name -> (the tracker's class, its package, the pyproject extra that installs it)
TRACKERS: dict[str, tuple[Callable[[Path, dict], Tracker], str, str]] = {
    "tensorboard": (TensorBoard, "tensorboard", "tensorboard"),
    "wandb": (WandB, "wandb", "wandb"),
    "mlflow": (MLflow, "mlflow", "mlflow"),
}


def check(names: list[str]) -> None:
    """Each requested tracker's package is installed: a one-line error naming the extra otherwise."""
    import importlib.util

    for name in names:
        _, package, extra = TRACKERS[name]
        if importlib.util.find_spec(package) is None:
            raise MissingExtraError(f"train.loggers: {name} needs the {package} package: pip install 'sagan[{extra}]'")


def start(names: list[str], run_dir: Path, config: dict) -> list[Tracker]:
    return [TRACKERS[name][0](run_dir, config) for name in names]


def _run_id(run_dir: Path, tracker: str, new: Callable[[], str]) -> str:
    """The tracker run id kept in RUN/<tracker>-run-id, made on the first start."""
    path = run_dir / f"{tracker}-run-id"
    if not path.is_file():
        path.write_text(new())
    return path.read_text().strip()


def _flat(config: dict, prefix: str = "") -> dict[str, str]:
    """The config as MLflow parameters: dotted keys, values as text (at most 500 characters each)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out

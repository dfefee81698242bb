"""The training loop, readable top to bottom: data -> D step(s) -> G step -> EMA -> log -> samples -> evaluation ->
checkpoint."""

import contextlib
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import checkpoints, data, trackers
from ..config import Config, DataConfig, TrainConfig, dataset_options, to_dict, to_yaml, validate
from ..errors import ConfigError, DataError, Interrupted, NonFiniteError, RunError, UserError
from ..files import atomic_write_text, remove_temporaries
from ..images import make_grid, save_png
from ..optim import run_epochs, run_steps
from ..runtime import capture_rng, check_amp, restore_rng, seed_everything, tune_backends
from ..viz import sheets
from . import distributed, transfer
from .batches import batch_loader
from .divergence import FirstNonFinite, check_finite, stopped
from .evaluation import PeriodicEvaluation
from .gan import GANTraining
from .lock import run_lock, writable
from .runlog import RunLog, Sums
from .signals import stop_on_signals


def train(cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = True,
          on_checkpoint: Callable[[Path], None] | None = None) -> dict:
    """Train for `cfg.train.steps` generator steps or `cfg.train.epochs` epochs; with `resume`, continue from
    `run_dir`'s latest checkpoint. `on_checkpoint` is called with each checkpoint's path once it is written. Returns
    the last record written to metrics.jsonl ({} when a resumed run is already at its end). Under torchrun
    (`distributed.process_group`) every process calls it: each trains on its share of every batch, rank 0 writes
    the run directory, holding its lock (one writer per run). SIGINT / SIGTERM stop it at the end of a step with a
    checkpoint (`errors.Interrupted`); diverged losses stop it before one (`errors.NonFiniteError`)."""
    validate(cfg)
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)
    with run_lock(run_dir) if distributed.is_main() else contextlib.nullcontext():
        check_run_dir(run_dir, resume)  # again: another process may have finished a run there meanwhile
        return _train(cfg, run_dir, resume, progress, on_checkpoint)


def preflight(cfg: Config, run_dir: str | Path | None, resume: bool = False, dataset=None):
    """What `train` checks before its work, without writing anything: the config, the run directory, the run
    whose weights it starts from, and the dataset's index (its files listed, not decoded; or `dataset`, already
    listed) against the model; returns the dataset. `sagan train --dry-run` runs it."""
    validate(cfg)
    if run_dir is not None:
        check_run_dir(Path(run_dir), resume)
    if cfg.train.init_from and not resume:
        transfer.load_source(cfg.train.init_from, cfg)
    dataset = data.from_config(cfg.data) if dataset is None else dataset
    check_dataset(cfg, dataset)
    return dataset


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """A new run needs a folder (or a path for one) that holds no run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} exists and is not a folder")
    if not resume and (checkpoints.checkpoint_dir(run_dir) / checkpoints.LATEST).exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")


def _train(cfg: Config, run_dir: Path, resume: bool, progress: bool, on_checkpoint) -> dict:
    t = cfg.train
    device = distributed.local_device(t.device)
    check_amp(t.amp, device)
    tune_backends(device)

    # Load the training set.
    dataset = load_training_set(cfg, progress)
    batches_per_epoch = len(dataset) // t.batch_size
    total_steps = run_steps(t, batches_per_epoch)
    epochs = run_epochs(t, total_steps, batches_per_epoch)
    local_batch = distributed.local_batch(t.batch_size)

    # Evaluation networks and reference statistics, before seeding, so they leave the training RNG alone. Under
    # torchrun rank 0 evaluates while the other processes wait for it at their next gradient all-reduce.
    evaluation = (PeriodicEvaluation(cfg, run_dir, device, dataset, lambda d: load_dataset(d, progress, every=False))
                  if (cfg.eval.every or cfg.eval.at_end) and distributed.is_main() else None)

    # Build the networks and optimisers; seeded, so the recorded config reproduces the run.
    seed_everything(t.seed)
    gan = GANTraining(cfg, device, batches_per_epoch, total_steps)
    step, batches_seen, rank_rng, epoch_sums, last_checkpoint, seconds = 0, 0, None, Sums(), None, 0.0
    skipped = set()  # train.on_nonfinite=rollback: the steps whose batches the run leaves out
    transferred = []  # with train.init_from: what the source's weights gave this run
    if resume:
        state, last_checkpoint = checkpoints.load_newest(run_dir, device)
        seconds = state.get("train_seconds", 0.0)
        if state["step"] >= total_steps or out_of_time(t, seconds):
            return {}
        step, batches_seen, epoch_sums = restore(gan, state)
        rank_rng = state.get("rank_rng")
        skipped = set(state.get("skipped_steps", []))
        warn_if_threads_differ(state.get("threads"), device)
    elif t.init_from:
        transferred = transfer.initialise(gan, t.init_from, cfg)
    # With several processes: latents of their own, gradients averaged by DDP (no-ops in one process).
    distributed.seed_process(t.seed, step, rank_rng)
    distributed.data_parallel(gan, t.sync_bn)

    # Prepare the run directory.
    main = distributed.is_main()
    if main:
        with writable(run_dir):
            for folder in (run_dir, checkpoints.checkpoint_dir(run_dir), run_dir / "samples"):
                remove_temporaries(folder)  # left by a process killed mid-write; this one holds the lock
            (run_dir / "samples").mkdir(exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    # Records of a killed process past the checkpoint go; the trackers receive what metrics.jsonl does.
    log = RunLog(run_dir, drop_after=step, trackers=trackers.start(t.loggers, run_dir, to_dict(cfg)) if main else [])
    log.epoch = epoch_sums
    processes = f" x {distributed.world_size()} processes" if distributed.world_size() > 1 else ""
    log.info(f"{'resumed at step ' + str(step) if resume else 'started'}: preset {cfg.preset or '(none)'}, "
             f"{dataset.description}, device {device}"
             f"{processes}, G {_millions(gan.G)}M / D {_millions(gan.D)}M parameters")
    if resume and last_checkpoint.name != checkpoints.LATEST:
        log.info(f"resumed from {last_checkpoint}: {checkpoints.LATEST} is unreadable")
    for line in transferred:
        log.info(line)
    for net, names in gan.frozen.items():
        if names:
            log.info(f"frozen in {net}: {', '.join(names)}")
    if gan.compiling.note:
        log.info(gan.compiling.note)
    for reason in getattr(dataset, "skipped", {}).values():
        log.info(f"left out of the dataset: {reason}")
    if evaluation is not None:
        when = f"every {cfg.eval.every} steps and at the end" if cfg.eval.every else "at the end"
        log.info(f"evaluation {when}, against {evaluation.against}")
    sample_labels, nrow = sample_grid_labels(cfg)
    real = sheets.real_images(dataset, t.num_samples, t.seed) if t.epoch_sheets else None
    workers = 0 if isinstance(dataset, data.ArrayDataset) else cfg.data.workers
    batches_from = lambda start: batch_loader(dataset, t.batch_size, t.seed, start, workers,
                                              pin_memory=device.type == "cuda", rank=distributed.rank(),
                                              processes=distributed.world_size())
    batches = batches_from(batches_seen)
    bar = tqdm(total=total_steps, initial=step, desc=str(run_dir), unit="step", dynamic_ncols=True,
               disable=not (progress and main))
    record: dict = {}
    # train.on_nonfinite=rollback: the first step that went non-finite, and the returns to the last checkpoint
    # since it was written
    first_bad = FirstNonFinite([gan.G, gan.D], device) if t.on_nonfinite == "rollback" else None
    rollbacks, checkpointed = 0, resume  # checkpointed: on every process, unlike last_checkpoint

    def save_checkpoint() -> Path | None:
        nonlocal last_checkpoint, rollbacks, checkpointed
        check_finite(step, gan.G, gan.D, log.interval.sums)  # never checkpoint a diverged state
        distributed.check_in_sync({"G": gan.G, "D": gan.D, "G_ema": gan.G_ema})
        # The epoch's sums so far, averaged over the processes, so a resumed run's epoch means are exact.
        epoch = {"sums": {k: distributed.average(v) for k, v in log.epoch.sums.items()}, "count": log.epoch.count}
        state = gan.state_dict() | {"step": step, "config": to_dict(cfg), "rng": capture_rng(),
                                    "threads": torch.get_num_threads(), "epoch_sums": epoch,
                                    "train_seconds": clock()}
        state["rng"]["data_batches"] = batches_seen
        state["skipped_steps"] = sorted(s for s in skipped if s > step)  # a signal's checkpoint can precede one
        if distributed.world_size() > 1:  # the other processes' latent streams, for an exact resume
            state["rank_rng"] = distributed.all_gather_object(capture_rng())[1:]
        if main:
            last_checkpoint = checkpoints.save(run_dir, state, t.keep_checkpoints)
            log.info(f"checkpoint {last_checkpoint}")
            if on_checkpoint is not None:
                on_checkpoint(last_checkpoint)
        rollbacks, checkpointed = 0, True
        return last_checkpoint

    def roll_back(error: NonFiniteError) -> None:
        """Stop with `error` or (train.on_nonfinite=rollback, at most train.rollbacks times per checkpoint) go back
        to the last checkpoint, to replay the run from there without the batches of the first non-finite step."""
        nonlocal step, batches_seen, batches, rollbacks
        if first_bad is None or not checkpointed or rollbacks == t.rollbacks or signum:  # signum: asked to stop
            error = stopped(error, last_checkpoint, t.on_nonfinite, rollbacks)
            log.info(str(error))
            raise error
        bad_step = min(distributed.all_gather_object(first_bad.pop() or step))  # the processes agree on it
        state, path = checkpoints.load_newest(run_dir, device)
        step, batches_seen, epoch_sums = restore(gan, state)
        distributed.seed_process(t.seed, step, state.get("rank_rng"))
        log.rewind(step, epoch_sums)
        batches = batches_from(batches_seen)
        skipped.add(bad_step)
        rollbacks += 1
        bar.update(step - bar.n)
        log.info(f"{error}: rolled back to {path} (step {step}), to go on without the batches of step {bad_step} "
                 f"(rollback {rollbacks} of {t.rollbacks})")

    if gan.compiling.mode:
        bar.set_postfix_str("compiling G and D: the first steps take longer")

    def note(line: str) -> None:  # what the first compiled step says: in the log and on the bar
        log.info(line)
        bar.set_postfix_str(line)

    started = time.monotonic() - seconds
    clock = lambda: time.monotonic() - started  # seconds of training, the earlier processes' included
    # A write that fails mid-run (a full disk, a folder gone read-only) ends it with one line.
    write_failed = lambda: (f"at step {step}; the last good checkpoint is {last_checkpoint or 'not written yet'}; "
                            f"resume with: sagan train --resume {run_dir}")
    with stop_on_signals() as stop, contextlib.closing(bar), contextlib.closing(log), one_line_io_errors(write_failed):
        last, signum = False, 0  # the run's last step: at its steps (or epochs), or at its time budget
        while not last:
            try:
                # Update D on n_dis batches of real images (its statistics: their mean), then G, its moving
                # average and the learning rates.
                real_batches = [next(batches) for _ in range(t.n_dis)]
                batches_seen += t.n_dis
                step += 1
                if step not in skipped:  # a rolled-back run leaves out the step that went non-finite
                    stats = gan.train_step(real_batches, local_batch, step, note)
                    log.accumulate(stats)
                    if first_bad is not None:
                        first_bad.observe(step, stats)
                gan.step_schedules()
                bar.update()
                signum, timed_out = stop.agreed(out_of_time(t, clock()))
                if timed_out:
                    log.info(f"time budget of {t.max_minutes:g} minutes reached at step {step} of {total_steps}")

                # Log the epoch that ended, the log interval, write samples, checkpoint.
                if epoch := epoch_ended(batches_seen, t.n_dis, batches_per_epoch):
                    log.end_epoch(step, epoch, epochs, console=t.epochs > 0)  # a run of steps shows its bar
                    if main and t.epoch_sheets:
                        sheet = epoch_sheet(gan.G_ema, real, epoch, epochs)
                        save_png(sheet, run_dir / "samples" / f"epoch-{epoch:04d}.png")
                last = step == total_steps or timed_out
                if step % t.log_every == 0 or last:
                    gammas = gan.gammas()
                    record = log.flush(step, {
                        "epoch": batches_seen / batches_per_epoch,
                        "kimg": batches_seen * t.batch_size / 1000,
                        "lr_g": gan.opt_g.param_groups[0]["lr"],
                        "lr_d": gan.opt_d.param_groups[0]["lr"],
                        "minutes": clock() / 60,
                    } | {f"gamma/{name}": value for name, value in gammas.items()} | gan.augment.stats())
                    check_finite(step, gan.G, gan.D, log.interval.sums, record)
                    bar.set_postfix_str(" ".join(f"{name} {record[key]:.3f}" for name, key in
                                                 (("D", "d_loss"), ("G", "g_loss")) if key in record)
                                        + "".join(f" γ{name} {value:+.3f}" for name, value in gammas.items()))
                if main and (step % t.sample_every == 0 or last):
                    path = run_dir / "samples" / f"{checkpoints.step_name(step)}.png"
                    grid = sample_grid(gan.G_ema, t, sample_labels, nrow)
                    save_png(grid, path)
                    log.image("samples", grid, step)
                    if t.sample_raw:
                        save_png(sample_grid(gan.G, t, sample_labels, nrow), path.parent / "raw" / path.name)
                if evaluation is not None and (last or cfg.eval.every and step % cfg.eval.every == 0):
                    evaluation(step, gan.G_ema, log, {"generator_ema": gan.G_ema.state_dict(), "step": step,
                                                      "config": to_dict(cfg)})
                saved = step % t.checkpoint_every == 0 or last
                if saved:
                    save_checkpoint()

                # A signal asked to stop: this step is done; checkpoint it and exit.
                if signum and not last:
                    path = last_checkpoint if saved else save_checkpoint()
                    message = (f"interrupted at step {step} by {signal.Signals(signum).name}; checkpoint {path}; "
                               f"resume with: sagan train --resume {run_dir}")
                    log.info(message)
                    raise Interrupted(message, signum)
            except NonFiniteError as error:
                roll_back(error)
                last = False  # the step that failed may have been the last: the replay goes on
    return record


@contextlib.contextmanager
def one_line_io_errors(where: Callable[[], str]):
    """An OSError in the block becomes a RunError: the file, the error and `where()`."""
    try:
        yield
    except OSError as e:
        raise RunError(f"{e.filename or 'a file'}: {e.strerror or e} {where()}") from None


def restore(gan: GANTraining, state: dict) -> tuple[int, int, Sums]:
    """Put a checkpoint's training state into `gan` and this process's random streams; returns its step, the
    batches it had seen and its epoch's statistic sums."""
    gan.load_state_dict(state)
    restore_rng(state["rng"])
    return state["step"], state["rng"]["data_batches"], Sums(**state.get("epoch_sums", {}))


def out_of_time(t: TrainConfig, seconds: float) -> bool:
    return t.max_minutes > 0 and seconds >= t.max_minutes * 60


def load_training_set(cfg: Config, progress: bool = True):
    """The dataset of `cfg.data`, checked against the model (`check_dataset`)."""
    return load_dataset(cfg.data, progress, check=lambda dataset: check_dataset(cfg, dataset))


def load_dataset(d: DataConfig, progress: bool = True, check=lambda dataset: None, every: bool = True):
    """The dataset of DataConfig `d`; an image-file dataset is read from its cache (built on first use) unless
    data.cache is off. `check(dataset)` runs before the cache is built and again on the cache. `every`: under
    torchrun every process calls it (rank 0 writes the cache first), else rank 0 alone."""
    dataset = data.from_config(d)
    check(dataset)
    if isinstance(dataset, data.ImageFileDataset) and d.cache != "off":
        with distributed.main_first() if every else contextlib.nullcontext():  # one writes, the others map it
            dataset = data.cached(dataset, dataset_options(d), d.cache, workers=d.workers, strict=d.strict,
                                  progress=progress and distributed.is_main())
        check(dataset)  # the cache leaves out unreadable images
    return dataset


def warn_if_threads_differ(recorded: int | None, device: torch.device) -> None:
    """CPU kernels split their sums by thread, so another thread count rounds differently: the resumed run is then
    correct but not bit-identical to an uninterrupted one."""
    if device.type == "cpu" and recorded and recorded != torch.get_num_threads():
        warnings.warn(f"resuming with {torch.get_num_threads()} CPU threads, but the run used {recorded}: it continues "
                      f"correctly but not bit for bit (set OMP_NUM_THREADS={recorded} for an exact resume)",
                      ResumeWarning, stacklevel=3)


class ResumeWarning(UserWarning):
    """A resume that will not be bit-identical to an uninterrupted run."""


def check_dataset(cfg: Config, dataset) -> None:
    """Catch mismatches between the dataset and the model before any work is done."""
    classes = cfg.model.num_classes
    if classes and classes != dataset.num_classes:
        have = f"has {dataset.num_classes} classes" if dataset.num_classes else "has no labels"
        raise ConfigError(f"model.num_classes is {classes} but the dataset ({dataset.description}) {have}")
    if len(dataset) < cfg.train.batch_size:
        raise DataError(f"the dataset ({dataset.description}) has fewer images than one batch "
                        f"(train.batch_size={cfg.train.batch_size})")


def epoch_ended(batches_seen: int, n_dis: int, batches_per_epoch: int) -> int:
    """The epoch that the step's last `n_dis` batches completed, or 0 if they stayed within one."""
    epoch = batches_seen // batches_per_epoch
    return epoch if epoch > (batches_seen - n_dis) // batches_per_epoch else 0


def sample_grid(G, t: TrainConfig, labels: torch.Tensor | None, nrow: int) -> np.ndarray:
    """The grid of `G`'s samples of the run's fixed latents. In eval mode, so batch norm uses (and keeps) its
    running statistics; a generator in training mode returns to it."""
    training = G.training
    G.eval()
    images = G.sample(t.num_samples, t.seed, labels, t.num_samples)
    G.train(training)
    return make_grid(images, nrow)


def epoch_sheet(G, real: tuple[np.ndarray, torch.Tensor], epoch: int, epochs: int) -> np.ndarray:
    """Training images beside the EMA generator's samples (of the real images' labels), titled with the epoch."""
    images, labels = real
    generated = G.sample(len(images), seed=0, labels=labels if G.num_classes else None, batch_size=len(images))
    return sheets.comparison(images, generated, "training images", "EMA generator", f"epoch {epoch}/{epochs}")


def sample_grid_labels(cfg: Config) -> tuple[torch.Tensor | None, int]:
    """Labels of the sample grid (one class per row) and its row length; the latents come from the run's seed, so
    every grid of a run shows the same latents."""
    nrow = max(1, round(cfg.train.num_samples**0.5))
    if not cfg.model.num_classes:
        return None, nrow
    return (torch.arange(cfg.train.num_samples) // nrow) % cfg.model.num_classes, nrow


def _millions(net: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f}"

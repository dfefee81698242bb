"""Runs that survive the ordinary ways of dying: signals, divergence, broken checkpoints, two writers, a full disk."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import TINY, error_line, tiny_config

from sagan import checkpoints
from sagan.cli import main
from sagan.errors import Interrupted, NonFiniteError, UserError
from sagan.training.gan import GANTraining
from sagan.training.lock import LOCK, run_lock
from sagan.training.signals import StopRequest
from sagan.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def steps_on_disk(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def start_training(run: Path, launcher: tuple[str, ...] = ("-m", "sagan")) -> subprocess.Popen:
    """`sagan train` of a long tiny run in a process of its own (`launcher`: the Python arguments that run sagan),
    once it has logged its first step."""
    command = [sys.executable, *launcher, "train", "--out", str(run), *TINY, "--steps", "100000",
               "--set", "train.log_every=1", "--set", "train.checkpoint_every=100000"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=os.environ | {"OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_the_step_and_exits_with_128_plus_its_number(tmp_path, signum):
    run = tmp_path / "run"
    process = start_training(run)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    line = err.strip().splitlines()[-1]
    assert f"by {signal.Signals(signum).name}" in line and f"sagan train --resume {run}" in line
    state = checkpoints.load(run)
    assert f"interrupted at step {state['step']}" in line
    assert f"interrupted at step {state['step']}" in (run / "train.log").read_text()
    assert max(steps_on_disk(run)) == state["step"]
    assert not (run / LOCK).exists()


def test_under_torchrun_the_processes_stop_at_the_same_step(tmp_path):
    run = tmp_path / "run"
    torchrun = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "sagan")
    process = start_training(run, torchrun)
    process.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
    process.communicate(timeout=120)
    state = checkpoints.load(run)
    assert max(steps_on_disk(run)) == state["step"]
    assert f"interrupted at step {state['step']} by SIGTERM" in (run / "train.log").read_text()
    assert len(state["rank_rng"]) == 1  # both processes took part in the checkpoint


def test_a_second_signal_stops_at_once():
    request = StopRequest()
    request.handle(signal.SIGTERM, None)
    assert request.agreed() == (signal.SIGTERM, False)
    with pytest.raises(Interrupted, match="SIGTERM again") as raised:
        request.handle(signal.SIGTERM, None)
    assert raised.value.status == 143


def test_two_quick_signals_leave_no_broken_file(tmp_path):
    run = tmp_path / "run"
    process = start_training(run)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    assert process.returncode == 143
    assert not list(run.rglob("*.tmp"))
    if (run / "checkpoints" / checkpoints.LATEST).exists():  # the second signal may come after the checkpoint
        checkpoints.load(run)


def test_diverged_losses_stop_the_run_before_a_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    diverging = ["--set", "train.lr_d=1e38", "--set", "train.lr_g=1e38", "--set", "train.log_every=1",
                 "--set", "train.checkpoint_every=1"]
    assert main(["train", "--out", str(run), *TINY, "--steps", "40", *diverging]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not finite" in err[0] and "train.lr_d" in err[0] and "train.amp" in err[0]
    assert "stopped before checkpointing it; the last good checkpoint is not written yet" in err[0]
    assert "not finite" in (run / "train.log").read_text()
    assert not list(run.glob("checkpoints/*.pt"))


def test_weights_gone_non_finite_between_logs_stop_the_run_at_the_next_checkpoint(tmp_path, monkeypatch):
    # No log step between the poisoned update and the checkpoint: the pre-checkpoint check alone must catch it.
    run = tmp_path / "run"
    poison_d(monkeypatch, lambda step, before: step == 6)
    cfg = tiny_config(**{"train.steps": 12, "train.log_every": 100, "train.checkpoint_every": 4})
    with pytest.raises(NonFiniteError, match=r"^step 8: .*D's weights not finite \(nan or inf\): training diverged "
                                             r"and stopped before checkpointing it; the last good checkpoint is "
                                             r".*step-0000004.pt"):
        train(cfg, run, progress=False)
    assert sorted(path.name for path in run.glob("checkpoints/step-*.pt")) == ["step-0000004.pt"]
    assert checkpoints.load(run)["step"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoints.load(run)["discriminator"].values()
               if v.is_floating_point())


def poison_d(monkeypatch, when) -> list[int]:
    """Make D's first weight NaN right after each training step for which `when(step, steps trained before)` holds;
    returns the steps trained, in order."""
    trained, train_step = [], GANTraining.train_step

    def step_then_poison(gan, batches, n, step, log):
        stats = train_step(gan, batches, n, step, log)
        if when(step, trained):
            next(gan.D.parameters()).data.fill_(float("nan"))
        trained.append(step)
        return stats

    monkeypatch.setattr(GANTraining, "train_step", step_then_poison)
    return trained


def test_a_rolled_back_run_replays_from_its_checkpoint_without_the_step_that_went_non_finite(tmp_path, monkeypatch):
    run = tmp_path / "run"
    trained = poison_d(monkeypatch, lambda step, before: step == 7 and step not in before)
    cfg = tiny_config(**{"train.steps": 12, "train.log_every": 1, "train.checkpoint_every": 4,
                         "train.on_nonfinite": "rollback"})
    assert train(cfg, run, progress=False)["step"] == 12

    # Step 7's update broke D and step 8's losses showed it: back to step 4, then 5 and 6 again, and no step 7.
    assert trained == [1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 8, 9, 10, 11, 12]
    log = (run / "train.log").read_text()
    assert "step 8: d_loss, d_real, d_fake, g_loss, gamma/G.attn16, gamma/D.attn8 not finite (nan or inf): " \
        "rolled back to" in log
    assert "latest.pt (step 4), to go on without the batches of step 7 (rollback 1 of 3)" in log
    assert steps_on_disk(run) == list(range(1, 13))  # the diverged stretch's records are gone
    replayed = [line.split(" ", 2)[2] for line in log.splitlines() if " step=5 " in f" {line.split(' ', 2)[2]}"]
    assert len(replayed) == 2 and replayed[0].split("steps_per_s")[0] == replayed[1].split("steps_per_s")[0]
    for path in (run / "checkpoints").glob("*.pt"):
        assert all(torch.isfinite(v).all() for v in checkpoints.load(path)["discriminator"].values()
                   if v.is_floating_point())


def test_a_run_stopped_after_a_rollback_resumes_without_the_step_it_left_out(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def when(step, before):
        if step == 6 and before.count(6) == 1:  # SIGTERM in the replay, before the step it leaves out
            os.kill(os.getpid(), signal.SIGTERM)
        return step == 7 and step not in before

    trained = poison_d(monkeypatch, when)
    cfg = tiny_config(**{"train.steps": 10, "train.log_every": 1, "train.checkpoint_every": 4,
                         "train.on_nonfinite": "rollback"})
    with pytest.raises(Interrupted, match="interrupted at step 6 by SIGTERM"):
        train(cfg, run, progress=False)
    assert checkpoints.load(run)["skipped_steps"] == [7]
    trained.clear()
    assert train(cfg, run, resume=True, progress=False)["step"] == 10
    assert trained == [8, 9, 10]


def test_rollbacks_that_diverge_again_stop_the_run(tmp_path, monkeypatch):
    run = tmp_path / "run"
    trained = poison_d(monkeypatch, lambda step, before: step >= 5)
    cfg = tiny_config(**{"train.steps": 12, "train.log_every": 1, "train.checkpoint_every": 4,
                         "train.on_nonfinite": "rollback", "train.rollbacks": 2})
    with pytest.raises(NonFiniteError, match=r"^step 8: .* not finite .* last good checkpoint is .*step-0000004.pt, "
                                             r"and diverged again after 2 rollbacks to it\. Try lower"):
        train(cfg, run, progress=False)
    assert trained == [1, 2, 3, 4, 5, 6, 6, 7, 7, 8]  # each seen at the next step: without 5, then 5 and 6
    assert (run / "train.log").read_text().count("rolled back to") == 2
    assert checkpoints.load(run)["step"] == 4


def test_an_unreadable_latest_checkpoint_falls_back_to_the_newest_step_file(tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(**{"train.steps": 4, "train.checkpoint_every": 2, "train.keep_checkpoints": 3})
    train(cfg, run, progress=False)
    folder = checkpoints.checkpoint_dir(run)
    (folder / "step-0000004.pt").unlink()
    latest = folder / checkpoints.LATEST
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated, as by a full disk or a kill

    with pytest.warns(checkpoints.FallbackWarning, match="latest.pt is truncated or not a sagan checkpoint"):
        assert checkpoints.load(run)["step"] == 2
    with pytest.warns(checkpoints.FallbackWarning):
        assert main(["generate", "--checkpoint", str(run), "--num", "2", "--out", str(tmp_path / "images")]) == 0

    with pytest.warns(checkpoints.FallbackWarning):
        train(cfg, run, resume=True, progress=False)
    assert checkpoints.load(run)["step"] == 4
    assert "resumed from" in (run / "train.log").read_text() and "step-0000002.pt" in (run / "train.log").read_text()
    assert steps_on_disk(run) == sorted(set(steps_on_disk(run)))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_broken_checkpoints_are_refused_in_one_line(tmp_path, capsys):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(b"PK\x03\x04 not a whole zip")
    assert main(["generate", "--checkpoint", str(truncated), "--out", str(tmp_path / "out")]) == 2
    assert error_line(capsys) == f"sagan: error: {truncated} is truncated or not a sagan checkpoint"
    evil = tmp_path / "evil.pt"
    torch.save({"config": Evil()}, evil)
    assert main(["generate", "--checkpoint", str(evil), "--out", str(tmp_path / "out")]) == 2
    assert "holds objects other than tensors" in error_line(capsys)


def test_a_checkpoint_of_a_newer_sagan_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(**{"train.steps": 2}), run, progress=False)
    state = checkpoints.load(run)
    assert state["sagan_version"]
    state["config"]["version"] += 1
    torch.save(state, tmp_path / "newer.pt")
    assert main(["generate", "--checkpoint", str(tmp_path / "newer.pt"), "--out", str(tmp_path / "out")]) == 2
    assert "written by a newer sagan" in error_line(capsys)


def test_a_second_training_on_the_same_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    process = start_training(run)
    try:
        assert main(["train", "--out", str(run), *TINY]) == 2
        line = error_line(capsys)
        assert f"{run} is being written by another sagan train (pid {process.pid} on" in line
        assert main(["train", "--resume", str(run), *TINY]) == 2
    finally:
        process.terminate()
        process.communicate(timeout=120)
    assert process.returncode == 143
    assert not (run / LOCK).exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": gone.pid, "host": os.uname().nodename, "since": "yesterday"}))
    with pytest.warns(UserWarning, match=f"taking over the lock of pid {gone.pid}"):
        train(tiny_config(**{"train.steps": 2}), run, progress=False)
    assert not (run / LOCK).exists()


def test_a_lock_held_in_this_process_refuses_and_a_refused_run_leaves_no_folder(tmp_path):
    run = tmp_path / "run"
    with run_lock(run), pytest.raises(UserError, match="is being written by another sagan train"):
        train(tiny_config(), run, progress=False)
    assert not run.exists()  # created for the lock, empty after it


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 32 MiB filesystem (a tmpfs where this process may mount one), else None."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(folder)],
                                           check=False, capture_output=True).returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the filesystem of `folder` up to `leave` free bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def no_space_for(monkeypatch, name: str = "") -> None:
    """Writing a file whose path holds `name` (any file: "") fails as on a full disk, when it is flushed."""
    from sagan import files

    real = files.os.fsync

    def fsync(fd):
        if name in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)


def test_a_full_disk_mid_run_keeps_the_last_good_checkpoint(tmp_path, small_disk, monkeypatch, capsys):
    cfg = ["--steps", "6", "--set", "train.checkpoint_every=2", "--set", "train.sample_every=100",
           "--set", "train.report=false"]
    assert main(["train", "--out", str(tmp_path / "sizing"), *TINY, *cfg, "--steps", "2"]) == 0
    size = (tmp_path / "sizing" / "checkpoints" / checkpoints.LATEST).stat().st_size
    if small_disk is None:
        no_space_for(monkeypatch, "step-0000004")
        run = tmp_path / "run"
    else:
        run = small_disk / "run"
        fill(small_disk, 3 * size + size // 2)  # room for the first checkpoint's two files, not the second's
    assert main(["train", "--out", str(run), *TINY, *cfg]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left on device" in line and "step-0000002.pt" in line and "--resume" in line
    monkeypatch.undo()
    assert checkpoints.load(run)["step"] == 2
    assert not list(run.rglob("*.tmp")) and not list(run.rglob(".*.tmp"))
    assert not (run / LOCK).exists()


def test_a_full_disk_or_unwritable_out_at_the_start_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("in the way")
    assert main(["train", "--out", str(tmp_path / "file"), *TINY]) == 2
    assert "exists and is not a folder" in error_line(capsys)
    assert main(["train", "--out", str(tmp_path / "file" / "run"), *TINY]) == 2
    assert "cannot write the run directory" in error_line(capsys)
    no_space_for(monkeypatch)
    assert main(["train", "--out", str(tmp_path / "run"), *TINY]) == 2
    assert "No space left on device" in error_line(capsys)
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_a_resumed_run_drops_the_records_written_after_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(**{"train.steps": 2, "train.log_every": 1})
    train(cfg, run, progress=False)
    with open(run / "metrics.jsonl", "a") as f:  # a killed process logged step 3, and half of step 4
        f.write(json.dumps({"step": 3, "d_loss": 1.0}) + "\n" + '{"step": 4, "d_lo')
    cfg.train.steps = 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(cfg, run, resume=True, progress=False)
    assert steps_on_disk(run) == [1, 2, 3, 4]


def test_a_read_only_out_is_one_line(tmp_path, small_disk, capsys):
    if small_disk is not None:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        out = small_disk / "run"
    elif os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o555)
        out = tmp_path / "ro" / "run"
    else:
        pytest.skip("root writes through permissions, and this machine cannot mount a read-only filesystem")
    assert main(["train", "--out", str(out), *TINY]) == 2
    line = error_line(capsys)
    assert "cannot write the run directory" in line and "Read-only file system" in line

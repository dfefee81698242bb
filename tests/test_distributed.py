"""Training in several processes (torchrun + DDP) on the CPU with gloo: the processes stay identical, split each
batch, average their logs, leave the writing to rank 0, and their checkpoint resumes in a single process."""

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tiny_config

from sagan import data
from sagan.config import to_yaml
from sagan.errors import ConfigError
from sagan.training import distributed
from sagan.training.batches import EpochBatchSampler, batch_loader
from sagan.training.trainer import ResumeWarning, train

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("generator", "discriminator", "generator_ema")


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_same(a: dict, b: dict, skip=()) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        if not name.endswith(skip):
            assert torch.equal(value, b[name]), name


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_split_every_batch_in_the_global_order(processes):
    whole = EpochBatchSampler(20, 8, seed=3, start=1)
    shares = [EpochBatchSampler(20, 8, seed=3, start=1, rank=r, processes=processes) for r in range(processes)]
    streams = [iter(s) for s in shares]
    for batch, _ in zip(whole, range(5)):  # crosses two epoch boundaries
        parts = [next(s) for s in streams]
        assert all(len(p) == 8 // processes for p in parts)
        assert [i for part in parts for i in part] == batch


def test_the_global_batch_must_split_evenly(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    assert distributed.local_batch(12) == 4
    with pytest.raises(ConfigError, match="train.batch_size: 8 does not split evenly across 3 processes"):
        distributed.local_batch(8)


def test_each_process_takes_the_gpu_of_its_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.local_device("cuda", 4) == distributed.local_device("auto", 4) == torch.device("cuda", 1)
    assert distributed.local_device("cpu", 4) == torch.device("cpu")
    assert distributed.local_device("cuda:2", 1) == torch.device("cuda", 2)
    with pytest.raises(ConfigError, match="train.device: 'cuda:0' names one GPU but 4 processes need one each"):
        distributed.local_device("cuda:0", 4)


def test_sync_bn_is_refused_on_the_cpu(monkeypatch):
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    gan = type("Gan", (), {"device": torch.device("cpu")})()
    with pytest.raises(ConfigError, match="train.sync_bn: SyncBatchNorm needs CUDA"):
        distributed.data_parallel(gan, sync_bn=True)


def _train_rank(rank: int, processes: int, port: int, config: str, run: str, out: str, poison=None) -> None:
    """One torchrun-like process: the environment torchrun sets, then `sagan train`; saves what it ended with. With
    `poison` = (rank, step), that process makes D's first weight NaN after that step, the first time it runs."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from sagan import cli
    from sagan.training import trainer
    from sagan.training.gan import GANTraining

    ended = {"real": [], "d_loss": [], "g_loss": [], "steps": []}

    class Recorded(GANTraining):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            ended["gan"] = self

        def d_step(self, real, y_real):
            stats = super().d_step(real, y_real)
            ended["real"].append(real.clone())
            ended["d_loss"].append(stats["d_loss"].item())
            return stats

        def g_step(self, n):
            stats = super().g_step(n)
            ended["g_loss"].append(stats["g_loss"].item())
            return stats

        def train_step(self, batches, n, step, log):
            stats = super().train_step(batches, n, step, log)
            if poison == (rank, step) and step not in ended["steps"]:
                next(self.D.parameters()).data.fill_(float("nan"))
            ended["steps"].append(step)
            return stats

    trainer.GANTraining = Recorded
    assert cli.main(["train", "--config", config, "--out", run, "--no-progress"]) == 0
    gan = ended.pop("gan")
    torch.save(gan.state_dict() | ended, Path(out) / f"rank{rank}.pt")


@pytest.mark.parametrize("reuse_fakes", [False, True], ids=["fresh-latents", "reused-fakes"])
def test_two_processes_train_in_step_and_resume_in_one(reuse_fakes, tmp_path):
    # 4 steps of global batch 8, logs and checkpoints every 2; class embeddings in both networks, a gradient penalty
    # (a double backward through D) and gradient clipping, all of which must see the averaged gradients. Reused
    # fakes: G's DDP forward pass runs in the D step, its backward pass in the G step.
    cfg = tiny_config(**{"model.num_classes": 10, "train.loss": "wgan-gp", "train.clip_grad_norm": 1.0,
                         "train.reuse_fakes": reuse_fakes})
    (tmp_path / "config.yaml").write_text(to_yaml(cfg))
    run = tmp_path / "run"
    context = mp.spawn(_train_rank, args=(2, free_port(), str(tmp_path / "config.yaml"), str(run), str(tmp_path)),
                       nprocs=2, join=False)
    deadline = time.monotonic() + 180
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("two training processes did not finish in 180 s")
    r0, r1 = load(tmp_path / "rank0.pt"), load(tmp_path / "rank1.pt")

    # Identical networks and optimiser states; G's batch-norm running statistics are each process's own.
    for key in NETWORKS:
        assert_same(r0[key], r1[key], skip=("running_mean", "running_var") if key != "discriminator" else ())
    for key in ("optimizer_g", "optimizer_d"):
        for index, state in r0[key]["state"].items():
            assert_same(state, r1[key]["state"][index])

    # Each process trained on its half of the global batches, with latents of its own.
    dataset = data.build("embedded", None, resolution=32, channels=3)
    batches = batch_loader(dataset, 8, cfg.train.seed, 0, workers=0)
    for step, (a, b) in enumerate(zip(r0["real"], r1["real"])):
        images, _ = next(batches)
        assert a.shape[0] == b.shape[0] == 4
        assert torch.equal(torch.cat([a, b]), images.float().div_(127.5).sub_(1)), f"batch {step}"
    assert r0["g_loss"] != r1["g_loss"]

    # Rank 0 alone wrote the run directory; the logged losses are the mean over processes and steps.
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    for line, first in zip(lines, (0, 2)):
        for key in ("d_loss", "g_loss"):
            mean = sum(r[key][first] + r[key][first + 1] for r in (r0, r1)) / 4
            assert line[key] == pytest.approx(mean, rel=1e-5), key
    assert (run / "train.log").read_text().count("started: ") == 1
    assert "x 2 processes" in (run / "train.log").read_text()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    state = load(run / "checkpoints" / "latest.pt")
    assert state["step"] == 4 and len(state["rank_rng"]) == 1
    for key in NETWORKS:
        assert_same(state[key], r0[key])
        assert not any(name.startswith("module.") for name in state[key])

    # The checkpoint continues in a single process; at another thread count than torchrun's processes had, with a
    # warning that the continuation is not bit-exact.
    cfg.train.steps = 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = train(cfg, run, resume=True, progress=False)
    assert [w.category for w in caught] == [ResumeWarning] * (state["threads"] != torch.get_num_threads())
    assert record["step"] == 6 and record["kimg"] == pytest.approx(6 * 8 / 1000)
    assert load(run / "checkpoints" / "latest.pt")["step"] == 6


def test_two_processes_roll_back_together(tmp_path):
    # Rank 1's D goes NaN after step 3; rank 0's only after step 4's averaged gradients, when both log it. They
    # agree on step 3 (the earliest any saw), return to step 2 and skip it alike, and stay identical.
    cfg = tiny_config(**{"train.steps": 6, "train.log_every": 1, "train.on_nonfinite": "rollback"})
    (tmp_path / "config.yaml").write_text(to_yaml(cfg))
    run = tmp_path / "run"
    mp.spawn(_train_rank, args=(2, free_port(), str(tmp_path / "config.yaml"), str(run), str(tmp_path), (1, 3)),
             nprocs=2)
    r0, r1 = load(tmp_path / "rank0.pt"), load(tmp_path / "rank1.pt")
    assert r0["steps"] == r1["steps"] == [1, 2, 3, 4, 4, 5, 6]
    for key in NETWORKS:
        assert_same(r0[key], r1[key], skip=("running_mean", "running_var") if key != "discriminator" else ())
    assert "to go on without the batches of step 3 (rollback 1 of 3)" in (run / "train.log").read_text()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


def test_one_process_under_torchrun_trains_like_a_plain_run(tmp_path):
    (tmp_path / "config.yaml").write_text(to_yaml(tiny_config()))
    sagan = [sys.executable, "-m", "sagan", "train", "--config", str(tmp_path / "config.yaml"), "--no-progress"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    launches = [subprocess.Popen(torchrun + sagan[1:] + ["--out", str(tmp_path / "torchrun")], env=env, cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
                subprocess.Popen(sagan + ["--out", str(tmp_path / "plain")], env=env, cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    for launch in launches:
        output, _ = launch.communicate(timeout=180)
        assert launch.returncode == 0, output
        assert output.count("sagan: step 4:") == 1, output
    a = load(tmp_path / "torchrun" / "checkpoints" / "latest.pt")
    b = load(tmp_path / "plain" / "checkpoints" / "latest.pt")
    assert "rank_rng" not in a
    for key in NETWORKS:
        assert_same(a[key], b[key])
    assert (tmp_path / "torchrun" / "metrics.jsonl").read_text().count('"d_loss"') == 2

"""Training in several processes under torchrun: the process group, each process's device, batch share and latent
stream, the networks wrapped in DistributedDataParallel, and a check that the processes stay identical.

torchrun starts one process per GPU (or per CPU share) and passes RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT in the environment. Without them everything here is a no-op and training runs in one process.
"""

import contextlib
import datetime
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError
from ..runtime import resolve_device, restore_rng, seed_everything

if TYPE_CHECKING:
    from .gan import GANTraining


def launched() -> bool:
    """Whether torchrun (or anything setting its environment variables) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def local_rank() -> int:
    """The process's number on its machine, which picks its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 writes the run directory; the other processes only compute."""
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block (say, writing a cache file) before the other processes run it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[None]:
    """Join the process group torchrun set up (nccl on GPUs, gloo on the CPU) for the duration of the block and
    leave it at the end or on an error. Does nothing when not launched by torchrun or already joined."""
    if not launched() or dist.is_initialized():
        yield
        return
    device = local_device(device_name, int(os.environ["WORLD_SIZE"]))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # Rank 0 alone computes reference statistics, evaluates and writes the report while the others wait at their
    # next collective: allow that much longer than the default 10 minutes.
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=2))
    try:
        yield
        barrier()  # nobody tears the group down while another process still finishes its last step
    finally:
        dist.destroy_process_group()


def local_device(name: str, processes: int | None = None) -> torch.device:
    """This process's device for `train.device`: under torchrun, `cuda` and `auto` mean GPU LOCAL_RANK."""
    device = resolve_device(name, "train.device")
    if device.type != "cuda" or not launched():
        return device
    processes = world_size() if processes is None else processes
    if device.index is not None and processes > 1:
        raise ConfigError(f"train.device: '{name}' names one GPU but {processes} processes need one each; "
                          f"use cuda or auto (each process takes GPU LOCAL_RANK)")
    return torch.device("cuda", local_rank() if device.index is None else device.index)


def local_batch(batch_size: int) -> int:
    """This process's share of the global batch `train.batch_size`."""
    if batch_size % world_size():
        raise ConfigError(f"train.batch_size: {batch_size} does not split evenly across {world_size()} processes; "
                          f"use a multiple of {world_size()}")
    return batch_size // world_size()


def seed_process(seed: int, step: int, saved: list[dict] | None) -> None:
    """Give every process but rank 0 a latent stream of its own: its saved random state when resuming at the world
    size of the checkpoint, else a fresh stream from (seed, rank, step). Rank 0 keeps the run's own stream, so one
    process under torchrun draws exactly what a plain run draws."""
    r = rank()
    if r == 0:
        return
    if saved is not None and len(saved) == world_size() - 1:
        restore_rng(saved[r - 1])
    else:
        seed_everything(int(np.random.SeedSequence([seed, r, step]).generate_state(1)[0]))


def data_parallel(gan: "GANTraining", sync_bn: bool) -> None:
    """Route the updates of `gan` through DistributedDataParallel, which averages the gradients of every backward
    pass across processes before the optimiser (and gradient clipping) sees them.

    D's wrapper runs the D step (real and fake in one batch). The G step runs G's wrapper through the bare D, whose
    parameters are frozen there, so DDP never waits for D gradients that do not come. The spectral-norm vectors
    depend on the weights only, so they stay identical; DDP also broadcasts rank 0's buffers before each wrapped
    forward. G's batch-norm statistics are per process (rank 0's are kept) unless `sync_bn` makes them statistics
    of the global batch. The EMA generator stays unwrapped: its update is the same arithmetic on every process.
    """
    if not dist.is_initialized():
        return
    if sync_bn:
        if gan.device.type != "cuda":
            raise ConfigError("train.sync_bn: SyncBatchNorm needs CUDA devices; set it to false on the CPU")
        gan.G = nn.SyncBatchNorm.convert_sync_batchnorm(gan.G)  # same parameters, so the optimiser keeps them
    device_ids = [gan.device.index] if gan.device.type == "cuda" else None
    gan.G_train = DistributedDataParallel(gan.G, device_ids=device_ids)
    gan.D_train = DistributedDataParallel(gan.D, device_ids=device_ids)


def all_gather_object(obj: Any) -> list[Any]:
    """`obj` (anything picklable) of every process, in rank order."""
    if not dist.is_initialized():
        return [obj]
    objects: list[Any] = [None] * world_size()
    dist.all_gather_object(objects, obj)
    return objects


def check_in_sync(modules: dict[str, nn.Module]) -> None:
    """Raise if any process's parameters differ from rank 0's. DDP keeps them bit-identical, so a difference is a
    bug (or nondeterministic arithmetic) worth stopping for; costs one broadcast of the weights, little next to
    writing a checkpoint."""
    if world_size() == 1:
        return
    differ = []
    for prefix, module in modules.items():
        named = [(name, p.detach().reshape(-1)) for name, p in module.named_parameters()]
        reference = torch.cat([p for _, p in named])
        dist.broadcast(reference, src=0)
        for (name, p), rank0 in zip(named, reference.split([p.numel() for _, p in named])):
            if not torch.equal(rank0, p):
                differ.append(f"{prefix}.{name}")
    bad = {r: names for r, names in enumerate(all_gather_object(differ)) if names}
    if bad:
        raise RuntimeError("processes out of step with rank 0: " +
                           "; ".join(f"rank {r}: {', '.join(names[:5])}" for r, names in bad.items()))


def average(values: torch.Tensor) -> torch.Tensor:
    """The mean of `values` over all processes."""
    if world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world_size()

"""The order in which training sees the data: a fresh seeded permutation every epoch, so the k-th batch of a run is
a function of (seed, k) alone and a resumed run continues with exactly the batches the uninterrupted one would see."""

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Endless batches of indices; each epoch is a permutation seeded by `seed + epoch`, its last partial batch
    dropped. Starts at batch number `start` of the run. Of `processes` sharing each batch, process `rank` gets the
    rank-th contiguous slice, so the run's global sample order is the same for any number of processes."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, processes: int = 1):
        self.size, self.batch_size, self.seed, self.start = size, batch_size, seed, start
        self.per_epoch = size // batch_size
        self.share = batch_size // processes
        self.first = rank * self.share

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.start, self.per_epoch)
        while True:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))
            for i in range(offset, self.per_epoch):
                begin = i * self.batch_size + self.first
                yield order[begin : begin + self.share].tolist()
            epoch, offset = epoch + 1, 0


def batch_loader(dataset: Dataset, batch_size: int, seed: int, start: int, workers: int,
                 pin_memory: bool = False, rank: int = 0, processes: int = 1) -> Iterator:
    """Endless (images uint8 NCHW, labels) batches from batch number `start` on; this process's share of them."""
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, start, rank, processes)
    # A generator of its own keeps DataLoader from drawing its worker seed from the global random state,
    # which would shift the latents of a resumed run.
    return iter(DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0,
                           pin_memory=pin_memory, generator=torch.Generator().manual_seed(seed)))

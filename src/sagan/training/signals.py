"""Stopping a run cleanly on SIGINT or SIGTERM: the first signal asks the loop to finish its step, checkpoint and
exit (status 128 + the signal's number); a second one exits at once."""

import contextlib
import signal
import threading
from collections.abc import Iterator

import torch

from ..errors import Interrupted
from . import distributed

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Which signal asked the run to stop (0: none yet)."""

    def __init__(self, group=None):
        self.signum, self.group = 0, group

    def handle(self, signum: int, frame) -> None:
        if self.signum:  # the second signal: no more waiting for the step to end
            raise Interrupted(f"{signal.Signals(signum).name} again: stopped at once, without a checkpoint", signum)
        self.signum = signum

    def agreed(self, out_of_time: bool = False) -> tuple[int, bool]:
        """The signal any process got (0: none), and whether any process's clock passed the run's time budget.
        Under torchrun every process learns both at the same step, by a two-number all-reduce on a CPU (gloo)
        group, so they stop together without waiting for the GPU."""
        if self.group is None:
            return self.signum, out_of_time
        flags = torch.tensor([self.signum, int(out_of_time)])
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX, group=self.group)
        return int(flags[0]), bool(flags[1])


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM with a StopRequest for the duration of the block (signals can only be handled in
    the main thread; elsewhere they keep their handlers). Under torchrun every process enters it together."""
    group = torch.distributed.new_group(backend="gloo") if distributed.world_size() > 1 else None
    request = StopRequest(group)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request.handle) for signum in SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""`sagan bench`: the speed of the real training step, and the reference implementation it is compared with."""

from .train import bench_train, summary_line

__all__ = ["bench_train", "summary_line"]

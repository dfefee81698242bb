"""Counting the operators a training step dispatches: on a GPU, where an eager step is bound by kernel launches, the
number that matters.

Counted below autograd (a TorchDispatchMode), so the forward, backward and optimiser operators are counted as the
device sees them: composite operators as the ones they decompose into, a multi-tensor (foreach) one as one. Views
(view, transpose, slice, detach, ...) launch no kernel and are counted apart.
"""

from collections import Counter
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """Counts each aten operator dispatched while active, views apart."""

    def __init__(self):
        super().__init__()
        self.kernels: Counter[str] = Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.is_view:
            self.views += 1
        else:
            self.kernels[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def count_ops(step: Callable[[], None], top: int = 8) -> dict:
    """The operators one call of `step` dispatches: those that run a kernel, the views, and the `top` most
    frequent kernel operators. Counted in eager mode (a compiled graph would recompile under the counting mode)."""
    with torch.compiler.set_stance("force_eager"), OpCounter() as counter:
        step()
    return {"kernel_ops": sum(counter.kernels.values()), "view_ops": counter.views,
            "top_ops": dict(counter.kernels.most_common(top))}

"""The operators of one eager training step on the CPU with the choices a CUDA device makes: attention over the whole
batch at once (one matmul pair and softmax per layer; on CUDA maps above 16x16 take the fused kernel, fewer operators
still), PyTorch's own convolutions (cuDNN's there) and NCHW tensors, instead of the CPU's chunked attention, small-map
matmul convolutions and channels-last tensors: about the count a GPU's eager step launches, without a GPU.

    .venv/bin/python benchmarks/ops_cuda_choices.py --preset dcgan64 --batch-size 64

Prints one JSON line with the preset, the batch size and `sagan.benchmarks.ops.count_ops` of the step.
"""

import argparse
import json
import sys

import torch

from sagan import kernels
from sagan.benchmarks.ops import count_ops
from sagan.benchmarks.train import synthetic_training
from sagan.config import preset

# Chunks that always hold the whole batch, and no layer big enough for the small-map convolutions.
CUDA_CHOICES = kernels.Thresholds(attention_cpu_chunk_bytes=2**62, conv_min_weights=2**62)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan64")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    cfg = preset(args.preset)
    cfg.train.batch_size, cfg.train.channels_last = args.batch_size, False
    gan, _, step = synthetic_training(cfg, torch.device("cpu"))
    for net in (gan.G, gan.D):
        kernels.install(net, CUDA_CHOICES)
    step()  # the first step allocates optimiser state
    print(json.dumps({"preset": args.preset, "batch_size": args.batch_size, "ops": count_ops(step)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The config's typed sections. Defaults are the paper's recipe; fields declared `resumable` may change on resume."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def resumable(default: Any) -> Any:
    """A field that `--resume` may change: how the run continues, not what it trains."""
    return field(default=default, metadata={"resumable": True})


@dataclass
class ModelConfig:
    # backbone (models.BACKBONES): resnet (the SAGAN paper's nets) | dcgan (the popular PyTorch SAGAN's) |
    # dcgan-radford (DCGAN's) | resnet-wgan-gp | resnet-sngan (those papers' CIFAR-10 ResNets) | mobilenet (the
    # paper's nets with MobileNetV2 inverted residuals)
    arch: str = "resnet"
    expansion: int = 6  # mobilenet: channel expansion of the inverted residuals (MobileNetV2's 6)
    z_dim: int = 128  # latent size
    g_channels: int = 64  # generator width: channels of its highest-resolution feature map
    d_channels: int = 64  # discriminator width: channels of its highest-resolution feature map
    g_attention: list[int] = field(default_factory=lambda: [32])  # G feature resolutions followed by self-attention
    d_attention: list[int] = field(default_factory=lambda: [32])  # D feature resolutions followed by self-attention
    # attention form (models.ATTENTION): paper (its equations) | official (the TF code) | popular (the PyTorch
    # repository's) | multihead | l2 (tied queries and keys, Lipschitz) | local (a window) | deformable (K points)
    attention: str = "paper"
    attention_heads: int = 4  # multihead, l2: heads; they must divide g_channels / 8 and d_channels / 8
    attention_window: int = 7  # local: each query attends to this odd window x window neighbourhood
    attention_points: int = 9  # deformable: sampling points per query, a square number (a grid at the start)
    attention_pos: str = "none"  # positional encoding of queries and keys (models.POSITIONS): none | sincos | learned
    # G / D blocks (by output resolution) whose 3x3 convolutions are deformable (DCNv2); resnet backbones
    g_deformable: list[int] = field(default_factory=list)
    d_deformable: list[int] = field(default_factory=list)
    g_spectral_norm: bool = True  # spectral norm on generator layers
    d_spectral_norm: bool = True  # spectral norm on discriminator layers
    num_classes: int = 0  # > 0: conditional BN in G and a projection discriminator
    init: str = "orthogonal"  # weight init (models.INITS): orthogonal | xavier | normal (N(0, 0.02), DCGAN's)


@dataclass
class DataConfig:
    name: str = "embedded"  # dataset (data.DATASETS)
    root: str | None = resumable(None)  # dataset folder (not for embedded); lsun: the *_lmdb folder itself
    split: str = "train"  # one of the dataset's splits (data.DATASETS), e.g. celeba: train | valid | test | all
    # > 0: a seeded ratio split of all the dataset's images instead of its own splits, this fraction of them the
    # test part (data.split = train | test picks the part), drawn with split_seed
    test_fraction: float = 0.0
    split_seed: int = 0
    resolution: int = 32  # image size, a power of two from 32 to 256
    channels: int = 3  # 3 = RGB, 1 = grayscale
    # center-crop size before resizing; 0 = the largest centered square, except CelebA: 178 (the full width of its
    # 178x218 aligned faces); 160 (the popular PyTorch SAGAN), 140 or 108 (DCGAN-TF) zoom in on the face
    crop: int = 0
    labels: str = "none"  # imagefolder: none | folders (each first-level folder is a class, sorted by name)
    attribute: str = ""  # celeba: label images by one list_attr_celeba.txt column, e.g. Smiling (2 classes)
    pad: bool = True  # mnist, fashion-mnist, embedded at 32x32: zero-pad the 28x28 digits (LeNet); false: resize
    workers: int = resumable(2)  # decoding processes for datasets read from image files
    # image-file datasets (celeba, imagefolder, lsun): decode once into a memory-mapped file and train from it;
    # auto = a file in $SAGAN_CACHE/datasets (default ~/.cache/sagan/datasets) | off | a folder | a .npy file
    cache: str = "auto"
    strict: bool = resumable(False)  # stop at an unreadable image instead of skipping it with a warning


# DataConfig fields that say how to read a dataset, not which images and labels it holds: the dataset cache is
# keyed by all the other fields, so a new field is part of the key unless it is listed here.
DATA_READ_FIELDS = ("root", "workers", "cache", "strict")


@dataclass
class TrainConfig:
    # The run's length: G steps, or epochs (passes of D over the training images); exactly one is > 0, and a
    # config layer (preset, file, flags, --set) that sets one clears the other.
    steps: int = resumable(200_000)
    epochs: int = resumable(0)
    # a wall-clock budget of the training loop, its resumes included (0 = none); reached, the run ends as at its
    # last step: samples, evaluation, checkpoint
    max_minutes: float = resumable(0.0)
    batch_size: int = 64
    loss: str = "hinge"  # GAN loss (losses.LOSSES): hinge (the paper) | bce (non-saturating) | wgan-gp
    # gradient-penalty weight on D, any loss (0 = off); unset: the loss's default (losses.LOSSES), 10 for wgan-gp
    gp_weight: float | None = None
    r1_weight: float = 0.0  # R1 penalty weight on real images, any loss (0 = off)
    # LeCam regularization weight (Tseng et al. 2021; 0 = off): D's outputs kept near the moving averages of the other
    # side's, with those averages' decay per D step
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99
    # differentiable augmentation of everything D sees (augment.AUGMENTS): none | diffaugment | ada
    augment: str = "none"
    augment_policy: str = "color,translation,cutout"  # diffaugment: its policies (augment.POLICIES), in order
    ada_target: float = 0.6  # ada: the target of the overfitting signal E[sign(D(real))]
    ada_images: int = 500_000  # ada: real images over which p may go from 0 to 1 (StyleGAN2-ADA's ada_kimg x 1000)
    ada_interval: int = 4  # ada: D steps between adjustments of p
    accumulate: int = 1  # split every G and D batch into this many micro-batches, one optimiser step per batch
    clip_grad_norm: float = 0.0  # max gradient norm for G and D (0 = off)
    clip_grad_value: float = 0.0  # clip every gradient entry of G and D to [-v, v] (0 = off)
    lr_g: float = 1e-4  # TTUR: G learns 4x slower than D
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    weight_decay: float = 0.0  # Adam L2 weight decay for G and D
    # optim.SCHEDULES: constant | linear (to 0, per step) | exponential, step, cosine (to 0; these per epoch)
    lr_schedule: str = "constant"
    lr_gamma: float = 0.99  # the exponential schedule's factor per epoch; the step schedule's per lr_step_size
    lr_step_size: int = 1  # epochs between the step schedule's drops
    n_dis: int = 1  # D steps per G step
    reuse_fakes: bool = False  # the G step scores the D step's fakes (as PyTorch's DCGAN example), not new latents
    ema_decay: float = 0.999  # decay per G step of the generator EMA used for sampling, once ramped up
    # The EMA's half-life is at most ema_rampup x the steps so far (StyleGAN2-ADA's ema_rampup), so it averages
    # trained weights in short runs too; 0 = the fixed ema_decay from the first step
    ema_rampup: float = 0.05
    ema_start: int = 0  # G steps before the EMA starts averaging (until then it copies G)
    amp: str = "none"  # mixed precision (runtime.PRECISIONS): none | bf16 | fp16 (CUDA only)
    channels_last: bool | None = None  # NHWC memory format for convolutions (auto: on the CPU, where it is faster)
    # Adam as one fused kernel over all parameters (false: torch's default, multi-tensor on CUDA, a loop on the CPU)
    fused_optimizer: bool = True
    kernels: str = "auto"  # auto: sagan.kernels' faster layers where they help | plain: the networks as written
    # torch.compile G and D (the first steps compile for a minute or more); auto: on CUDA, with CUDA graphs where
    # the run allows (training.compilation)
    compile: bool | None = None
    compile_mode: str = "default"  # torch.compile mode; reduce-overhead adds CUDA graphs (fewer kernel launches)
    sync_bn: bool = False  # under torchrun on GPUs: G's batch norm uses statistics of the global batch
    device: str = resumable("auto")  # auto | cpu | cuda | cuda:N
    seed: int = 0
    # a run directory or training checkpoint whose G, D and EMA weights this run starts from (fresh optimisers,
    # step 0; tensors matched by name and shape, see training.transfer)
    init_from: str = ""
    freeze_g: int = 0  # G's first K blocks (entries of G.blocks) get no updates
    freeze_d: int = 0  # D's first K blocks get no updates (FreezeD)
    log_every: int = resumable(100)  # steps between lines of metrics.jsonl
    sample_every: int = resumable(1000)  # steps between sample grids
    checkpoint_every: int = resumable(5000)  # steps between checkpoints
    keep_checkpoints: int = resumable(3)  # step-XXXXXXX.pt files kept besides latest.pt
    # NaN or inf in the losses or weights: stop (before checkpointing it) | rollback: return to the last good
    # checkpoint and replay from there without the batches of the step that went non-finite
    on_nonfinite: str = resumable("stop")
    rollbacks: int = resumable(3)  # rollback: returns to one checkpoint before the run stops after all
    num_samples: int = 64  # images in each sample grid
    sample_raw: bool = resumable(False)  # also samples/raw/: the raw G's grid of the same latents beside the EMA's
    epoch_sheets: bool = resumable(False)  # at each epoch's end samples/epoch-NNNN.png: real images beside the EMA G's
    report: bool = resumable(True)  # `sagan train` refreshes RUN/report.html at every checkpoint
    # experiment trackers that receive the logged scalars and sample grids (trackers.TRACKERS): tensorboard, wandb,
    # mlflow, any combination
    loggers: list[str] = field(default_factory=list, metadata={"resumable": True})


@dataclass
class EvalConfig:
    every: int = 0  # G steps between evaluations of the EMA generator, and at the end (0 = off)
    at_end: bool = False  # with every = 0: evaluate the final EMA generator only
    num_samples: int = 10_000  # generated images per evaluation
    metrics: list[str] = field(default_factory=lambda: ["fid"])  # names of metrics.evaluate.METRICS
    reference: str | None = None  # dataset name, image folder or stats .npz (none: the run's data, by eval.split)
    # which part of the run's data: auto = the held-out part when there is one (data.test_fraction's test part, or
    # the dataset's official test split, else its val split, while training on train), else the training images;
    # or a split name
    split: str = "auto"
    reference_samples: int = 0  # real images for the reference statistics, a seeded random subset (0 = all)
    backbone: str = "inception"  # network for fid / kid (metrics.evaluate.BACKBONES)
    inception_weights: str | None = None  # FID Inception weight file (none: $SAGAN_INCEPTION_WEIGHTS or download)
    vgg16_weights: str | None = None  # VGG16 weight file for pr / dc (none: $SAGAN_VGG16_WEIGHTS or download)
    best_metric: str = ""  # result that picks checkpoints/best.pt, e.g. fid or is ("" = the first metric's)
    batch_size: int = 64


# Of the config's layout. Version 1 (unrecorded, before 2026-12-06) called today's `popular` attention `paper`
# and applied train.gp_weight (then 10 by default) only with loss wgan-gp; `values.upgrade` reads it as it was meant.
VERSION = 2


@dataclass
class Config:
    version: int = VERSION
    preset: str = ""  # the preset this config started from
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def dataset_options(data: DataConfig) -> dict[str, Any]:
    """What a dataset's images and labels depend on besides its files: the data fields but DATA_READ_FIELDS, and
    the absolute root."""
    options = {key: value for key, value in dataclasses.asdict(data).items() if key not in DATA_READ_FIELDS}
    return options | {"root": str(Path(data.root).expanduser().resolve()) if data.root else None}

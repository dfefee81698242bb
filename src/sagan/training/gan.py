"""The networks and optimisers of one GAN training run and its three updates: D step, G step, EMA."""

import contextlib
import copy
import math
import time
from collections.abc import Callable

import torch
from torch import nn

from .. import augment, kernels
from ..config import Config
from ..errors import RunError
from ..losses import LOSSES, gp_weight, gradient_penalty, lecam_penalty, r1_penalty
from ..models import attention_layers, build_discriminator, build_generator
from ..models.layers import SpectralNorm
from ..optim import build_optimizer, build_scheduler
from ..runtime import autocast, capture_rng, restore_rng
from . import compilation
from .distributed import world_size
from .transfer import freeze


def ema_decay(t, step: int) -> float:
    """The EMA's decay at G step `step` of a run with TrainConfig `t`: 0 (a copy) before ema_start; then ema_decay,
    its half-life capped at ema_rampup x step while the run is young (StyleGAN2-ADA's ema_rampup)."""
    if step < t.ema_start or t.ema_decay == 0:
        return 0.0
    if t.ema_rampup == 0:
        return t.ema_decay
    half_life = min(math.log(0.5) / math.log(t.ema_decay), t.ema_rampup * max(step, 1))
    return 0.5 ** (1 / half_life)


def micro_batches(k: int, x: torch.Tensor, y: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The batch (and its labels) in `k` equal consecutive parts."""
    return list(zip(x.chunk(k), [None] * k if y is None else y.chunk(k)))


def no_sync(net: nn.Module, last: bool):
    """DDP's gradient all-reduce only after the last micro-batch's backward; nothing to skip otherwise."""
    return contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()


@contextlib.contextmanager
def reused_power_iteration(nets: list[nn.Module], reuse: bool):
    """With `reuse`, spectral norm divides by the sigma of the vectors the first micro-batch's power iteration left,
    without another iteration: K micro-batches normalise the weights as one batch does."""
    layers = [m for net in nets for m in net.modules() if isinstance(m, SpectralNorm) and m.training] if reuse else []
    for m in layers:
        m.training = False
    try:
        yield
    finally:
        for m in layers:
            m.training = True


def mean_stats(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Each statistic's mean over the parts (micro-batches, D steps)."""
    return parts[0] if len(parts) == 1 else {key: torch.stack([p[key] for p in parts]).mean() for key in parts[0]}


class GANTraining:
    """G, D, the EMA copy of G, their optimisers, schedules and gradient scalers.

    The training loop and the benchmark run `train_step` (D steps, G step, EMA update); the tests also its parts.
    """

    def __init__(self, cfg: Config, device: torch.device, batches_per_epoch: int, total_steps: int | None = None):
        """`batches_per_epoch`: D batches in one pass over the training set; `total_steps`: the run's G steps
        (default train.steps), for the schedules that end with the run."""
        self.cfg, self.device = cfg, device
        t, res, ch = cfg.train, cfg.data.resolution, cfg.data.channels
        self.G = build_generator(cfg.model, res, ch).to(device)
        self.D = build_discriminator(cfg.model, res, ch).to(device)
        if t.kernels == "auto":
            self.G, self.D = kernels.install(self.G), kernels.install(self.D)
        # oneDNN's convolutions are faster in NHWC; cuDNN's float32 ones are not, and torch.compile's CUDA backward
        # has failed on its strides.
        self.channels_last = device.type == "cpu" if t.channels_last is None else t.channels_last
        if self.channels_last:
            self.G, self.D = (net.to(memory_format=torch.channels_last) for net in (self.G, self.D))
        # Frozen blocks (train.freeze_g / freeze_d) get no gradients and no optimiser state.
        self.frozen = {"G": freeze(self.G, t.freeze_g), "D": freeze(self.D, t.freeze_d)}
        self.d_trainable = [p for p in self.D.parameters() if p.requires_grad]
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.d_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        self.compiling = compilation.plan(cfg, device, world_size())
        if self.compiling.mode:
            compilation.compile_networks([self.G, self.D], self.compiling.mode)
        self._first_compiled_step = self.compiling.mode is not None
        # What the updates call for gradients: the networks, or their DDP wrappers (`distributed.data_parallel`).
        self.G_train, self.D_train = self.G, self.D
        self.opt_g = build_optimizer([p for p in self.G.parameters() if p.requires_grad], t.lr_g, t)
        self.opt_d = build_optimizer(self.d_trainable, t.lr_d, t)
        total_steps = total_steps or t.steps
        self.sched_g = build_scheduler(self.opt_g, t, total_steps, batches_per_epoch)
        self.sched_d = build_scheduler(self.opt_d, t, total_steps, batches_per_epoch)
        # fp16 gradients underflow without loss scaling; the scalers are no-ops otherwise.
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=t.amp == "fp16")
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=t.amp == "fp16")
        self.d_loss_fn, self.g_loss_fn = LOSSES[t.loss].d, LOSSES[t.loss].g
        self.gp_weight = gp_weight(t.loss, t.gp_weight)
        self._fakes: tuple[torch.Tensor, torch.Tensor | None] | None = None  # the D step's, for the G step to reuse
        self.augment = augment.build(t)
        # LeCam: moving averages of D's mean outputs on real and fake images; NaN until the first D step sets them.
        self.lecam_averages = torch.full((2,), float("nan"), device=device)

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 NCHW images from the data loader -> float in [-1, 1] on the device (labels only if conditional)."""
        x = images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels.to(self.device, non_blocking=True) if self.cfg.model.num_classes else None
        return x, y

    def latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.cfg.model.z_dim, device=self.device)
        y = torch.randint(self.cfg.model.num_classes, (n,), device=self.device) if self.cfg.model.num_classes else None
        return z, y

    def train_step(self, batches: list[tuple[torch.Tensor, torch.Tensor]], n: int, step: int,
                   log: Callable[[str], None] = print) -> dict[str, torch.Tensor]:
        """A D step on each of the loader's `batches` (n_dis of them), a G step on `n` latents and the EMA update
        after G step `step`; returns the D steps' mean statistics and the G step's.

        The first step of compiled networks compiles them, and `log` gives its time. If that fails, with
        train.compile=auto, the step is undone (weights, optimisers, random state), `log` says why, and it runs again
        eagerly, as do all later ones.
        """
        if not self._first_compiled_step:
            return self._train_step(batches, n, step)
        self._first_compiled_step = False
        saved, rng = copy.deepcopy(self.state_dict()), capture_rng()
        started = time.monotonic()
        try:
            stats = self._train_step(batches, n, step)
            log(f"first step, compiling G and D: {time.monotonic() - started:.0f} s")
            return stats
        except Exception as e:
            reason = compilation.failure(e)
            if self.cfg.train.compile:
                raise RunError(f"train.compile=true: torch.compile failed ({reason}); set train.compile=auto to "
                               "fall back to eager, or false") from e
            log(f"torch.compile failed ({reason}); G and D run eagerly")
            self.load_state_dict(saved)
            restore_rng(rng)
            compilation.run_eagerly([self.G, self.D])
            self.compiling = compilation.Plan(None, "")
            return self._train_step(batches, n, step)

    def _train_step(self, batches, n: int, step: int) -> dict[str, torch.Tensor]:
        stats = mean_stats([self.d_step(*self.prepare(images, labels)) for images, labels in batches])
        stats |= self.g_step(n)
        self.update_ema(step)
        return stats

    def d_step(self, real: torch.Tensor, y_real: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One discriminator update on a batch of real images (in train.accumulate micro-batches); returns detached
        statistics."""
        self._new_step()
        self.opt_d.zero_grad(set_to_none=True)
        parts = micro_batches(self.cfg.train.accumulate, real, y_real)
        stats = []
        for i, (r, y) in enumerate(parts):
            with no_sync(self.D_train, last=i == len(parts) - 1), reused_power_iteration([self.G, self.D], i > 0):
                loss, part = self._d_loss(r, y)
                self.scaler_d.scale(loss * (len(r) / len(real))).backward()
            stats.append(part)
        self._step(self.D, self.opt_d, self.scaler_d)
        return mean_stats(stats)

    def _d_loss(self, real: torch.Tensor, y_real: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        t = self.cfg.train
        n = real.shape[0]
        with autocast(t.amp, self.device):
            if t.reuse_fakes:
                # Kept with G's graph: the G step scores these fakes again, with the updated D.
                fake, y_fake = self._fakes = self._generate(self.G_train, n)
                fake = fake.detach()
            else:
                with torch.no_grad():
                    fake, y_fake = self._generate(self.G, n)
            real, fake = self.augment(real), self.augment(fake)  # D only ever sees augmented images
            if self.d_batch_norm:
                # Batch norm in D (DCGAN's): real and fake batches each normalised by their own statistics.
                d_real, d_fake = self.D_train(real, y_real).float(), self.D_train(fake, y_fake).float()
            else:
                # Real and fake go through D as one batch: one forward, one spectral-norm power iteration.
                y = None if y_real is None else torch.cat([y_real, y_fake])
                logits = self.D_train(torch.cat([real, fake]), y).float()
                d_real, d_fake = logits[:n], logits[n:]
        self.augment.observe(d_real)
        loss = self.d_loss_fn(d_real, d_fake)
        stats = {"d_loss": loss.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
        if self.gp_weight > 0:
            with autocast(t.amp, self.device):
                gp = gradient_penalty(self.D, real, fake.detach(), y_real)
            loss = loss + self.gp_weight * gp
            stats["gp"] = gp.detach()
        if t.r1_weight > 0:
            with autocast(t.amp, self.device):
                r1 = r1_penalty(self.D, real, y_real)
            loss = loss + t.r1_weight / 2 * r1
            stats["r1"] = r1.detach()
        if t.lecam_weight > 0:
            means = torch.stack([stats["d_real"], stats["d_fake"]])
            self.lecam_averages = torch.where(self.lecam_averages.isnan(), means,
                                              torch.lerp(means, self.lecam_averages, t.lecam_decay))
            lecam = lecam_penalty(d_real, d_fake, self.lecam_averages)
            loss = loss + t.lecam_weight * lecam
            stats["lecam"] = lecam.detach()
        return loss, stats

    def g_step(self, n: int) -> dict[str, torch.Tensor]:
        """One generator update on `n` fresh latents (`train.reuse_fakes`: on the last D step's fakes), in
        train.accumulate micro-batches; returns detached statistics."""
        self._new_step()
        # D's weight gradients are not needed here; skipping them saves a third of D's backward pass.
        for p in self.d_trainable:
            p.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        k = min(self.cfg.train.accumulate, n)
        sizes = [n // k + (i < n % k) for i in range(k)]  # k near-equal parts of the batch
        losses = []
        for i, size in enumerate(sizes):
            with no_sync(self.G_train, last=i == k - 1), reused_power_iteration([self.G, self.D], i > 0):
                with autocast(self.cfg.train.amp, self.device):
                    fake, y = self._fakes if self._fakes is not None else self._generate(self.G_train, size)
                    logits = self.D(self.augment(fake), y).float()
                self._fakes = None
                loss = self.g_loss_fn(logits)
                self.scaler_g.scale(loss * (size / n)).backward()  # the batch mean's gradient, summed over parts
            losses.append({"g_loss": loss.detach()})
        self._step(self.G, self.opt_g, self.scaler_g)
        for p in self.d_trainable:
            p.requires_grad_(True)
        return mean_stats(losses)

    def _generate(self, net: nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, y = self.latents(n)
        return net(z, y), y

    def _new_step(self) -> None:
        # Tells CUDA graphs (compile_mode reduce-overhead) that the last step's outputs are no longer read.
        if self.compiling.mode:
            torch.compiler.cudagraph_mark_step_begin()

    def _step(self, net: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        """The optimiser step on the gradients the backward passes left, clipped as configured."""
        t = self.cfg.train
        if t.clip_grad_value > 0 or t.clip_grad_norm > 0:
            scaler.unscale_(opt)  # clip the true gradients, not the fp16 loss-scaled ones
        if t.clip_grad_value > 0:
            nn.utils.clip_grad_value_(net.parameters(), t.clip_grad_value)
        if t.clip_grad_norm > 0:
            nn.utils.clip_grad_norm_(net.parameters(), t.clip_grad_norm)
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """G_ema <- decay * G_ema + (1 - decay) * G after G step `step`, with `ema_decay(step)`, for the parameters
        and the batch-norm statistics (so they describe the averaged weights' activations, not only the last
        G's); the other buffers (spectral-norm vectors, counters) are copied."""
        decay = ema_decay(self.cfg.train, step)
        # One multi-tensor update of all parameters, not one kernel per tensor: on a GPU this step is launch-bound.
        ema = torch.optim.swa_utils.get_ema_multi_avg_fn(decay)
        ema(list(self.G_ema.parameters()), list(self.G.parameters()), step)
        stats, others = ([], []), ([], [])
        for (name, ema_buffer), buffer in zip(self.G_ema.named_buffers(), self.G.buffers()):
            pairs = stats if name.endswith(("running_mean", "running_var")) else others
            pairs[0].append(ema_buffer)
            pairs[1].append(buffer)
        if stats[0]:
            torch._foreach_lerp_(*stats, 1 - decay)
        if others[0]:
            torch._foreach_copy_(*others)

    def step_schedules(self) -> None:
        self.sched_g.step()
        self.sched_d.step()

    def gammas(self) -> dict[str, float]:
        """The attention gamma of every attention layer, e.g. {'G.attn16': 0.03}."""
        return {f"{prefix}.{name.removeprefix('blocks.')}": layer.gamma.item()
                for prefix, net in (("G", self.G), ("D", self.D))
                for name, layer in attention_layers(net).items()}

    def state_dict(self) -> dict:
        return {
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "generator_ema": self.G_ema.state_dict(),
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "schedulers": {"g": self.sched_g.state_dict(), "d": self.sched_d.state_dict()},
            "grad_scalers": {"g": self.scaler_g.state_dict(), "d": self.scaler_d.state_dict()},
            "augment": self.augment.state_dict(),
            "lecam_averages": self.lecam_averages.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.G_ema.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.sched_g.load_state_dict(state["schedulers"]["g"])
        self.sched_d.load_state_dict(state["schedulers"]["d"])
        self.scaler_g.load_state_dict(state["grad_scalers"]["g"])
        self.scaler_d.load_state_dict(state["grad_scalers"]["d"])
        if "augment" in state:  # checkpoints from before augmentation and LeCam
            self.augment.load_state_dict(state["augment"])
            self.lecam_averages.copy_(state["lecam_averages"])

"""Throughput of the medgan_aug GAN trainer vs a plain PyTorch loop vs MONAI's ``GanTrainer``.

One process, one run. All three rows train their own copy of the same networks (same initial weights)
with the same batch size, optimisers (Adam 2e-4, (0.5, 0.999)) and the same per-iteration work: one D
step and one G step on real/fake batches passed through DiffAugment, conditional on the real batch's
labels, and an EMA update of G:

* ``medgan_aug GANTrainer``: :class:`medgan_aug.engines.gan_trainer.GANTrainer` (ignite Engine / MONAI Trainer) with
  the per-iteration ``losses.csv`` handler of ``train_gan`` attached (periodic checkpoints and sample
  grids are left out: they are I/O every K iterations, not per-iteration cost).
* ``plain PyTorch loop``: the same step written as a ``for`` loop, no engine, no handlers.
* ``monai GanTrainer``: the same networks and step driven by ``monai.engines.GanTrainer`` with a
  ``DataLoader`` (shuffled, drop_last), labels passed through ``d_prepare_batch``/``g_inferer``, DiffAugment
  inside the loss functions, the EMA as an ignite handler.

The rows are interleaved over several rounds (each row runs ``--iterations`` per round) so that load
from other processes on a shared machine hits all rows alike; images/s are totals over the rounds.

Usage::

    python benchmarks/bench_trainer.py [--path ../shared/data/nih1000_chestmnist.npz] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Events
from monai.engines import GanTrainer
from torch.utils.data import DataLoader, TensorDataset

from medgan_aug.apps.train import GANConfig, build_gan_trainer
from medgan_aug.apps.train import load_gan_subset as _load_subset
from medgan_aug.handlers.loss_log import LossCSV as _LossCSV

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data")) / "nih1000_chestmnist.npz"
)


@torch.no_grad()
def _ema(ema: torch.nn.Module, g: torch.nn.Module, t: int, decay: float = 0.999) -> None:
    d = min(decay, (1.0 + t) / (10.0 + t))
    for pe, p in zip(ema.parameters(), g.parameters()):
        pe.lerp_(p, 1.0 - d)
    for be, b in zip(ema.buffers(), g.buffers()):
        be.copy_(b)


class PlainLoop:
    """The GAN step as a bare loop over the same seeded batches."""

    def __init__(self, G, D, batches, augment, lr=2e-4, betas=(0.5, 0.999), seed=0):
        self.G, self.D, self.batches, self.augment = G, D, batches, augment
        self.ema = copy.deepcopy(G).eval()
        self.opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
        self.rng = torch.Generator().manual_seed(seed)
        self.t = 0

    def run(self, iterations: int) -> None:
        G, D, aug = self.G, self.D, self.augment
        for _ in range(iterations):
            batch = self.batches.batch(self.t)
            real, y = batch["image"], batch.get("label")
            b = real.shape[0]
            with torch.no_grad():
                fake = G(torch.randn(b, G.latent_dim, generator=self.rng), y)
            loss_d = F.softplus(-D(aug(real), y)).mean() + F.softplus(D(aug(fake), y)).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            D.requires_grad_(False)
            fake = G(torch.randn(b, G.latent_dim, generator=self.rng), y)
            loss_g = F.softplus(-D(aug(fake), y)).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            D.requires_grad_(True)
            self.t += 1
            _ema(self.ema, G, self.t)
            loss_d.item(), loss_g.item()


class MonaiGan:
    """The same step through ``monai.engines.GanTrainer``."""

    def __init__(self, G, D, images, labels, batch_size, augment, lr=2e-4, betas=(0.5, 0.999), seed=0):
        self.ema = copy.deepcopy(G).eval()
        holder: dict[str, torch.Tensor | None] = {"y": None}
        rng = torch.Generator().manual_seed(seed)
        tensors = (images, labels) if labels is not None else (images,)
        loader = DataLoader(
            TensorDataset(*tensors), batch_size=batch_size, shuffle=True, drop_last=True, generator=rng
        )

        def d_prepare(batchdata, device=None, non_blocking=False, **kw):
            holder["y"] = batchdata[1] if len(batchdata) > 1 else None
            return batchdata[0]

        def g_prepare(num_latents, latent_size, device=None, non_blocking=False, **kw):
            return torch.randn(num_latents, latent_size, generator=rng)

        def g_infer(z, net):
            return net(z, holder["y"])

        def d_loss(fakes, reals):
            y = holder["y"]
            return F.softplus(-D(augment(reals), y)).mean() + F.softplus(D(augment(fakes.detach()), y)).mean()

        def g_loss(fakes):
            D.requires_grad_(False)
            out = F.softplus(-D(augment(fakes), holder["y"])).mean()
            D.requires_grad_(True)
            return out

        self.trainer = GanTrainer(
            device="cpu",
            max_epochs=10**6,
            train_data_loader=loader,
            g_network=G,
            g_optimizer=torch.optim.Adam(G.parameters(), lr=lr, betas=betas),
            g_loss_function=g_loss,
            d_network=D,
            d_optimizer=torch.optim.Adam(D.parameters(), lr=lr, betas=betas),
            d_loss_function=d_loss,
            latent_shape=G.latent_dim,
            d_prepare_batch=d_prepare,
            g_prepare_batch=g_prepare,
            g_inferer=g_infer,
            decollate=False,
            optim_set_to_none=True,
        )
        self.trainer.add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: _ema(self.ema, G, e.state.iteration)
        )
        self.stop_at = 0

        @self.trainer.on(Events.ITERATION_COMPLETED)
        def _stop(engine):
            if engine.state.iteration >= self.stop_at:
                engine.terminate()

    def run(self, iterations: int) -> None:
        self.stop_at += iterations
        self.trainer.run()


class OurTrainer:
    def __init__(self, trainer, csv_path):
        self.trainer = trainer
        _LossCSV(csv_path, None).attach(trainer)
        trainer.iterations = 0

    def run(self, iterations: int) -> None:
        self.trainer.iterations += iterations
        self.trainer.run()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=str(DEFAULT_DATA))
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--base-channels", type=int, default=64)
    ap.add_argument("--unconditional", action="store_true")
    ap.add_argument("--iterations", type=int, default=15, help="iterations per row per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    config = GANConfig(
        path=args.path,
        size=args.size,
        conditional=not args.unconditional,
        batch_size=args.batch_size,
        base_channels=args.base_channels,
        iterations=10**6,
        progress=False,
        # the engine's overhead is the question here: all rows compute alike (float32, standard memory format);
        # the precision and memory-format settings are measured by bench_gan_speed.py
        precision="fp32",
        channels_last=False,
    )
    subset = _load_subset(config)
    ours = build_gan_trainer(config, subset)
    G0, D0, augment = ours.generator, ours.discriminator, ours.augment
    labels = subset.targets if config.conditional else None
    plain = PlainLoop(copy.deepcopy(G0), copy.deepcopy(D0), ours.batches, copy.deepcopy(augment))
    monai_gan = MonaiGan(
        copy.deepcopy(G0), copy.deepcopy(D0), subset.images, labels, args.batch_size, copy.deepcopy(augment)
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "medgan_aug GANTrainer": OurTrainer(ours, Path(tmp) / "losses.csv"),
            "plain PyTorch loop": plain,
            "monai GanTrainer": monai_gan,
        }
        for runner in rows.values():
            runner.run(args.warmup)
        seconds = dict.fromkeys(rows, 0.0)
        for r in range(args.rounds):
            order = list(rows) if r % 2 == 0 else list(reversed(rows))
            for name in order:
                t = time.perf_counter()
                rows[name].run(args.iterations)
                seconds[name] += time.perf_counter() - t

    images = args.iterations * args.rounds * args.batch_size
    rate = {k: images / v for k, v in seconds.items()}
    plain_rate = rate["plain PyTorch loop"]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
        f"threads {args.threads}; {args.size}x{args.size}, "
        f"{'conditional' if config.conditional else 'unconditional'}, batch {args.batch_size}, "
        f"base_channels {args.base_channels}, {args.rounds} rounds x {args.iterations} iterations"
    )
    print(f"{'row':<24}{'images/s':>10}{'it/s':>8}{'vs plain':>10}")
    for name, value in rate.items():
        print(f"{name:<24}{value:>10.1f}{value / args.batch_size:>8.2f}{value / plain_rate:>9.3f}x")
    ratio = rate["medgan_aug GANTrainer"] / plain_rate
    print(f"trainer / plain = {ratio:.3f} (target >= 0.95): {'OK' if ratio >= 0.95 else 'BELOW TARGET'}")


if __name__ == "__main__":
    np.random.seed(0)
    main()

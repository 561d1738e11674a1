"""Seconds per training step and DDIM images per second of the default diffusion generator (``--model ddpm``).

Builds the trainer ``medgan-aug train --model ddpm --conditional`` would build (``GANConfig`` defaults: channels
32/64/64, one residual block per level, attention at the lowest level, cross-attention on the labels, 28 px
reflect-padded to 32, batch 64) for each (precision, channels_last) asked, times ``--steps`` training
iterations after ``--warmup`` (the fastest of ``--rounds`` rounds, interleaved across settings, since load from
other processes only ever slows a round down), then times DDIM sampling of ``--sample-batch`` images at
``--sampling-steps`` steps with guidance 0 (one UNet pass per step) and ``--guidance`` (two).

FLOPs per training step are counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions, forward and backward).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_diffusion_speed.py --threads 1 [--settings fp32:0 fp32:1 bf16:1]
"""

from __future__ import annotations

import argparse
import random
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from medgan_aug.apps.train import GANConfig, load_gan_subset
from medgan_aug.apps.train_diffusion import build_diffusion_trainer


def _trainer(args: argparse.Namespace, precision: str, channels_last: bool):
    config = GANConfig(
        out="unused",
        sample=args.sample,
        model="ddpm",
        conditional=True,
        batch_size=args.batch_size,
        precision=precision,
        channels_last=channels_last,
        threads=args.threads,
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        subset = load_gan_subset(config)
    trainer = build_diffusion_trainer(config, subset)
    trainer.state.iteration, trainer.state.epoch = 0, 0
    return trainer


def _step(trainer) -> None:
    batch = trainer.batches.batch(trainer.state.iteration)
    trainer.state.iteration += 1
    trainer._iteration(trainer, batch)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", default="nih1000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--settings", nargs="+", default=["fp32:0"], help="precision:channels_last, e.g. bf16:1"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample-batch", type=int, default=64)
    parser.add_argument("--sampling-steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--no-sampling", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = [(s.split(":")[0], s.split(":")[1] == "1") for s in args.settings]
    trainers = {s: _trainer(args, *s) for s in settings}
    first = trainers[settings[0]]
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
        f"UNet input {first.generator.padded_size} px, parameters "
        f"{sum(p.numel() for p in first.generator.parameters()):,}"
    )
    with FlopCounterMode(display=False) as counter:
        _step(first)
    print(f"FLOPs per training step (matmul + conv, fwd + bwd): {counter.get_total_flops() / 1e9:.1f} G")
    for trainer in trainers.values():
        for _ in range(args.warmup):
            _step(trainer)
    best = {s: float("inf") for s in settings}
    for _ in range(args.rounds):
        order = list(settings)
        random.shuffle(order)
        for s in order:
            started = time.perf_counter()
            for _ in range(args.steps):
                _step(trainers[s])
            best[s] = min(best[s], (time.perf_counter() - started) / args.steps)
    for (precision, channels_last), seconds in best.items():
        print(
            f"train {precision} channels_last={int(channels_last)}: {seconds:.3f} s/step, "
            f"{args.batch_size / seconds:.1f} images/s"
        )
    if args.no_sampling:
        return
    generator = first.generator_ema
    torch.manual_seed(0)
    z = torch.randn(args.sample_batch, generator.latent_dim)
    labels = first.batches.labels[: args.sample_batch].cpu()
    for guidance in (0.0, args.guidance):
        generator.set_sampling(args.sampling_steps, guidance)
        started = time.perf_counter()
        generator(z, labels)
        seconds = time.perf_counter() - started
        print(
            f"DDIM {args.sampling_steps} steps, guidance {guidance:g}, batch {args.sample_batch}: "
            f"{args.sample_batch / seconds:.2f} images/s ({seconds:.1f} s)"
        )


if __name__ == "__main__":
    main()

"""Throughput of SyntheticDataset and the cost of MixSyntheticd in a classifier step (one process, one run).

1. images/s of iterating a fresh (uncached) :class:`SyntheticDataset` through a MONAI DataLoader versus
   calling the generator directly on batches of the same size (same latents/labels work, same
   ``to_unit_range``). Target: ratio >= 0.9.
2. seconds per classifier training step (SmallCNN, Adam, BCE) on real batches with
   ``MixSyntheticd(ratio=0.5)`` (materialized source) versus real-only batches. Target: ratio <= 1.05.
   Steps alternate (real, mixed, real, ...) so load from other processes hits both alike; medians.

Usage::

    python benchmarks/bench_synthetic.py [--data PATH.npz] [--batch-size 256] [--threads 1]

On a machine shared with other jobs, torch's default thread count oversubscribes the cores and the timings
swing by 2x between runs; ``--threads 1`` gives steadier ratios.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader

from medgan_aug.data.label_samplers import JointLabelSampler
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.classifiers import build_classifier, loss_for_task
from medgan_aug.networks.dcgan import DCGANGenerator, to_unit_range
from medgan_aug.transforms.mix import MixSyntheticd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data")) / "nih1000_chestmnist.npz"
)


def bench_generation(
    generator: DCGANGenerator, pool: np.ndarray, num: int, batch_size: int
) -> tuple[float, float]:
    """(SyntheticDataset via DataLoader images/s, direct generator images/s)."""
    sampler = JointLabelSampler(pool)
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():  # warm-up both paths
        generator(torch.randn(batch_size, generator.latent_dim), sampler.sample(batch_size, rng))
    next(
        iter(
            DataLoader(
                SyntheticDataset(generator, batch_size, label_pool=pool, seed=99), batch_size=batch_size
            )
        )
    )

    t0 = time.perf_counter()
    with torch.no_grad():
        done = 0
        while done < num:
            n = min(batch_size, num - done)
            z = torch.randn(n, generator.latent_dim, generator=rng)
            images = to_unit_range(generator(z, sampler.sample(n, rng)))
            done += images.shape[0]
    direct = num / (time.perf_counter() - t0)

    dataset = SyntheticDataset(generator, num, label_pool=pool, seed=0, batch_size=batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=0)
    t0 = time.perf_counter()
    seen = sum(batch["image"].shape[0] for batch in loader)
    via_dataset = seen / (time.perf_counter() - t0)
    assert seen == num
    return via_dataset, direct


def bench_mixing(real: MedMNISTDataset, generator: DCGANGenerator, batch_size: int, blocks: int, steps: int):
    """(median seconds per mixed step, median seconds per real-only step)."""
    source = SyntheticDataset(generator, 4096, label_pool=real.targets, seed=0).materialize()
    mix = MixSyntheticd(keys=("image", "label"), source=source, ratio=0.5).set_random_state(0)
    loader = DataLoader(
        real, batch_size=batch_size, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0)
    )
    batches = [b for _, b in zip(range(steps), loader)]
    model = build_classifier("small_cnn", 1, real.num_labels, real.size, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_for_task(real.task)

    def step(batch: dict, transform) -> None:
        if transform is not None:
            batch = transform(batch)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(batch["image"]), batch["label"])
        loss.backward()
        optimizer.step()

    for batch in batches[:3]:  # warm-up
        step(batch, None)
        step(batch, mix)
    times: dict[str, list[float]] = {"real": [], "mixed": []}
    for _ in range(blocks):
        for batch in batches:  # alternate step by step so machine load hits both alike
            for name, transform in (("real", None), ("mixed", mix)):
                t0 = time.perf_counter()
                step(batch, transform)
                times[name].append(time.perf_counter() - t0)
    return float(np.median(times["mixed"])), float(np.median(times["real"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MedMNIST-format chest .npz (28 px)")
    parser.add_argument("--batch-size", type=int, default=256, help="generation batch size")
    parser.add_argument("--num", type=int, default=2048, help="images generated per path")
    parser.add_argument("--train-batch-size", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    real = MedMNISTDataset(path=args.data, split="train")
    generator = DCGANGenerator(image_size=real.size, latent_dim=100, num_labels=real.num_labels).eval()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, generator: DCGAN 28 px, "
        f"base_channels 64, conditional on {real.num_labels} labels (random weights)"
    )

    via_dataset, direct = bench_generation(generator, real.targets, args.num, args.batch_size)
    print(
        f"generation ({args.num} images, batch {args.batch_size}): SyntheticDataset+DataLoader "
        f"{via_dataset:.0f} img/s, generator direct {direct:.0f} img/s, ratio {via_dataset / direct:.3f} "
        f"(target >= 0.9)"
    )

    mixed, plain = bench_mixing(real, generator, args.train_batch_size, args.blocks, args.steps)
    print(
        f"classifier step (SmallCNN, batch {args.train_batch_size}): MixSyntheticd(ratio=0.5) "
        f"{mixed * 1e3:.2f} ms, real-only {plain * 1e3:.2f} ms, ratio {mixed / plain:.3f} (target <= 1.05)"
    )


if __name__ == "__main__":
    main()

"""Images per second of GAN training by precision and memory format, and their share of this CPU's peak.

One process builds four trainers of the default recipe (``GANConfig`` defaults: ADA + AC-GAN, width 32,
conditional, batch 64) that differ only in ``precision`` (fp32 / bf16 autocast) and ``channels_last``
(``--plain-first-layer`` adds a fifth: bf16 + channels-last with ``nn.ConvTranspose2d`` as G's first layer,
as before it became one matrix product), then times them in interleaved rounds (a new random order every
round, the fastest round kept: load from other processes only ever slows a round down), so the ratios are
measured side by side.

Share of peak: the floating-point operations of one iteration are counted by
``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions, forward and backward; the
elementwise work is not counted), and divided by the seconds per iteration and by this process's measured
matrix-product rate (``torch.mm`` of 1024 x 1024 matrices at the same thread count, float32 and bfloat16).

Usage::

    python benchmarks/bench_gan_speed.py [--path ../shared/data/nih1000_chestmnist.npz] [--threads 1] \\
        [--csv experiments/results/gan_speed/speed.csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from medgan_aug.apps.train import GANConfig, build_gan_trainer, load_gan_subset

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data")) / "nih1000_chestmnist.npz"
)

VARIANTS = {
    "fp32": dict(precision="fp32", channels_last=False),
    "fp32 + channels_last": dict(precision="fp32", channels_last=True),
    "bf16": dict(precision="bf16", channels_last=False),
    "bf16 + channels_last": dict(precision="bf16", channels_last=True),
}

PLAIN = "bf16 + channels_last, plain first layer"


def plain_first_layer(trainer) -> None:
    """Put ``nn.ConvTranspose2d`` back as G's first layer (sharing its weight): how G ran before
    :class:`medgan_aug.networks.dcgan.LatentConvTranspose2d`, for the ``--plain-first-layer`` row."""
    first = trainer.generator.net[0]
    plain = torch.nn.ConvTranspose2d(first.in_channels, first.out_channels, first.kernel_size, bias=False)
    plain.weight = first.weight  # the optimiser keeps updating the same parameter
    trainer.generator.net[0] = plain


def matmul_rate(dtype: torch.dtype, n: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of ``torch.mm`` on n x n matrices of ``dtype`` (the fastest of ``repeats`` products)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def iteration_flops(trainer) -> int:
    """Matrix-product and convolution FLOPs of one training iteration (forward + backward)."""
    data = trainer.batches.batch(0)
    with FlopCounterMode(display=False) as counter:
        trainer._iteration(trainer, data)
    return int(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=str(DEFAULT_DATA))
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=8, help="iterations per variant per round")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default=None, help="also write the table here")
    ap.add_argument(
        "--plain-first-layer",
        action="store_true",
        help="add a row: bf16 + channels_last with nn.ConvTranspose2d as G's first layer (the code before it "
        "became one matrix product)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    variants = dict(VARIANTS)
    if args.plain_first_layer:
        variants[PLAIN] = VARIANTS["bf16 + channels_last"]
    trainers = {}
    for name, options in variants.items():
        config = GANConfig(
            path=args.path,
            size=args.size,
            fraction=args.fraction,
            conditional=True,
            iterations=10**6,
            out="unused",
            progress=False,
            **options,
        )
        trainers[name] = build_gan_trainer(config, load_gan_subset(config))
        if name == PLAIN:
            plain_first_layer(trainers[name])
    batch = trainers["fp32"].batches.batch(0)["image"].shape[0]
    flops = iteration_flops(trainers["fp32"])
    peak = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}

    times: dict[str, list[float]] = {name: [] for name in trainers}
    order = np.random.default_rng(0)
    for _ in range(args.rounds):
        for name in order.permutation(list(trainers)):
            trainer = trainers[name]
            data = trainer.batches.batch(0)
            trainer.state.iteration = 1
            trainer._iteration(trainer, data)  # warm-up (allocations, oneDNN kernel choice)
            t = time.perf_counter()
            for _ in range(args.iterations):
                trainer._iteration(trainer, data)
            times[name].append((time.perf_counter() - t) / args.iterations)

    base = min(times["fp32"])
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} thread(s); {args.size} px, batch {batch}; {flops / 1e9:.2f} GFLOP per iteration "
        f"(matrix products + convolutions); torch.mm peak fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s"
    )
    header = [
        "variant",
        "ms_per_iteration",
        "images_per_s",
        "speedup_vs_fp32",
        "gflop_per_s",
        "share_of_peak",
        "gflop_per_iteration",
        "mm_peak_gflop_per_s",
    ]
    rows = []
    for name, values in times.items():
        seconds = min(values)
        rate = flops / seconds
        precision = variants[name]["precision"]
        rows.append(
            [
                name,
                round(seconds * 1000, 1),
                round(batch / seconds),
                round(base / seconds, 2),
                round(rate / 1e9, 1),
                f"{rate / peak[precision]:.0%} of {precision} mm",
                round(flops / 1e9, 2),
                round(peak[precision] / 1e9, 1),
            ]
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


if __name__ == "__main__":
    main()

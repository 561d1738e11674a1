"""Where a GAN training iteration's time goes, and whether a real run is as fast as the benchmark.

Two diagnostics for the default recipe (``GANConfig`` defaults, conditional, NIH1000, 1 thread):

* ``--profile``: ``torch.profiler`` over ``--iterations`` iterations on one fixed batch, operators grouped
  by input shape (``record_shapes=True``), the ``--top`` costliest printed in ms per iteration. The profiler
  adds its own overhead: read the shares, not the totals.
* ``--real-run``: a real ``train_gan`` run of ``--iterations`` iterations with a handler that stamps every
  ``ITERATION_COMPLETED``, then the same trainer's ``_iteration`` on one fixed batch in the same process:
  medians of both, so a gap between whole runs and ``bench_gan_speed.py`` shows up (data, handlers, engine).

Usage::

    python benchmarks/profile_gan_iteration.py --profile [--precision bf16] [--iterations 10]
    python benchmarks/profile_gan_iteration.py --real-run [--iterations 150]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Events

from medgan_aug.apps.train import GANConfig, build_gan_trainer, load_gan_subset, train_gan

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data")) / "nih1000_chestmnist.npz"
)


def _config(args: argparse.Namespace, out: str, iterations: int) -> GANConfig:
    return GANConfig(
        path=args.path,
        conditional=True,
        iterations=iterations,
        out=out,
        progress=False,
        precision=args.precision,
        channels_last=not args.no_channels_last,
        sample_every=10**6,
        checkpoint_every=10**6,
    )


def profile(args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    config = _config(args, "unused", 10**6)
    trainer = build_gan_trainer(config, load_gan_subset(config))
    data = trainer.batches.batch(0)
    trainer.state.iteration = 1
    for _ in range(5):  # warm-up: allocations, oneDNN kernel choice
        trainer._iteration(trainer, data)
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.iterations):
            trainer._iteration(trainer, data)
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) / 1e3 / args.iterations
    print(
        f"precision {trainer.precision}, channels_last {config.channels_last}: {total:.1f} ms per iteration"
    )
    print("ms/it  calls/it  operator  input shapes")
    for e in events[: args.top]:
        shapes = [s for s in e.input_shapes if s][:3]
        print(
            f"{e.self_cpu_time_total / 1e3 / args.iterations:6.2f}  {e.count // args.iterations:3d}  {e.key}  {shapes}"
        )


def real_run(args: argparse.Namespace) -> None:
    stamps: list[float] = []

    class Stamp:
        def attach(self, engine) -> None:
            self.engine = engine
            engine.add_event_handler(Events.ITERATION_COMPLETED, lambda _: stamps.append(time.perf_counter()))

    stamp = Stamp()
    with tempfile.TemporaryDirectory() as tmp:
        train_gan(_config(args, str(Path(tmp) / "run"), args.iterations), handlers=[stamp])
    run_ms = np.diff(stamps)[20:] * 1e3  # the first iterations warm up
    trainer = stamp.engine
    data = trainer.batches.batch(0)
    fixed = []
    for _ in range(40):
        t = time.perf_counter()
        trainer._iteration(trainer, data)
        fixed.append(time.perf_counter() - t)
    fixed_ms = np.array(fixed[5:]) * 1e3
    print(
        f"real run ({len(run_ms)} iterations): median {np.median(run_ms):.1f} ms, mean {run_ms.mean():.1f} ms"
    )
    print(f"fixed batch, same process ({len(fixed_ms)} iterations): median {np.median(fixed_ms):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--profile", action="store_true")
    mode.add_argument("--real-run", action="store_true")
    ap.add_argument("--path", default=str(DEFAULT_DATA))
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--iterations", type=int, default=None, help="10 to profile, 150 for --real-run")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if args.profile:
        args.iterations = args.iterations or 10
        profile(args)
    else:
        args.iterations = max(args.iterations or 150, 30)
        real_run(args)


if __name__ == "__main__":
    main()

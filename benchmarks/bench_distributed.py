"""Classifier training throughput: ``torchrun`` with 2 processes vs 1 process, same global batch.

Runs ``medgan-aug classify`` (real data, ``real+classical``) once in one process and once under
``torchrun --nproc_per_node 2`` (gloo, loopback), alternating over ``--rounds`` so that load from other
processes hits both alike. Each process uses ``--threads`` torch threads. Throughput is images per second
of training time (``examples_seen / train_seconds`` from ``metrics.json``: start-up, data loading before
the first step and test scoring are left out). 2 processes of 1 thread use two cores where 1 process of
1 thread uses one; ``--single-threads 2`` gives the one process both cores through intra-op threads
instead, to see what data parallelism adds over threads.

Usage::

    python benchmarks/bench_distributed.py [--classifier small_cnn] [--iterations 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data")) / "nih1000_chestmnist.npz"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _classify(out: Path, args: argparse.Namespace, processes: int, threads: int) -> dict:
    command = [
        "-m", "medgan_aug", "classify", "--path", str(args.path), "--fraction", "1.0", "--condition",
        "real+classical", "--classifier", args.classifier, "--iterations", str(args.iterations), "--batch-size",
        str(args.batch_size), "--seed", "0", "--out", str(out), "--threads", str(threads), "--no-progress",
    ]  # fmt: skip
    if processes > 1:
        command = [
            "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_addr", "127.0.0.1",
            "--master_port", str(_free_port()), *command,
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "GLOO_SOCKET_IFNAME": "lo"}
    subprocess.run([sys.executable, *command], check=True, env=env, capture_output=True, text=True)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(DEFAULT_DATA))
    parser.add_argument("--classifier", default="small_cnn", choices=("small_cnn", "resnet18"))
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--single-threads", type=int, default=None, help="threads of the 1-process row")
    args = parser.parse_args()
    rows = {"1 process": [0, 0.0], "torchrun, 2 processes": [0, 0.0]}
    aucs: dict[str, list[float]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, processes in (("1 process", 1), ("torchrun, 2 processes", 2)):
                threads = args.single_threads if processes == 1 and args.single_threads else args.threads
                metrics = _classify(Path(tmp) / f"{round_}_{processes}", args, processes, threads)
                rows[name][0] += metrics["examples_seen"]
                rows[name][1] += metrics["train_seconds"]
                aucs[name].append(metrics["auc"])
    print(
        f"classifier {args.classifier}, global batch {args.batch_size}, {args.iterations} iterations x "
        f"{args.rounds} rounds, {os.cpu_count()} cores"
    )
    speed = {name: images / seconds for name, (images, seconds) in rows.items()}
    for name, value in speed.items():
        print(f"  {name:24s} {value:8.1f} images/s   test AUC {', '.join(f'{a:.4f}' for a in aucs[name])}")
    print(f"  ratio 2 processes / 1 process: {speed['torchrun, 2 processes'] / speed['1 process']:.2f}x")


if __name__ == "__main__":
    main()

"""Real-only classifier baseline on the shared real files (no augmentation, full train split).

Trains the small CNN (or ResNet-18) on each file's full train split for a fixed budget, once per seed,
and evaluates once on the test split. Writes <out>/results.csv (one row per run, per-finding AUC
columns), <out>/summary.md (mean ± sd over seeds) and <out>/COMMAND.md (the exact command).

Example:
    python experiments/baseline_classifier.py --out experiments/results/classifier_baseline
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.engines.classifier_trainer import predict, train_classifier
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.utils.atomic import atomic_write_text

FILES = {  # file name -> medmnist flag
    "nih1000_chestmnist.npz": "chestmnist",
    "pneumoniamnist_union.npz": "pneumoniamnist",
}


def _sd(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if len(a) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("MEDGAN_AUG_DATA", repo.parent / "shared" / "data")),
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--files", nargs="+", default=list(FILES), choices=list(FILES))
    parser.add_argument("--arch", default="small_cnn", choices=["small_cnn", "resnet18"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for name in args.files:
        path = args.data_dir / name
        flag = FILES[name]
        train = MedMNISTDataset(flag, path=path, split="train")
        test = MedMNISTDataset(flag, path=path, split="test")
        for seed in args.seeds:
            model = build_classifier(args.arch, train.num_channels, train.num_labels, train.size, seed=seed)
            hist = train_classifier(
                model,
                train,
                task=train.task,
                iterations=args.iterations,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=seed,
            )
            scores, targets = predict(model, test, task=test.task)
            res = evaluate_scores(targets, scores, test.task, test.label_names)
            row = {
                "file": name,
                "flag": flag,
                "arch": args.arch,
                "image_size": train.size,
                "train_fraction": 1.0,
                "n_train": len(train),
                "n_test": len(test),
                "seed": seed,
                "iterations": args.iterations,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "test_auc": round(res["auc"], 4),
                "test_acc": round(res["acc"], 4),
                "skipped_labels": ";".join(res["skipped_labels"]),
                "train_seconds": round(hist["seconds"], 1),
            }
            row.update({f"auc_{k.replace(' ', '_')}": round(v, 4) for k, v in res["auc_per_label"].items()})
            rows.append(row)
            print(
                f"{name} seed={seed}: test AUC {res['auc']:.4f} ACC {res['acc']:.4f} "
                f"skipped={res['skipped_labels']} ({hist['seconds']:.0f} s)",
                flush=True,
            )

    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(args.out / "results.csv", buf.getvalue())

    lines = [
        "| file | arch | n_train | seeds | iterations | test AUC mean ± sd | test ACC mean ± sd | skipped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in args.files:
        sel = [r for r in rows if r["file"] == name]
        auc = np.array([r["test_auc"] for r in sel])
        acc = np.array([r["test_acc"] for r in sel])
        lines.append(
            f"| {name} | {args.arch} | {sel[0]['n_train']} | {len(sel)} | {args.iterations} | "
            f"{auc.mean():.3f} ± {_sd(auc):.3f} | {acc.mean():.3f} ± {_sd(acc):.3f} | "
            f"{sel[0]['skipped_labels'] or '-'} |"
        )
    atomic_write_text(
        args.out / "summary.md",
        "# Real-only classifier baseline (full train split)\n\n" + "\n".join(lines) + "\n",
    )
    cmd = " ".join(
        shlex.quote(a)
        for a in [
            Path(sys.executable).name,
            "experiments/baseline_classifier.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    atomic_write_text(args.out / "COMMAND.md", f"Run from the repository root:\n\n```\n{cmd}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Real images only: how far apart are two samples of NIH1000 that share patients, that do not, and train vs
held-out? The numbers behind the report's held-out-anchored headline (docs/report.md).

For each feature space (the trained in-domain extractor, fitted on train and selected on val; a random-init
CNN; raw pixels) it prints, at equal n, the Fréchet distance between two random halves of the training split
(patients shared), two patient-disjoint halves (no patient shared), and the training split vs held-out images
(val + test: other patients), over ``--repeats`` draws.

Usage (from the repository root)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/patient_floor.py --out experiments/results/patient_floor
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from medgan_aug.apps.extractor_fit import load_or_fit_extractor
from medgan_aug.apps.report.instrument import split_images
from medgan_aug.data import MedMNISTDataset
from medgan_aug.metrics.extractor import extractor_features
from medgan_aug.metrics.heldout import heldout_anchored_distances, random_cnn_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--extractor", type=Path, default=Path("/tmp/patient_floor_extractor.pt"))
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits = {s: MedMNISTDataset(sample="nih1000", split=s) for s in ("train", "val", "test")}
    train = split_images(splits["train"])
    heldout = torch.cat([split_images(splits["val"]), split_images(splits["test"])])
    model, _, _ = load_or_fit_extractor(
        args.extractor,
        splits["train"],
        splits["val"],
        arch="small_cnn",
        iterations=1000,
        seed=0,
        progress=False,
    )
    spaces = {
        "extractor": lambda x: extractor_features(model, x),
        "random_cnn": random_cnn_features,
        "pixels": lambda x: x.flatten(1).double().numpy(),
    }
    rows = []
    for name, features in spaces.items():
        f_train, f_held = features(train), features(heldout)
        # the training split stands in for "synthetic" too: its ratio to itself is 1 by construction,
        # what is read here is each floor and the train-vs-held-out distance
        common = dict(repeats=args.repeats, seed=0)
        shared = heldout_anchored_distances(f_held, f_train, f_train, **common)
        disjoint = heldout_anchored_distances(
            f_held, f_train, f_train, train_patients=splits["train"].patients, **common
        )
        fd_shared, fd_disjoint = shared["frechet_distance"], disjoint["frechet_distance"]
        row = {
            "space": name,
            "n_shared": shared["n"],
            "random_halves": fd_shared["floor"],
            "random_halves_sd": fd_shared["floor_std"],
            "n_disjoint": disjoint["n"],
            "patient_disjoint_halves": fd_disjoint["floor"],
            "patient_disjoint_halves_sd": fd_disjoint["floor_std"],
            "train_vs_heldout": fd_disjoint["train"],
            "train_vs_heldout_sd": fd_disjoint["train_std"],
        }
        rows.append(row)
        print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "fd_floors.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)


if __name__ == "__main__":
    main()

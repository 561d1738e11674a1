"""How far can label faithfulness go with a given judge? Its separation of real images, per finding.

Label faithfulness (``medgan_aug.metrics.label_faithfulness``) is the judge's score shift when a finding is
switched on in the generator's label vector. This prints the same judge's shift between held-out *real*
images with and without each finding (``medgan_aug.metrics.real_label_separation``) and its AUC there: a
generator that drew the finding as real images show it would move the score by about this much, so a
faithfulness target above it cannot be met with this judge, however good the generator.

Usage (the recipe ablation's extractor of a round; the extractor file must exist)::

    python experiments/judge_separation.py --extractor runs/extractors/nih1000.pt --dataset nih1000_100 \\
        [--splits val test] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from medgan_aug.apps.extractor_fit import load_or_fit_extractor
from medgan_aug.apps.report.instrument import split_images
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.metrics.faithfulness import real_label_separation

try:  # run as a script from the repository root
    from recipe_ablation import DATASETS, SHARED
except ImportError:  # pragma: no cover - imported as experiments.judge_separation
    from experiments.recipe_ablation import DATASETS, SHARED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extractor", required=True, help="an existing extractor file (never fitted here)")
    ap.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    ap.add_argument("--splits", nargs="+", default=["val"], choices=["val", "test"])
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not Path(args.extractor).is_file():
        raise SystemExit(f"--extractor {args.extractor}: no such file (this script only reads extractors)")
    spec = DATASETS[args.dataset]
    path = str(SHARED / spec["path"])
    splits = {
        k: MedMNISTDataset(flag=spec["flag"], split=k, path=path) for k in ("train", "val", *args.splits)
    }
    model, meta, _ = load_or_fit_extractor(args.extractor, splits["train"], splits["val"])
    rows = []
    for split in args.splits:
        ds = splits[split]
        result = real_label_separation(
            model, split_images(ds), ds.targets, task=str(ds.task), label_names=ds.label_names
        )
        for name, entry in result["per_label"].items():
            rows.append(
                [split, name, entry["n_positive"], len(ds), round(entry["shift"], 4), round(entry["auc"], 3)]
            )
    header = ["split", "finding", "n_positive", "n", "real_shift", "judge_auc"]
    print(f"judge {args.extractor} (selected on val, val AUC {meta.get('selection', {}).get('best_score')})")
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(14) for v in row))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])


if __name__ == "__main__":
    main()

"""The in-domain extractor before (v1: trained to the last step) and after (v2: selected on val AUC).

Prints each extractor's mean AUC on the train, val and test splits of the packaged nih1000 sample. The
test split is read only here, for the reported number; v2's selection reads train and val only.

    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/extractor_selection.py
"""

from __future__ import annotations

import time

from medgan_aug.apps.extractor_fit import fit_feature_extractor
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.metrics.extractor import validation_auc
from medgan_aug.networks.classifiers import build_classifier


def main() -> None:
    splits = {k: MedMNISTDataset(sample="nih1000", split=k) for k in ("train", "val", "test")}
    train = splits["train"]
    t = time.perf_counter()
    v1 = build_classifier("small_cnn", train.num_channels, train.num_labels, train.size, seed=0)
    train_classifier(v1, train, task=train.task, iterations=1000, batch_size=64, lr=1e-3, seed=0)
    v1_seconds = time.perf_counter() - t
    t = time.perf_counter()
    v2, meta = fit_feature_extractor(train, splits["val"], iterations=1000, seed=0)
    v2_seconds = time.perf_counter() - t
    sel = meta["selection"]
    print(
        f"v2 selection: every {sel['every']} steps, patience {sel['patience']}; best step "
        f"{sel['best_iteration']} (val AUC {sel['best_score']:.4f}); stopped at step {sel['history'][-1][0]}"
    )
    print("extractor                        train    val   test  fit_s")
    for name, model, seconds in (
        ("v1 (1000 steps, last state)", v1, v1_seconds),
        (f"v2 (val-selected, step {meta['train_iterations']})", v2, v2_seconds),
    ):
        aucs = [validation_auc(model, splits[k]) for k in ("train", "val", "test")]
        print(f"{name:32s} " + " ".join(f"{a:.4f}" for a in aucs) + f" {seconds:6.1f}")


if __name__ == "__main__":
    main()

"""Study results: ``results.csv``, ``summary.md`` and figures, rebuilt from the per-run files.

The summary reports, per fraction, each condition's AUC and ACC (mean ± sd over study seeds), and the
comparisons of :mod:`medgan_aug.apps.study.comparisons`: ΔAUC against ``real`` and against the
shuffled-label placebo, per study seed and pooled, with two-level bootstrap intervals (study seeds, then test
images), the images-only interval and a paired t-interval beside them. The declared primary comparison gets
a verdict at 95%; every other comparison is exploratory, with Holm-adjusted p-values.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from medgan_aug.apps.study.comparison_tables import (
    comparison_lines,
    primary_lines,
    reading_note,
    variance_lines,
)
from medgan_aug.apps.study.comparisons import (
    classifier_seed_of,
    compare_conditions,
    study_cells,
    variance_table,
    verdict,
)
from medgan_aug.apps.study.config import expand_grid, run_key, study_lock
from medgan_aug.apps.study.figures import plot_study
from medgan_aug.utils.atomic import atomic_path, atomic_write_text
from medgan_aug.utils.locks import work_lock

__all__ = [
    "BASE_COLUMNS",
    "gan_evaluation",
    "collect_runs",
    "pool_of",
    "write_results_csv",
    "condition_table",
    "compare_to_real",
    "PROTOCOL",
    "generator_table",
    "write_summary",
    "summarise_runs",
    "GAN_EVALUATIONS_FILE",
]


logger = logging.getLogger("medgan_aug.apps.study")


BASE_COLUMNS = [
    "key",
    "study",
    "data_file",
    "flag",
    "task",
    "image_size",
    "fraction",
    "n_train",
    "seed",
    "classifier_seed",
    "condition",
    "classifier",
    "synthetic_ratio",
    "classical",
    "auc",
    "acc",
    "skipped_labels",
    "n_test",
    "classifier_iterations",
    "classifier_batch_size",
    "classifier_seconds",
    "device",
    "gan_dir",
    "gan_iterations",
    "gan_seconds",
    "num_synthetic",
    "gan_fd",
    "gan_fd_floor",
    "gan_fd_heldout",
    "gan_kid",
    "gan_kid_floor",
    "gan_precision",
    "gan_recall",
    "gan_coverage",
    "gan_conditional_auc",
    "gan_memorized_share",
    "gan_memorized_share_heldout",
]


#: Evaluation numbers of a study's GANs by their folder, for a study rebuilt from an archive without its GAN
#: folders (:mod:`medgan_aug.apps.study.archive`).
GAN_EVALUATIONS_FILE = "gan_evaluations.json"


def gan_evaluation(out: Path, gan_dir: str | None) -> dict[str, float]:
    """The generator's evaluation numbers for a run's GAN (empty when it has none or was not evaluated):
    from its ``metrics.json``, else from ``out/gan_evaluations.json`` where a rebuilt study keeps them."""
    path = out / gan_dir / "metrics.json" if gan_dir else None
    if path is None or not path.is_file():
        kept = out / GAN_EVALUATIONS_FILE
        return json.loads(kept.read_text()).get(gan_dir, {}) if gan_dir and kept.is_file() else {}
    metrics = json.loads(path.read_text())
    distances, pixel = metrics["distances"], metrics["memorization"]["pixel"]
    return {
        "gan_fd": distances["frechet_distance"]["value"],
        "gan_fd_floor": distances["frechet_distance"]["floor"],
        "gan_fd_heldout": distances["frechet_distance"]["heldout"],
        "gan_kid": distances["kid"]["value"],
        "gan_kid_floor": distances["kid"]["floor"],
        "gan_precision": distances["precision"]["value"],
        "gan_recall": distances["recall"]["value"],
        "gan_coverage": distances["coverage"]["value"],
        "gan_conditional_auc": (metrics.get("conditional_fidelity") or {}).get("auc"),
        "gan_memorized_share": pixel["share_flagged"],
        "gan_memorized_share_heldout": pixel["heldout_share_flagged"],
    }


def collect_runs(out: str | os.PathLike, keys: set[str] | None = None) -> list[dict[str, Any]]:
    """Finished runs' records in ``out/runs`` (only ``keys`` if given), by fraction, seed, classifier seed,
    condition, classifier."""
    rows = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        if keys is not None and path.stem not in keys:
            continue
        try:
            rows.append(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(
                f"run record {path} is not valid JSON ({err}); delete it to rerun that run"
            ) from err
    return sorted(
        rows, key=lambda r: (r["fraction"], r["seed"], classifier_seed_of(r), r["condition"], r["classifier"])
    )


def pool_of(row: dict[str, Any]) -> str | None:
    """The pool the generator of a run record or ``results.csv`` row trained on (``labelled``, ``train`` or a
    pool file's name); None (or empty) for a run without a generator. Records and tables written before
    pools existed have no ``pool``: their generators trained on the labelled subset."""
    if "pool" in row:
        return row["pool"] or None
    return "labelled" if row.get("gan_dir") else None


#: Columns after ``classical`` in tables of runs that record them: the labels of the generated images
#: (``conditional`` or ``teacher``), the share of pseudo-labelled real rows, and the synthetic pretraining steps.
_TEACHER_COLUMNS = ("synthetic_labels", "pseudo_ratio", "synthetic_pretrain_iterations")


def write_results_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """One row per run: every setting, AUC/ACC, per-finding AUC (``auc_<finding>``, empty if skipped),
    timings, and the generator's evaluation numbers (``gan_*``). ``pool`` (after ``gan_dir``: the images the
    generator trained on, :func:`pool_of`) and :data:`_TEACHER_COLUMNS` (after ``classical``) are columns where
    a record carries them (every run written since they exist)."""
    labels: list[str] = []
    for row in rows:
        labels += [name for name in row["label_names"] if name not in labels]
    columns = BASE_COLUMNS + [f"auc_{name}" for name in labels]
    if any("pool" in row for row in rows):  # records written before pools existed rebuild their old table
        columns.insert(columns.index("gan_dir") + 1, "pool")
    # the teacher and pretraining settings, where a record carries them (runs written since they exist)
    extra = [name for name in _TEACHER_COLUMNS if any(name in row for row in rows)]
    columns[columns.index("classical") + 1 : columns.index("classical") + 1] = extra
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(
                row,
                skipped_labels=";".join(row["skipped_labels"]),
                classifier_seed=classifier_seed_of(row),
                pool=pool_of(row),
            )
            if row["synthetic_ratio"] > 0 or row.get("synthetic_pretrain_iterations", 0) > 0:
                flat.update(gan_evaluation(path.parent, row["gan_dir"]))
            else:  # a run without synthetic images has no generator, whatever its group trained
                flat.update(
                    gan_dir=None,
                    gan_seconds=None,
                    gan_iterations=None,
                    num_synthetic=0,
                    pool=None,
                    synthetic_labels=None,
                )
            flat.update({f"auc_{name}": value for name, value in row["per_label_auc"].items()})
            writer.writerow(flat)


def condition_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (fraction, condition, classifier): AUC/ACC mean ± sd over study seeds (each study seed's
    classifier seeds averaged first), and the numbers of study and classifier seeds."""
    table = []
    for (fraction, condition, classifier), by_seed in sorted(study_cells(rows).items()):
        runs = [list(by_classifier_seed.values()) for _, by_classifier_seed in sorted(by_seed.items())]
        aucs = np.array([np.mean([r["auc"] for r in seed_runs]) for seed_runs in runs])
        accs = np.array([np.mean([r["acc"] for r in seed_runs]) for seed_runs in runs])
        table.append(
            {
                "fraction": fraction,
                "condition": condition,
                "classifier": classifier,
                "n_seeds": len(runs),
                "n_classifier_seeds": sorted({len(seed_runs) for seed_runs in runs}),
                "n_train": runs[0][0]["n_train"],
                "auc_mean": aucs.mean(),
                "auc_sd": aucs.std(ddof=1) if len(aucs) > 1 else float("nan"),
                "acc_mean": accs.mean(),
                "acc_sd": accs.std(ddof=1) if len(accs) > 1 else float("nan"),
            }
        )
    return table


def compare_to_real(
    out: str | os.PathLike, rows: list[dict[str, Any]], n_boot: int = 1000
) -> list[dict[str, Any]]:
    """:func:`condition_table` with each condition's ΔAUC vs ``real``: ``delta``, its two-level 95% interval
    (``ci_low``, ``ci_high``: study seeds and test images resampled), ``paired_seeds`` and ``verdict`` (read
    from the unadjusted interval; see :func:`medgan_aug.apps.study.comparisons.compare_conditions` for the
    Holm-adjusted reading)."""
    found = {
        (e["fraction"], e["condition"], e["classifier"]): e
        for e in compare_conditions(out, rows, n_boot=n_boot)["comparisons"]
        if e["kind"] == "vs real"
    }
    table = condition_table(rows)
    for entry in table:
        vs_real = found.get((entry["fraction"], entry["condition"], entry["classifier"]))
        if vs_real is not None:
            entry.update(
                delta=vs_real["delta"],
                ci_low=vs_real["ci_low"],
                ci_high=vs_real["ci_high"],
                paired_seeds=len(vs_real["seeds"]),
                verdict=verdict(vs_real["ci_low"], vs_real["ci_high"]),
            )
    return table


def _fmt(mean: float, sd: float) -> str:
    return f"{mean:.3f}" if np.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


PROTOCOL = """\
## Protocol

- Training subsets: `low_data_indices(train labels, fraction, seed)` — nested across fractions for a
  seed, stratified over the findings.
- GAN: one per (fraction, seed), trained only on that subset; synthetic labels are resampled from that
  subset's label vectors. Synthetic images enter classifier batches through `MixSyntheticd`
  (mode `replace`: the batch size and the number of steps are the same in every condition). In
  `+classical` conditions the classical augmentation is applied to the real rows only.
- Classifier: same architecture, initialisation seed, budget and batch order in every condition; fixed
  budget, no early stopping, no model selection: the validation split takes no part in the classifier
  numbers, and the test split is scored once per run.
- ΔAUC is paired on the same test images: per study seed (subset, GAN, classifier), AUC(condition) −
  AUC(baseline), the classifier seeds of a study seed averaged; the pooled ΔAUC is the mean over study
  seeds. Its 95% interval is a two-level bootstrap: study seeds with replacement, then test images, one
  resample shared by the drawn seeds, both arms on the same images (Davison & Hinkley 1997, §3.8; Owen
  2007), so it covers the training variance between seeds as well as the test images. Where the data file
  gives the test images' patients, the test level resamples patients, each with all of its images (Field &
  Welsh 2007): images of one patient are not independent. The tables say which. The images-only
  interval (seeds fixed) and a paired t-interval over the per-seed ΔAUC sit beside it; with one study seed
  the two bootstrap intervals coincide and cover test images only.
- One comparison is declared in the config before the results (`primary`) and gets a verdict at 95%; every
  other comparison is exploratory, with Holm-adjusted p-values. Each comparison gives the smallest true ΔAUC
  it would detect with 80% power (two-sided paired t at 5% over the per-seed ΔAUC: its sd and number of
  seeds), so a "no detectable difference" says what could have been detected. A gain counts as label
  information only where `real+synthetic@R` beats `real+shuffled@R` (same generated images, labels permuted).
- Generator evaluation (the Generators table) is a diagnostic beside the study, not part of it: its
  in-domain feature extractor is trained on the full real training split, and held-out real images
  (val+test) serve as its reference. None of it feeds GAN or classifier training.
"""


_GAN_ON_SUBSET = """- GAN: one per (fraction, seed), trained only on that subset; synthetic labels are resampled from that
  subset's label vectors."""


def protocol_text(rows: list[dict[str, Any]]) -> str:
    """The Protocol section for these runs: :data:`PROTOCOL`, with the GAN bullet rewritten and bullets added
    where a generator trained on a pool, a teacher labelled images or a condition pretrained on generated
    images (studies with none of these keep :data:`PROTOCOL` byte for byte)."""
    pools = sorted({pool for row in rows if (pool := pool_of(row)) not in (None, "", "labelled")})
    teacher = any(row.get("synthetic_labels") == "teacher" or row.get("pseudo_ratio", 0) > 0 for row in rows)
    pretrain = any(row.get("synthetic_pretrain_iterations", 0) > 0 for row in rows)
    text = PROTOCOL
    if pools and shared_generator(rows):
        named = ", ".join(f"`{pool}`" for pool in pools)
        text = text.replace(_GAN_ON_SUBSET, _bullet(
            f"Generator: one for every (fraction, seed) group (`shared_gan`), unconditional, trained once on the "
            f"pool {named} (`train`: every training-split image, no labels; val and test images never); its "
            "images are drawn once (seed 0) and are the same in every group, labelled per run by the cell's "
            "teacher. The intervals below cover the subsets, teachers, classifiers and test images, not the "
            "variation between generator trainings: they measure this one generator."
        ))  # fmt: skip
    elif pools:
        named = ", ".join(f"`{pool}`" for pool in pools)
        text = text.replace(_GAN_ON_SUBSET, _bullet(
            f"GAN: one per (fraction, seed), trained on the pool {named} (`train`: every training-split image; "
            "val and test images never), with labels from that subset only: a conditional GAN is semi-supervised "
            "(AC-GAN loss and projection on the subset's images only; Odena et al. 2017, Salimans et al. 2016); "
            "its conditioning labels are resampled from the subset's label vectors."
        ))  # fmt: skip
    extra = []
    if teacher:
        extra.append(_bullet(
            "Teacher: the `real` arm's classifier of the same (fraction, seed, classifier seed), trained exactly "
            "as `real` (no selection on val); its soft scores, never rounded, label the generated images where "
            "`synthetic: {labels: teacher}` and, in `real+pseudo@R`, the real training images outside the "
            "subset (pseudo-labelling, Lee 2013). No arm sees more labels than `real`."
        ))  # fmt: skip
    if pretrain:
        extra.append(_bullet(
            "`synthetic-pretrain[@N]+real`: N steps on generated images only, then exactly the `real` arm's "
            "steps and batches (optimiser reset)."
        ))  # fmt: skip
    if extra:
        text = text.replace(
            "- Classifier: same architecture", "\n".join(extra) + "\n- Classifier: same architecture"
        )
    return text


def shared_generator(rows: list[dict[str, Any]]) -> bool:
    """Whether the runs with generated images of several (fraction, seed) groups all drew them from one
    generator folder (a study with ``shared_gan``), read from the records themselves."""
    with_gan = [row for row in rows if row.get("gan_dir")]
    groups = {(row.get("fraction"), row.get("seed")) for row in with_gan}
    return len(groups) > 1 and len({row["gan_dir"] for row in with_gan}) == 1


def _bullet(sentence: str) -> str:
    return textwrap.fill(sentence, width=108, initial_indent="- ", subsequent_indent="  ")


def generator_table(out: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: the generators' evaluation per fraction (mean over the seeds' GANs)."""
    by_fraction: dict[float, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        pretrained = row.get("synthetic_pretrain_iterations", 0) > 0
        numbers = gan_evaluation(out, row["gan_dir"]) if row["synthetic_ratio"] > 0 or pretrained else {}
        if numbers:
            by_fraction[row["fraction"]][row["gan_dir"]] = numbers
    if not by_fraction:
        return []
    lines = [
        "## Generators (in-domain features, not Inception; mean over the seeds' GANs)",
        "",
        "| fraction | GANs | FD (floor / held-out real) | precision | recall | conditional AUC | memorized (held-out real) |",
        "|---|---|---|---|---|---|---|",
    ]

    def mean(gans: dict[str, dict], name: str) -> float:
        values = [g[name] for g in gans.values() if g.get(name) is not None]
        return float(np.mean(values)) if values else float("nan")

    for fraction, gans in sorted(by_fraction.items()):
        lines.append(
            f"| {fraction:g} | {len(gans)} | {mean(gans, 'gan_fd'):.1f} ({mean(gans, 'gan_fd_floor'):.1f} / "
            f"{mean(gans, 'gan_fd_heldout'):.1f}) | {mean(gans, 'gan_precision'):.2f} | {mean(gans, 'gan_recall'):.2f} | "
            f"{mean(gans, 'gan_conditional_auc'):.2f} | {mean(gans, 'gan_memorized_share'):.1%} "
            f"({mean(gans, 'gan_memorized_share_heldout'):.1%}) |"
        )
    lines += [
        "",
        "FD: Fréchet distance to half of the real training split; floor: the other half; held-out real: val+test.",
        "Memorized: share of generated images closer to a GAN-training image than the 1st percentile of",
        "held-out-real-to-training distances (`medgan_aug.metrics.memorization`).",
        "",
    ]
    return lines


def write_summary(config: Any, out: str | os.PathLike) -> Path:
    """Write ``results.csv``, ``summary.md`` and the figures for the finished runs of ``config``'s grid.

    Runs in ``out`` from another config (other budgets, data or conditions) are left out and counted in a
    log line, so a changed config never pairs its runs with stale ones.

    Processes that share ``out`` write one at a time (the ``summary`` lock, :func:`study_lock`), each from
    the runs finished when it starts: every process finishes its own runs before it writes, so the last
    writer's files hold every run of every process, and no earlier writer's files land after them.
    """

    with work_lock(study_lock(out, "summary"), wait=True):
        return _write_summary(config, Path(out))


def _write_summary(config: Any, out: Path) -> Path:
    keys = {run_key(config, run) for run in expand_grid(config)}
    rows = collect_runs(out, keys)
    foreign = len(list((out / "runs").glob("*.json"))) - len(rows) if (out / "runs").is_dir() else 0
    if foreign:
        logger.info("summary of %s: left out %d runs of other configs found in %s", config.name, foreign, out)
    return summarise_runs(config, out, rows)


def summarise_runs(config: Any, out: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``results.csv``, ``summary.md`` and the figures of the finished runs ``rows`` (scores read from
    ``out/scores``); ``config`` gives the study's name, GAN budget, bootstrap and primary comparison."""
    if not rows:
        raise ValueError(f"no finished runs of study {config.name!r} in {out / 'runs'}: nothing to summarise")
    write_results_csv(rows, out / "results.csv")
    n_boot = int((config.bootstrap or {}).get("n_boot", 1000))
    table = condition_table(rows)
    result = compare_conditions(out, rows, n_boot=n_boot, primary=getattr(config, "primary", None))
    comparisons, primary = result["comparisons"], result["primary"]
    first = rows[0]
    lines = [
        f"# Study `{config.name}` on {first['data_file']} ({first['flag']}, {first['image_size']} px)",
        "",
        f"{len(rows)} runs; test images: {first['n_test']}; classifier budget: "
        f"{first['classifier_iterations']} iterations of batch {first['classifier_batch_size']}; "
        f"GAN budget: {config.gan.get('iterations', 'default')} iterations.",
        "",
        protocol_text(rows),
    ]
    lines += primary_lines(primary)
    lines += reading_note(comparisons, sorted({row["condition"] for row in rows}))
    for fraction in sorted({e["fraction"] for e in table}):
        entries = [e for e in table if e["fraction"] == fraction]
        lines += [
            f"## Fraction {fraction:g} ({entries[0]['n_train']} training images)",
            "",
            "| condition | classifier | seeds | AUC (mean ± sd over study seeds) | ACC |",
            "|---|---|---|---|---|",
        ]
        for e in entries:
            seeds = str(e["n_seeds"])
            if e["n_classifier_seeds"] != [1]:
                seeds += " x " + "/".join(map(str, e["n_classifier_seeds"]))
            lines.append(
                f"| {e['condition']} | {e['classifier']} | {seeds} | {_fmt(e['auc_mean'], e['auc_sd'])} "
                f"| {_fmt(e['acc_mean'], e['acc_sd'])} |"
            )
        lines.append("")
        lines += comparison_lines([c for c in comparisons if c["fraction"] == fraction], primary)
    lines += variance_lines(variance_table(rows))
    lines += generator_table(out, rows)
    skipped = sorted({name for row in rows for name in row["skipped_labels"]})
    if skipped:
        lines += [
            f"Findings without both classes in the test split (no AUC, left out of the mean): {', '.join(skipped)}.",
            "",
        ]
    lines += ["Figures: `auc_vs_fraction.png`, `delta_auc_vs_fraction.png`.", ""]
    summary = atomic_write_text(out / "summary.md", "\n".join(lines))
    plot_study(table, out, comparisons=comparisons)
    return summary

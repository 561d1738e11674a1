"""Diffusion vs DCGAN at equal 1-thread CPU minutes (issue 22): the equal-minutes table and the FD-vs-DDIM-steps
curve, each one command.

Both families are trained by the package (:func:`medgan_aug.apps.train.train_gan`): the DCGAN at its default
recipe (``GANConfig`` defaults: ADA + AC-GAN, bf16/channels-last where native) and the diffusion generator
(``model="ddpm"``: MONAI's ``DiffusionModelUNet`` trained as a DDPM, Ho et al. 2020, sampled with DDIM, Song et
al. 2021, classifier-free guidance, Ho & Salimans 2022) at its default settings; both **conditional** (label
faithfulness and the synthetic-only AUC need labels), batch 64, constant learning rate, seed 0, subset seed 0.
A budget of M minutes is ``round(M * 60 / s)`` iterations, ``s`` the family's seconds per iteration in the
calibration file (1 torch thread, measured by ``calibrate`` side by side on one quiet machine). The longer
budget continues the shorter one's run (its folder is copied, then resumed with more iterations: with a
constant learning rate the result equals a run trained to the longer count directly,
:func:`medgan_aug.apps.train_resume.check_iterations`), so 15 + 60 minutes cost 60, not 75. The iteration
counts are fixed by the calibration, so the same command on a GPU trains the same runs (faster), in the
precision the calibration recorded.

Subcommands:

- ``calibrate --out FILE``: seconds per iteration of each family at 1 thread (fastest of interleaved rounds);
  run it on a quiet machine, or the budgets come out too small.
- ``train``: every (data set, family, minutes) into ``<runs>/<data set>/<family>/<M>min/`` (resumable: a
  finished run is skipped, an interrupted one continues from its last checkpoint).
- ``evaluate``: ``medgan-aug report`` (:func:`medgan_aug.apps.report.write_report`) on every finished run,
  plus a train-on-synthetic / test-on-real AUC (TSTR: a small CNN trained on the generated images only,
  scored on ``--heldout``, val by default), one row per run in ``<out>/equal_minutes.csv`` (rows already
  there are skipped; each report's metrics.json is kept under ``<out>/reports/``).
- ``steps``: one diffusion run's held-out-anchored FD ratio (trained features), label shift and sampling
  images/s at each DDIM step count and guidance scale (``--guidance``; default the run's own), anchored on val
  (``--anchor val``, the default: sampling settings are chosen without reading test) or on val + test as the
  report is: rows merged into ``<out>/fd_vs_steps.csv`` (a steps sweep and a guidance sweep share it), the
  run's curve in ``<out>/fd_vs_steps.png``.
- ``table``: ``<out>/equal_minutes.md`` from the two CSVs.

The report's held-out anchor is val + test (patients outside the training split; the report has no flag to
anchor on val alone), against the whole real training split; ``--heldout`` picks the TSTR split.

Full-size commands (from the repository root; ``calibrate`` on a quiet machine). Expected cost at 1 thread,
from issue 22's measurements (ddpm ~0.8 s per training step in bf16, ~2.3 s in fp32; dcgan ~0.06-0.08 s per
iteration) and a DDIM sampling cost of roughly 5 ms per image per UNet pass (an estimate from the training step;
14 ms was measured here with the 2 cores over-subscribed), 2 passes per step with guidance:

- ``calibrate``: under a minute (3 rounds x 20 iterations of each family).
- ``train``: 60 minutes per (data set, family) (the 15-minute run is on the way), 3 x 2 x 60 min = 6 hours of
  CPU, plus data loading and each run's final 16-image grid (seconds); two processes with disjoint
  ``--datasets`` can share a 2-core machine. About 1,150 (bf16) or 390 (fp32) ddpm steps per 15 minutes.
- ``evaluate``: dominated by the ddpm reports' DDIM sampling at 50 steps: NIH1000 (14 findings; label
  faithfulness alone is 2 x 14 x 256 images) about 8,600 images, ~70 min per run, plus ~9 min for the TSTR
  images; PneumoniaMNIST about 1,800 images, ~25 min per run with TSTR; each DCGAN report a few minutes (the
  first per data file also fits its extractor, ~1,000 steps). About 4-5 hours in all; ``--sampling-steps 25``
  halves the ddpm part (and changes its images).
- ``steps``: 1,024 images (whole chunks of 256) x (10 + 25 + 50 + 100) steps x 2 passes, about 30 minutes.
- ``table``: a second.

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/diffusion_vs_dcgan.py calibrate \\
        --out experiments/results/diffusion_vs_dcgan/calibration.json
    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/diffusion_vs_dcgan.py train --runs /work/dvd/runs \\
        --calibration experiments/results/diffusion_vs_dcgan/calibration.json \\
        --datasets pneumonia_100 pneumonia_10 nih1000_100 --minutes 15 60 --threads 1 --device cpu
    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/diffusion_vs_dcgan.py evaluate --runs /work/dvd/runs \\
        --out experiments/results/diffusion_vs_dcgan --num 1000 --threads 1
    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/diffusion_vs_dcgan.py steps \\
        --run /work/dvd/runs/pneumonia_100/ddpm/60min --steps 10 25 50 100 \\
        --out experiments/results/diffusion_vs_dcgan --num 1000 --threads 1
    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/diffusion_vs_dcgan.py steps \\
        --run /work/dvd/runs/pneumonia_100/ddpm/60min --steps 25 --guidance 0 1 3 \\
        --out experiments/results/diffusion_vs_dcgan --num 1000 --threads 1
    PYTHONPATH=. python experiments/diffusion_vs_dcgan.py table --out experiments/results/diffusion_vs_dcgan

On a lent GPU: ``--device cuda --threads 1`` on ``train``, ``evaluate`` and ``steps`` (same iteration counts;
the recorded training seconds are then the GPU's).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
#: the real data folder: $MEDGAN_AUG_DATA as in the tests, else ../shared/data beside the repository
DATA_DIR = Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data"))

FAMILIES = ("dcgan", "ddpm")
#: the data sets of issue 22: file (None: the package's NIH1000 sample, identical to the shared 28 px file),
#: MedMNIST flag and low-data fraction (subset seed 0)
DATASETS: dict[str, dict[str, Any]] = {
    "pneumonia_100": dict(file="pneumoniamnist_union.npz", flag="pneumoniamnist", fraction=1.0),
    "pneumonia_10": dict(file="pneumoniamnist_union.npz", flag="pneumoniamnist", fraction=0.1),
    "nih1000_100": dict(file=None, flag="chestmnist", fraction=1.0),
}
#: settings both families share (the rest are each family's GANConfig defaults). Sample grids: only the one
#: every run saves at its last iteration, of 16 images (a ddpm grid is DDIM sampling, 16 x 50 steps x 2 UNet
#: passes, a few seconds inside the recorded training time; the default 64 would cost about half a minute)
COMMON = dict(
    conditional=True, batch_size=64, seed=0, subset_seed=0, sample_every=10**6, n_samples=16, progress=False
)
FAMILY_SETTINGS: dict[str, dict[str, Any]] = {"dcgan": {}, "ddpm": {"model": "ddpm"}}
#: files ``medgan-aug report`` writes into a run folder: not copied when a longer budget continues a run
REPORT_OUTPUTS = (
    "metrics.json", "report.html", "real_vs_synthetic.png", "progression.png", "progression.gif",
    "losses.png", "per_finding.png", "memorization_pairs.png", "memorization_hist.png",
)  # fmt: skip


class InputError(ValueError):
    """A bad argument or input file: ``main`` prints its one-line message and exits."""


# -- budgets and calibration -----------------------------------------------------------------------
def budget_iterations(minutes: float, seconds_per_iteration: float) -> int:
    """Iterations that take ``minutes`` at ``seconds_per_iteration`` (at least 1)."""
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0):
        raise InputError(f"--minutes must be positive numbers, got {minutes!r}")
    return max(1, int(round(minutes * 60.0 / seconds_per_iteration)))


def load_calibration(path: Path) -> dict[str, Any]:
    """The calibration JSON at ``path``, checked: ``seconds_per_iteration`` holds a positive finite number for
    each family; ``precision`` (optional) a known precision per family.

    Raises:
        InputError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--calibration {path} does not exist (write one with the calibrate subcommand)")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"--calibration {path} is not valid JSON: {err}") from err
    seconds = data.get("seconds_per_iteration") if isinstance(data, dict) else None
    if not isinstance(seconds, dict):
        raise InputError(f"--calibration {path} has no 'seconds_per_iteration' object ({{family: seconds}})")
    for family in FAMILIES:
        value = seconds.get(family)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise InputError(
                f"--calibration {path}: seconds_per_iteration[{family!r}] must be a positive number, got {value!r}"
            )
    precision = data.get("precision", {})
    if not isinstance(precision, dict) or any(
        precision.get(f, "auto") not in ("auto", "bf16", "fp32") for f in FAMILIES
    ):
        raise InputError(f"--calibration {path}: 'precision' must map families to auto, bf16 or fp32")
    return data


def check_datasets(names: Sequence[str], data_dir: Path) -> None:
    """Every name is a known data set whose file is present.

    Raises:
        InputError: one line naming the unknown data set or the missing file."""
    for name in names:
        if name not in DATASETS:
            raise InputError(f"--datasets: unknown data set {name!r} (known: {', '.join(DATASETS)})")
        file = DATASETS[name]["file"]
        if file is not None and not (Path(data_dir) / file).is_file():
            raise InputError(
                f"data set {name}: {Path(data_dir) / file} not found (set --data or MEDGAN_AUG_DATA)"
            )


def run_config(
    dataset: str,
    family: str,
    out: Path,
    iterations: int,
    *,
    data_dir: Path,
    precision: str = "auto",
    resume: bool = False,
    device: str = "cpu",
    threads: int | None = 1,
    checkpoint_every: int = 500,
    **overrides: Any,
) -> Any:
    """The :class:`GANConfig` of one run (``overrides``: tests' tiny networks)."""
    from medgan_aug.apps.train_config import GANConfig

    spec = DATASETS[dataset]
    data: dict[str, Any] = dict(flag=spec["flag"], fraction=spec["fraction"])
    if spec["file"] is None:
        data["sample"] = "nih1000"
    else:
        data["path"] = str(Path(data_dir) / spec["file"])
    settings = {**COMMON, **FAMILY_SETTINGS[family], "precision": precision, **overrides}
    return GANConfig(
        **settings,
        **data,
        iterations=iterations,
        out=str(out),
        resume=resume,
        device=device,
        threads=threads,
        checkpoint_every=checkpoint_every,
    )


def calibrate(out: Path, *, iterations: int = 20, rounds: int = 3, dataset: str = "nih1000_100",
              data_dir: Path = DATA_DIR, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """Seconds per training iteration of each family at 1 torch thread: the fastest of ``rounds`` rounds, each
    timing ``iterations`` iterations of every family in a shuffled order (interleaved, so load from other
    processes hits both alike; the fastest round, since interference only slows a round down). Handlers
    (checkpoints, loss log) are not timed: at a 500-iteration checkpoint period they cost well under 1%.

    Run it on a quiet machine: every budget is ``minutes * 60 / seconds``, so a busy machine makes all
    budgets too small. Writes ``out`` (JSON: seconds_per_iteration, precision, machine) and returns it."""
    from medgan_aug.apps.train import build_gan_trainer, load_gan_subset
    from medgan_aug.apps.train_diffusion import build_diffusion_trainer

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainers = {}
        for family in FAMILIES:
            config = run_config(dataset, family, Path(out).parent / "unused", iterations + 1,
                                data_dir=data_dir, **(overrides or {}).get(family, {}))  # fmt: skip
            build = build_diffusion_trainer if family == "ddpm" else build_gan_trainer
            trainers[family] = build(config, load_gan_subset(config))
        times: dict[str, list[float]] = {f: [] for f in FAMILIES}
        order = np.random.default_rng(0)
        for _ in range(rounds):
            for family in order.permutation(list(FAMILIES)):
                trainer = trainers[family]
                data = trainer.batches.batch(0)
                trainer.state.iteration = 1
                trainer._iteration(trainer, data)  # warm-up (allocations)
                started = time.perf_counter()
                for _ in range(iterations):
                    trainer._iteration(trainer, data)
                times[family].append((time.perf_counter() - started) / iterations)
    finally:
        torch.set_num_threads(previous)
    result = {
        "seconds_per_iteration": {f: float(np.min(v)) for f, v in times.items()},
        "all_rounds": times,
        "precision": {f: t.precision for f, t in trainers.items()},
        "threads": 1,
        "iterations_per_round": iterations,
        "rounds": rounds,
        "batch_size": COMMON["batch_size"],
        "dataset": dataset,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


# -- train -----------------------------------------------------------------------------------------
def run_dir(runs: Path, dataset: str, family: str, minutes: float) -> Path:
    return Path(runs) / dataset / family / f"{minutes:g}min"


def finished_iterations(run: Path) -> int | None:
    """The iteration count of a finished run in ``run`` (its generator.pt and recorded training time), else
    None."""
    record = run / "config.json"
    if not (run / "generator.pt").is_file() or not record.is_file():
        return None
    saved = json.loads(record.read_text())
    if "training_seconds" not in saved:
        return None
    return int(saved["config"]["iterations"])


def _continued_from(runs: Path, dataset: str, family: str, iterations: int) -> Path | None:
    """The finished run of this (data set, family) with the most iterations below ``iterations`` (None: none)."""
    best: tuple[int, Path] | None = None
    for folder in (Path(runs) / dataset / family).glob("*min"):
        done = finished_iterations(folder)
        if done is not None and done < iterations and (best is None or done > best[0]):
            best = (done, folder)
    return None if best is None else best[1]


def _copy_run(source: Path, target: Path) -> None:
    """Copy the run folder ``source`` to ``target`` (via a temporary name: a killed copy leaves no run),
    without the report's files."""
    partial = target.with_name(target.name + ".copying")
    if partial.exists():
        shutil.rmtree(partial)  # our own half-finished copy
    shutil.copytree(source, partial, ignore=lambda d, names: [n for n in names if Path(d) == source
                                                                and n in REPORT_OUTPUTS])  # fmt: skip
    os.replace(partial, target)


def train_run(
    runs: Path,
    dataset: str,
    family: str,
    minutes: float,
    calibration: dict[str, Any],
    **settings: Any,
) -> dict[str, Any]:
    """Train one (data set, family) to the ``minutes`` budget in ``<runs>/<data set>/<family>/<M>min/``,
    continuing the longest shorter finished budget of the same cell (copied, then extended); skipped when
    already finished. ``settings``: :func:`run_config`'s keywords. Returns what was done."""
    from medgan_aug.apps.train import train_gan

    iterations = budget_iterations(minutes, calibration["seconds_per_iteration"][family])
    precision = calibration.get("precision", {}).get(family, "auto")
    run = run_dir(runs, dataset, family, minutes)
    done = finished_iterations(run)
    if done is not None:
        if done != iterations:
            raise InputError(
                f"{run} was trained to {done} iterations but the calibration gives {iterations} for "
                f"{minutes:g} min: use another --runs (or the calibration it was trained with)"
            )
        return {"run": run, "iterations": iterations, "status": "done before", "from": None}
    source = None
    if not (run / "config.json").is_file():
        source = _continued_from(runs, dataset, family, iterations)
        if source is not None:
            _copy_run(source, run)
    resume = (run / "config.json").is_file()
    config = run_config(dataset, family, run, iterations, precision=precision, resume=resume, **settings)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resume's notes (generator set aside, batch capped)
        train_gan(config)
    record = json.loads((run / "config.json").read_text())
    return {
        "run": run,
        "iterations": iterations,
        "status": "trained",
        "from": source,
        "session_seconds": time.perf_counter() - started,
        "training_seconds": record["training_seconds"],
        "precision": record.get("precision_used"),
    }


def train(args: argparse.Namespace) -> None:
    calibration = load_calibration(args.calibration)
    check_datasets(args.datasets, args.data)
    for dataset in args.datasets:
        for family in args.families:
            for minutes in sorted(args.minutes):
                result = train_run(args.runs, dataset, family, minutes, calibration, data_dir=args.data,
                                   device=args.device, threads=args.threads,
                                   checkpoint_every=args.checkpoint_every)  # fmt: skip
                stamp = time.strftime("%H:%M:%S", time.gmtime())
                line = f"{stamp} {dataset}/{family} {minutes:g} min: {result['iterations']} it, {result['status']}"
                if result["status"] == "trained":
                    line += (
                        f" ({result['training_seconds']:.0f} s training in all, "
                        f"{result['session_seconds']:.0f} s now, {result['precision']}"
                        + (f", continued from {result['from'].name}" if result["from"] else "")
                        + ")"
                    )
                print(line, flush=True)


# -- evaluate --------------------------------------------------------------------------------------
COLUMNS = (
    "dataset", "family", "minutes", "iterations", "training_seconds", "precision", "batch_size",
    "train_images_per_s", "anchor", "anchor_n", "floor_kind",
    "fd_ratio_trained", "fd_ratio_trained_std", "fd_ratio_neutral", "fd_ratio_neutral_std",
    "fd_synthetic_trained", "fd_train_trained", "fd_floor_trained",
    "precision_trained", "recall_trained", "precision_real_trained", "recall_real_trained",
    "precision_neutral", "recall_neutral",
    "tstr_auc", "real_only_auc", "tstr_split", "tstr_iterations",
    "faithfulness_shift", "faithfulness_auc", "faithfulness_real_shift",
    "memorized_share", "memorized_share_heldout", "memorized_share_feature",
    "ddim_steps", "guidance_scale", "sampling_images", "sampling_seconds", "sampling_images_per_s",
    "num_samples", "extractor_val_auc", "eval_seconds",
)  # fmt: skip
#: what each column means (equal_minutes.md repeats it)
SPACE_NAMES = {"trained": "extractor", "neutral": "random_cnn"}


def metrics_row(metrics: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The report's numbers of one run (its ``metrics.json`` and ``config.json``) as equal_minutes.csv
    columns; TSTR and the row's identity are added by the caller."""
    anchored = metrics["heldout_anchored"]
    row: dict[str, Any] = {"anchor": metrics["data"]["heldout"]}
    for space, key in SPACE_NAMES.items():
        block = anchored["spaces"][key]
        row[f"fd_ratio_{space}"] = block["ratio"]
        row[f"fd_ratio_{space}_std"] = block["ratio_std"]
        row[f"precision_{space}"] = block["precision"]["synthetic"]
        row[f"recall_{space}"] = block["recall"]["synthetic"]
        row.update(anchor_n=block["n"], floor_kind=block["floor_kind"])
    trained = anchored["spaces"]["extractor"]
    row.update(
        fd_synthetic_trained=trained["frechet_distance"]["synthetic"],
        fd_train_trained=trained["frechet_distance"]["train"],
        fd_floor_trained=trained["frechet_distance"]["floor"],
        precision_real_trained=trained["precision"]["train"],
        recall_real_trained=trained["recall"]["train"],
    )
    faith = metrics.get("label_faithfulness") or {}
    row.update(
        faithfulness_shift=faith.get("mean_shift"),
        faithfulness_auc=faith.get("mean_auc"),
        faithfulness_real_shift=(faith.get("real_heldout") or {}).get("mean_shift"),
    )
    memo = metrics["memorization"]
    row.update(
        memorized_share=memo["pixel"]["share_flagged"],
        memorized_share_heldout=memo["pixel"]["heldout_share_flagged"],
        memorized_share_feature=memo["feature"]["share_flagged"],
    )
    sampling = metrics["sampling"]
    row.update(
        ddim_steps=sampling.get("ddim_steps"),
        guidance_scale=sampling.get("guidance_scale"),
        sampling_images=sampling["images_generated"],
        sampling_seconds=sampling["seconds"],
        sampling_images_per_s=sampling["images_per_second"],
        num_samples=metrics["synthetic"]["num_samples"],
        extractor_val_auc=(metrics.get("extractor") or {}).get("val_auc"),
    )
    cfg = record["config"]
    seconds = float(record["training_seconds"])
    row.update(
        iterations=int(cfg["iterations"]),
        training_seconds=round(seconds, 1),
        precision=record.get("precision_used", cfg.get("precision")),
        batch_size=int(cfg["batch_size"]),
        train_images_per_s=round(int(cfg["iterations"]) * int(cfg["batch_size"]) / seconds, 2),
    )
    return row


def extractor_path(runs: Path, run: Path, iterations: int) -> Path:
    """The shared extractor of a run's data file under ``<runs>/extractors/`` (one per file, not per family or
    fraction: it is fitted on the whole training split, selected on val)."""
    from medgan_aug.apps.report.run_files import load_run_record, run_data_source
    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.metrics.extractor import default_extractor_name

    source = run_data_source(load_run_record(run), run)
    train, val = (MedMNISTDataset(split=s, **source) for s in ("train", "val"))
    return Path(runs) / "extractors" / default_extractor_name(train, val, "small_cnn", iterations, 0)


def synthetic_only_auc(run: Path, num: int, heldout: str, iterations: int, device: str,
                       sampling_steps: int | None = None) -> tuple[float, float]:  # fmt: skip
    """TSTR (train on synthetic, test on real; Esteban et al. 2017): a small CNN trained ``iterations`` steps on
    ``num`` generated images alone, and the same CNN trained on the run's real training subset, both scored
    (mean AUC) on the ``heldout`` split. Returns (synthetic-only AUC, real-only AUC)."""
    from medgan_aug.apps.report.run_files import load_run_record, run_data_source
    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.data.stratify import low_data_indices
    from medgan_aug.data.synthetic import SyntheticDataset
    from medgan_aug.engines.classifier_trainer import train_classifier
    from medgan_aug.metrics.extractor import validation_auc
    from medgan_aug.networks.classifiers import build_classifier

    record = load_run_record(run)
    source = run_data_source(record, run)
    train, test_on = MedMNISTDataset(split="train", **source), MedMNISTDataset(split=heldout, **source)
    synthetic = SyntheticDataset.from_run(run, num, seed=0, device=device)
    if sampling_steps is not None:
        synthetic.generator.set_sampling(num_inference_steps=int(sampling_steps))
    subset = low_data_indices(train.labels, fraction=float(record["config"]["fraction"]), seed=0)
    aucs = []
    for data in (synthetic, torch.utils.data.Subset(train, subset)):
        model = build_classifier("small_cnn", train.num_channels, train.num_labels, train.size, seed=0)
        train_classifier(model, data, task=train.task, iterations=iterations, batch_size=64, seed=0,
                         device=device)  # fmt: skip
        aucs.append(validation_auc(model, test_on, device=device))
    return aucs[0], aucs[1]


def finished_runs(runs: Path) -> list[tuple[str, str, float, Path]]:
    """Every finished run under ``runs``: (data set, family, minutes, folder), in table order."""
    found = []
    for dataset in DATASETS:
        for family in FAMILIES:
            for folder in (Path(runs) / dataset / family).glob("*min"):
                if finished_iterations(folder) is not None:
                    found.append((dataset, family, float(folder.name[:-3]), folder))
    return sorted(found, key=lambda r: (list(DATASETS).index(r[0]), FAMILIES.index(r[1]), r[2]))


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` as CSV at ``path``, atomically."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def evaluate(args: argparse.Namespace) -> None:
    from medgan_aug.apps.report import write_report

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reports").mkdir(exist_ok=True)
    path = args.out / "equal_minutes.csv"
    rows = list(csv.DictReader(open(path))) if path.is_file() else []
    asked = {"num_samples": args.num, "tstr_split": args.heldout, "tstr_iterations": args.clf_iterations}
    for r in rows:
        other = {k: r.get(k) for k, v in asked.items() if str(r.get(k)) != str(v)}
        if other:
            raise InputError(
                f"{path} holds rows made with other settings ({other}) than now ({asked}): use another --out"
            )
    done = {(r["dataset"], r["family"], r["minutes"]) for r in rows}
    todo = [r for r in finished_runs(args.runs) if (r[0], r[1], f"{r[2]:g}") not in done]
    if not todo:
        print(f"{path}: {len(rows)} rows, no finished run left to evaluate", flush=True)
    for dataset, family, minutes, run in todo:
        started = time.perf_counter()
        steps = args.sampling_steps if family == "ddpm" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics = write_report(
                run,
                extractor=extractor_path(args.runs, run, args.extractor_iterations),
                num_samples=args.num,
                seed=0,
                extractor_iterations=args.extractor_iterations,
                repeats=args.repeats,
                device=args.device,
                progress=False,
                sampling_steps=steps,
            )
            tstr, real = synthetic_only_auc(
                run, args.num, args.heldout, args.clf_iterations, args.device, steps
            )
        shutil.copyfile(
            run / "metrics.json", args.out / "reports" / f"{dataset}_{family}_{minutes:g}min.json"
        )
        record = json.loads((run / "config.json").read_text())
        row = metrics_row(metrics, record)
        row.update(
            dataset=dataset,
            family=family,
            minutes=f"{minutes:g}",
            tstr_auc=tstr,
            real_only_auc=real,
            tstr_split=args.heldout,
            tstr_iterations=args.clf_iterations,
            eval_seconds=round(time.perf_counter() - started, 1),
        )
        rows.append(row)
        write_csv(path, rows, COLUMNS)
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        print(
            f"{stamp} {dataset}/{family} {minutes:g} min: FD ratio trained {row['fd_ratio_trained']:.3f} "
            f"neutral {row['fd_ratio_neutral']:.3f}, TSTR {tstr:.3f} (real {real:.3f}), "
            f"{row['sampling_images_per_s']} img/s sampling ({row['eval_seconds']} s)",
            flush=True,
        )


# -- steps -----------------------------------------------------------------------------------------
STEP_COLUMNS = (
    "run", "anchor", "ddim_steps", "guidance_scale", "network_passes_per_image", "num_samples",
    "fd_ratio_trained", "fd_ratio_trained_std", "fd_synthetic_trained", "fd_train_trained", "anchor_n",
    "label_shift", "faithfulness_samples", "sampling_images", "sampling_seconds", "sampling_images_per_s",
)  # fmt: skip
#: the held-out images each ``--anchor`` measures against: ``val`` while settings are chosen (the test split
#: stays unread), ``val+test`` for the report's anchor (all patients outside the training split)
ANCHORS = {"val": ("val",), "val+test": ("val", "test")}


def fd_against_steps(run: Path, steps: Sequence[int], *, num: int, extractor: Path, extractor_iterations: int,
                     repeats: int, device: str, guidance: Sequence[float] | None = None, anchor: str = "val",
                     faithfulness: int = 256) -> list[dict[str, Any]]:  # fmt: skip
    """For a diffusion run, at each DDIM step count (Song et al. 2021) and each classifier-free guidance scale
    (Ho & Salimans 2022; None: the run's own): ``num`` generated images (seed 0), their held-out-anchored FD
    ratio in the trained extractor's space (:func:`medgan_aug.apps.report.anchored.anchored_block`, reference
    the whole real training split, anchor the ``anchor`` split(s)), the images per second the sampling took
    and, for a conditional run with ``faithfulness`` > 0, the label shift
    (:func:`medgan_aug.metrics.label_faithfulness` read by the same extractor, ``faithfulness`` noise vectors,
    base labels drawn from the training labels with seed 0). Rows: guidance-major, steps ascending."""
    from medgan_aug.apps.extractor_fit import load_or_fit_extractor
    from medgan_aug.apps.report.anchored import anchored_block
    from medgan_aug.apps.report.instrument import split_images
    from medgan_aug.apps.report.run_files import load_run_record, run_data_source
    from medgan_aug.apps.report.sampling import sampling_settings
    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset
    from medgan_aug.metrics.extractor import extractor_features
    from medgan_aug.metrics.faithfulness import label_faithfulness
    from medgan_aug.networks.model_file import generator_family

    source = run_data_source(load_run_record(run), run)
    splits = {s: MedMNISTDataset(split=s, **source) for s in ("train", "val", "test")}
    model, _, _ = load_or_fit_extractor(extractor, splits["train"], splits["val"], iterations=extractor_iterations,
                                        seed=0, device=device)  # fmt: skip
    model = model.to(device)
    train_images = split_images(splits["train"])
    heldout_images = torch.cat([split_images(splits[s]) for s in ANCHORS[anchor]])
    f_train = extractor_features(model, train_images, device=device)
    f_held = extractor_features(model, heldout_images, device=device)
    train = splits["train"]
    base = (
        train.targets[np.random.default_rng(0).choice(len(train), faithfulness)] if faithfulness > 0 else None
    )
    rows = []
    for scale in guidance if guidance else [None]:
        for count in steps:
            synthetic = SyntheticDataset.from_run(run, num, seed=0, device=device)
            if generator_family(synthetic.generator) != "ddpm":
                raise InputError(f"--run {run} is not a diffusion run (model ddpm): DDIM steps do not apply")
            try:
                synthetic.generator.set_sampling(num_inference_steps=int(count), guidance_scale=scale)
            except ValueError as error:  # guidance > 0 on an unconditional run, steps beyond the schedule
                raise InputError(f"--steps {count} / --guidance {scale} for --run {run}: {error}") from None
            started = time.perf_counter()
            images = synthetic.get_batch(np.arange(num))["image"].cpu()
            seconds = time.perf_counter() - started
            generated = CHUNK_SIZE * math.ceil(num / CHUNK_SIZE)  # the generator always makes whole chunks
            f_syn = extractor_features(model, images, device=device)
            block = anchored_block({"extractor": (f_held, f_train, f_syn)}, heldout_images, train_images, images,
                                   train_patients=train.patients, repeats=repeats, seed=0)  # fmt: skip
            space = block["spaces"]["extractor"]
            settings = sampling_settings(synthetic.generator)
            shift = None
            if base is not None and int(synthetic.generator.num_labels) > 0:
                shift = label_faithfulness(synthetic.generator, model, num_samples=faithfulness, base_labels=base,
                                           seed=0, task=str(train.task),
                                           label_names=train.label_names)["mean_shift"]  # fmt: skip
            rows.append(
                dict(
                    run=str(run),
                    anchor=anchor,
                    ddim_steps=int(count),
                    guidance_scale=settings["guidance_scale"],
                    network_passes_per_image=settings["network_passes_per_image"],
                    num_samples=num,
                    fd_ratio_trained=space["ratio"],
                    fd_ratio_trained_std=space["ratio_std"],
                    fd_synthetic_trained=space["frechet_distance"]["synthetic"],
                    fd_train_trained=space["frechet_distance"]["train"],
                    anchor_n=space["n"],
                    label_shift=shift,
                    faithfulness_samples=faithfulness if shift is not None else 0,
                    sampling_images=generated,
                    sampling_seconds=round(seconds, 3),
                    sampling_images_per_s=round(generated / seconds, 3),
                )
            )
            print(f"{count:4d} steps, guidance {settings['guidance_scale']:g}: FD ratio {space['ratio']:.3f} ± "
                  f"{space['ratio_std']:.3f}, label shift {shift if shift is None else round(shift, 3)}, "
                  f"{generated / seconds:.2f} img/s", flush=True)  # fmt: skip
    return rows


def _step_key(row: dict[str, Any]) -> tuple[str, str, float, int]:
    """(run, anchor, guidance, steps): a row's identity in fd_vs_steps.csv and its place in the file. Rows
    written before the anchor column existed were anchored on val + test."""
    return (str(row["run"]), str(row.get("anchor") or "val+test"), float(row["guidance_scale"]),
            int(row["ddim_steps"]))  # fmt: skip


def merge_step_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of fd_vs_steps.csv after a ``steps`` call: ``new`` replaces an old row of the same run, anchor,
    steps and guidance; the rest are kept (a steps sweep and a guidance sweep share one file)."""
    keys = {_step_key(r) for r in new}
    rows = [r for r in old if _step_key(r) not in keys] + list(new)
    return sorted(rows, key=_step_key)


def plot_steps(rows: list[dict[str, Any]], path: Path) -> None:
    """FD ratio (± sd over draws) and sampling images/s against DDIM steps, one line per guidance scale, side
    by side, as a PNG (the rows of one run and anchor)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    scales = sorted({float(r["guidance_scale"]) for r in rows})
    for scale in scales:
        mine = sorted(
            (r for r in rows if float(r["guidance_scale"]) == scale), key=lambda r: int(r["ddim_steps"])
        )
        steps = [int(r["ddim_steps"]) for r in mine]
        left.errorbar(steps, [float(r["fd_ratio_trained"]) for r in mine],
                      yerr=[float(r["fd_ratio_trained_std"]) for r in mine], marker="o", capsize=3,
                      label=f"guidance {scale:g}")  # fmt: skip
        right.plot(
            steps, [float(r["sampling_images_per_s"]) for r in mine], marker="o", label=f"guidance {scale:g}"
        )
    ticks = sorted({int(r["ddim_steps"]) for r in rows})
    left.axhline(1.0, color="grey", lw=0.8, ls="--")
    left.set(xscale="log", xlabel="DDIM steps", ylabel="FD ratio (trained features)",
             title=f"FD ratio, anchor {rows[0]['anchor']} (1 = real train)")  # fmt: skip
    right.set(xscale="log", yscale="log", xlabel="DDIM steps", ylabel="images / s", title="sampling speed")
    for ax in (left, right):
        ax.set_xticks(ticks, [str(s) for s in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    right.yaxis.set_major_formatter(ScalarFormatter())
    right.yaxis.set_minor_formatter(NullFormatter())
    if len(scales) > 1:
        left.legend(fontsize=7)
    fig.suptitle(Path(rows[0]["run"]).parent.parent.name + " ddpm " + Path(rows[0]["run"]).name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def steps_command(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if finished_iterations(args.run) is None:
        raise InputError(f"--run {args.run} holds no finished run (generator.pt and config.json)")
    if any(s < 1 for s in args.steps):
        raise InputError(f"--steps must be integers >= 1, got {args.steps}")
    if args.guidance and any(not math.isfinite(g) or g < 0 for g in args.guidance):
        raise InputError(f"--guidance must be finite scales >= 0, got {args.guidance}")
    if args.faithfulness != 0 and args.faithfulness < 2:
        raise InputError(f"--faithfulness must be 0 (off) or >= 2 noise vectors, got {args.faithfulness}")
    extractor = args.extractor or extractor_path(args.run.parents[2], args.run, args.extractor_iterations)
    rows = fd_against_steps(args.run, sorted(args.steps), num=args.num, extractor=extractor,
                            extractor_iterations=args.extractor_iterations, repeats=args.repeats,
                            device=args.device, guidance=args.guidance, anchor=args.anchor,
                            faithfulness=args.faithfulness)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "fd_vs_steps.csv"
    rows = merge_step_rows(list(csv.DictReader(open(path))) if path.is_file() else [], rows)
    write_csv(path, rows, STEP_COLUMNS)
    mine = [r for r in rows if _step_key(r)[:2] == (str(args.run), args.anchor)]
    plot_steps(mine, args.out / "fd_vs_steps.png")


# -- table -----------------------------------------------------------------------------------------
#: (column, header, digits) of each data set's table
TABLE = (
    ("iterations", "iterations", 0), ("training_seconds", "train s", 0),
    ("train_images_per_s", "train img/s", 0), ("fd_ratio_trained", "FD ratio trained", 2),
    ("fd_ratio_neutral", "FD ratio neutral", 2), ("precision_trained", "precision", 3),
    ("recall_trained", "recall", 3), ("tstr_auc", "TSTR AUC", 3), ("faithfulness_shift", "label shift", 3),
    ("memorized_share", "memorized", 3), ("sampling_images_per_s", "sampling img/s", 1),
)  # fmt: skip


def _cell(value: Any, digits: int) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(number) else f"{number:.{digits}f}"


def _groups(steps: list[dict[str, Any]]) -> list[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """fd_vs_steps.csv's rows per (run, anchor), in file order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in steps:
        groups.setdefault(_step_key(r)[:2], []).append(r)
    return list(groups.items())


def table_markdown(rows: list[dict[str, Any]], steps: list[dict[str, Any]]) -> str:
    """equal_minutes.md: one table per data set (family x minutes), the FD-vs-steps table below."""
    lines = [
        "# Diffusion (ddpm) vs DCGAN at equal 1-thread CPU minutes (issue 22)",
        "",
        "Generated by `PYTHONPATH=. python experiments/diffusion_vs_dcgan.py table --out <this folder>` from",
        "`equal_minutes.csv` and `fd_vs_steps.csv` (commands: the docstring of experiments/diffusion_vs_dcgan.py).",
        "Both families conditional, batch 64, iterations = minutes x 60 / calibrated seconds per iteration;",
        "the longer budget continues the shorter run. FD ratio = FD(generated, held-out) / FD(real training,",
        "held-out) at equal n (anchor: val + test patients; 1 = as close to new patients as real training",
        "images, lower is better), trained = the data set's extractor, neutral = a random-initialised CNN.",
        "precision / recall: generated vs held-out, trained space. TSTR: small CNN trained on generated images only, AUC on",
        "the split in `tstr_split` (real-only AUC beside it in the CSV). label shift: label faithfulness (mean",
        "score shift when a finding is switched on at fixed noise). memorized: share of generated images closer",
        "to a training image than the 1st percentile of real held-out images (pixel space).",
        "",
    ]
    for dataset in DATASETS:
        mine = [r for r in rows if r["dataset"] == dataset]
        lines += [f"## {dataset}", ""]
        if not mine:
            lines += ["not measured", ""]
            continue
        lines += [
            "| family | minutes | " + " | ".join(h for _, h, _ in TABLE) + " |",
            "|---|---|" + "---|" * len(TABLE),
        ]
        for r in sorted(mine, key=lambda r: (FAMILIES.index(r["family"]), float(r["minutes"]))):
            cells = [_cell(r.get(k), d) for k, _, d in TABLE]
            lines.append(f"| {r['family']} | {r['minutes']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## FD ratio against DDIM steps and guidance", ""]
    if not steps:
        lines += ["not measured", ""]
    for (run, anchor), mine in _groups(steps):
        lines += [
            f"Run `{run}`, anchor {anchor}, {mine[0]['num_samples']} images per setting (fd_vs_steps.png);",
            "label shift: mean score shift of the extractor when the label is switched (noise vectors in",
            "`faithfulness_samples`).",
            "",
            "| guidance | DDIM steps | UNet passes / image | FD ratio trained | label shift | sampling img/s |",
            "|---|---|---|---|---|---|",
        ]
        for r in mine:
            lines.append(
                f"| {float(r['guidance_scale']):g} | {r['ddim_steps']} | {r['network_passes_per_image']} | "
                f"{_cell(r['fd_ratio_trained'], 2)} ± {_cell(r['fd_ratio_trained_std'], 2)} | "
                f"{_cell(r.get('label_shift'), 3)} | {_cell(r['sampling_images_per_s'], 2)} |"
            )
        lines.append("")
    return "\n".join(lines)


def table(args: argparse.Namespace) -> None:
    def read(name: str) -> list[dict[str, Any]]:
        path = args.out / name
        return list(csv.DictReader(open(path))) if path.is_file() else []

    rows, steps = read("equal_minutes.csv"), read("fd_vs_steps.csv")
    if not rows and not steps:
        raise InputError(
            f"--out {args.out} holds neither equal_minutes.csv nor fd_vs_steps.csv (run evaluate/steps)"
        )
    (args.out / "equal_minutes.md").write_text(table_markdown(rows, steps) + "\n")
    print((args.out / "equal_minutes.md").read_text())


# -- command line ----------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    c = sub.add_parser("calibrate", help="seconds per iteration of each family at 1 thread (quiet machine!)")
    c.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    c.add_argument("--iterations", type=int, default=20, help="timed iterations per family and round")
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--data", type=Path, default=DATA_DIR)
    t = sub.add_parser("train", help="every (data set, family) to each budget")
    t.add_argument("--runs", type=Path, required=True)
    t.add_argument("--calibration", type=Path, required=True)
    t.add_argument("--datasets", nargs="+", default=list(DATASETS))
    t.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    t.add_argument("--minutes", type=float, nargs="+", default=[15.0, 60.0])
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="cpu")
    t.add_argument("--checkpoint-every", type=int, default=500, help="for resuming an interrupted run")
    t.add_argument("--data", type=Path, default=DATA_DIR, help="folder of the shared .npz files")
    e = sub.add_parser("evaluate", help="report + TSTR of every finished run -> equal_minutes.csv")
    e.add_argument("--runs", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--num", type=int, default=1000, help="generated images per report")
    e.add_argument("--sampling-steps", type=int, default=None, help="ddpm: DDIM steps (default: the run's)")
    e.add_argument("--heldout", choices=("val", "test"), default="val", help="split of the TSTR AUC")
    e.add_argument("--clf-iterations", type=int, default=300, help="TSTR classifier steps")
    e.add_argument("--extractor-iterations", type=int, default=1000)
    e.add_argument("--repeats", type=int, default=5)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--device", default="cpu")
    s = sub.add_parser("steps", help="FD ratio and sampling speed of one ddpm run against DDIM steps")
    s.add_argument("--run", type=Path, required=True)
    s.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100])
    s.add_argument("--guidance", type=float, nargs="+", default=None,
                   help="classifier-free guidance scales to sweep (default: the run's own)")  # fmt: skip
    s.add_argument("--anchor", choices=tuple(ANCHORS), default="val",
                   help="held-out images of the FD ratio: val to choose settings (default), val+test as the report")  # fmt: skip
    s.add_argument(
        "--faithfulness", type=int, default=256, help="noise vectors of the label shift (0: skip it)"
    )
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--num", type=int, default=1000)
    s.add_argument("--extractor", type=Path, default=None, help="default: the one evaluate uses")
    s.add_argument("--extractor-iterations", type=int, default=1000)
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--device", default="cpu")
    tb = sub.add_parser("table", help="equal_minutes.md from the CSVs")
    tb.add_argument("--out", type=Path, required=True)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.command == "calibrate":
            result = calibrate(args.out, iterations=args.iterations, rounds=args.rounds, data_dir=args.data)
            for family, seconds in result["seconds_per_iteration"].items():
                print(f"{family}: {seconds:.3f} s/it ({result['precision'][family]}), "
                      f"15 min = {budget_iterations(15, seconds)} it")  # fmt: skip
        else:
            {"train": train, "evaluate": evaluate, "steps": steps_command, "table": table}[args.command](args)
    except InputError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()

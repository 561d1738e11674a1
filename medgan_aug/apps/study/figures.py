"""Figures of a study: AUC vs training fraction per condition, and ΔAUC vs fraction with intervals."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from medgan_aug.utils.atomic import atomic_path

__all__ = ["plot_study"]


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")


def _delta_series(
    table: list[dict[str, Any]], comparisons: list[dict[str, Any]] | None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """ΔAUC vs real per (condition, classifier): the comparisons' entries, or the table's ``delta`` keys."""
    if comparisons is None:
        entries = [e for e in table if "delta" in e]
    else:
        entries = [e for e in comparisons if e["kind"] == "vs real"]
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in sorted(entries, key=lambda e: e["fraction"]):
        series.setdefault((e["condition"], e["classifier"]), []).append(e)
    return series


def plot_study(
    table: list[dict[str, Any]], out: str | os.PathLike, comparisons: list[dict[str, Any]] | None = None
) -> list[Path]:
    """Write ``auc_vs_fraction.png`` (mean ± sd over study seeds) and ``delta_auc_vs_fraction.png``.

    Args:
        table: per (fraction, condition, classifier) entries with ``auc_mean`` and ``auc_sd``
            (:func:`medgan_aug.apps.study.summary.condition_table`); entries with ``delta``, ``ci_low`` and
            ``ci_high`` give the ΔAUC figure when ``comparisons`` is None.
        out: folder of the figures.
        comparisons: the study's comparisons (:func:`medgan_aug.apps.study.comparisons.compare_conditions`):
            the ΔAUC figure then shows each condition vs ``real`` with its two-level 95% interval (study
            seeds and test images) and each study seed's ΔAUC as a small dot.
    """
    out = Path(out)
    arms = sorted({(e["condition"], e["classifier"]) for e in table})
    many_classifiers = len({c for _, c in arms}) > 1
    deltas = _delta_series(table, comparisons)
    # matplotlib's object API (no pyplot): no global backend switch, nothing left open in a notebook
    fig, fig_d = Figure(figsize=(6.5, 4.2)), Figure(figsize=(6.5, 4.2))
    ax, ax_d = fig.subplots(), fig_d.subplots()
    for condition, classifier in arms:
        entries = sorted(
            (e for e in table if (e["condition"], e["classifier"]) == (condition, classifier)),
            key=lambda e: e["fraction"],
        )
        label = f"{condition} ({classifier})" if many_classifiers else condition
        x = [e["fraction"] for e in entries]
        sd = [0.0 if np.isnan(e["auc_sd"]) else e["auc_sd"] for e in entries]
        ax.errorbar(x, [e["auc_mean"] for e in entries], yerr=sd, marker="o", capsize=3, label=label)
        with_delta = deltas.get((condition, classifier), [])
        if with_delta:
            d = np.array([e["delta"] for e in with_delta])
            err = np.array([[e["delta"] - e["ci_low"], e["ci_high"] - e["delta"]] for e in with_delta]).T
            line = ax_d.errorbar(
                [e["fraction"] for e in with_delta],
                d,
                yerr=np.nan_to_num(err),
                marker="o",
                capsize=3,
                label=label,
            )
            seed_x = [e["fraction"] for e in with_delta for _ in e.get("per_seed", {})]
            seed_y = [v for e in with_delta for v in e.get("per_seed", {}).values()]
            if seed_x:
                ax_d.scatter(seed_x, seed_y, s=9, alpha=0.5, color=line[0].get_color(), zorder=1)
    ylabel_d = (
        "ΔAUC vs real (95% CI: seeds + images; dots: seeds)"
        if comparisons is not None
        else ("ΔAUC vs real (95% bootstrap CI)")
    )
    for axis, ylabel in ((ax, "test AUC (mean ± sd over study seeds)"), (ax_d, ylabel_d)):
        axis.set_xscale("log")
        axis.set_xlabel("fraction of the training split")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    ax_d.axhline(0.0, color="black", lw=0.8)
    paths = [out / "auc_vs_fraction.png", out / "delta_auc_vs_fraction.png"]
    _save(fig, paths[0])
    _save(fig_d, paths[1])
    return paths

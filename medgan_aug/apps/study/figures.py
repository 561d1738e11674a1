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


def plot_study(table: list[dict[str, Any]], out: str | os.PathLike) -> list[Path]:
    """Write ``auc_vs_fraction.png`` (mean ± sd over seeds) and ``delta_auc_vs_fraction.png`` (95% CI)."""
    out = Path(out)
    arms = sorted({(e["condition"], e["classifier"]) for e in table})
    many_classifiers = len({c for _, c in arms}) > 1
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
        with_delta = [e for e in entries if "delta" in e]
        if with_delta:
            d = np.array([e["delta"] for e in with_delta])
            err = np.array([[e["delta"] - e["ci_low"], e["ci_high"] - e["delta"]] for e in with_delta]).T
            ax_d.errorbar(
                [e["fraction"] for e in with_delta], d, yerr=err, marker="o", capsize=3, label=label
            )
    for axis, ylabel in ((ax, "test AUC (mean ± sd over seeds)"), (ax_d, "ΔAUC vs real (95% bootstrap CI)")):
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
